"""Meta-tests in the spirit of datasette's: every hook is typed, documented, in the guide, and exercised.

A hook that exists in ``deployfw/hookspecs.py`` but not in ``docs/plugins.md`` is a
hook plugin authors cannot find; one without a test is a hook nobody knows still
gets called. These tests fail the moment a hook is added without both.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import ROOT

from deployfw import hookspecs
from deployfw.backends import BackendRegistry

GUIDE = ROOT / "docs" / "plugins.md"
HERE = Path(__file__).resolve().parent


def _hookspecs() -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets
    return {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)}


HOOKS = sorted(_hookspecs())


def test_the_hookspecs_are_found() -> None:
    assert {"deployfw_register_backends", "deployfw_config_loaded", "deployfw_run_end"} <= set(HOOKS)
    assert all(name.startswith("deployfw_") for name in HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(_hookspecs()[name])
    assert doc, f"{name} has no docstring"
    assert len(doc.split()) >= 5, f"{name}'s docstring says too little to tell a plugin author when it runs"


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_arguments_and_return_are_annotated(name: str) -> None:
    signature = inspect.signature(_hookspecs()[name])
    missing = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not missing, f"{name}: arguments without a type: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return annotation"
    kinds = {p.kind for p in signature.parameters.values()}
    assert kinds <= {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}, name


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_section_in_the_plugin_guide(name: str) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    headings = re.findall(r"^#{2,4} `(deployfw_\w+)\(", guide, flags=re.MULTILINE)
    assert name in headings, f"docs/plugins.md has no '#### `{name}(...)`' section"


@pytest.mark.parametrize("name", HOOKS)
def test_the_guide_shows_every_argument_of_the_hook(name: str) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    heading = re.search(rf"^#{{2,4}} `{name}\((.*)\)", guide, flags=re.MULTILINE)
    assert heading, name
    documented = re.findall(r"(\w+):", heading.group(1))
    assert documented == list(inspect.signature(_hookspecs()[name]).parameters), name


def test_every_hook_in_the_guide_exists() -> None:
    """The other direction: the guide documents no hook that has gone away or was never there."""
    guide = GUIDE.read_text(encoding="utf-8")
    mentioned = set(re.findall(r"\bdeployfw_[a-z_]+(?=\()", guide))
    assert mentioned <= set(HOOKS), f"docs/plugins.md mentions unknown hooks: {mentioned - set(HOOKS)}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_implemented_by_a_test_plugin(name: str) -> None:
    """A test plugin implementing the hook is what proves the manager really calls it with those arguments."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    assert f"def {name}(" in tests, f"no test plugin in tests/plugins implements {name}"


@pytest.mark.parametrize(
    "name", sorted(n for n, _ in inspect.getmembers(BackendRegistry, inspect.isfunction) if not n.startswith("_"))
)
def test_the_registry_api_is_in_the_guide(name: str) -> None:
    if name == "set_owner":  # the manager's, not plugin authors'
        return
    assert f"registry.{name}(" in GUIDE.read_text(encoding="utf-8"), f"docs/plugins.md does not show registry.{name}"


@pytest.mark.parametrize("fixture", ["git_repo", "aws_sandbox", "jenkins_double"])
def test_the_testing_kit_fixtures_are_in_the_guide(fixture: str) -> None:
    import deployfw.testing.plugin as kit

    assert hasattr(kit, fixture), f"deployfw.testing no longer has {fixture}"
    assert f"| `{fixture}` |" in GUIDE.read_text(encoding="utf-8")
