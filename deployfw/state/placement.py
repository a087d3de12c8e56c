"""Which state store a command uses, and whether its history outlives the CI agent.

The deploy history is what lets a run measure each module from its own last deploy, retry a
module that failed, and hold a rollback. A store on the agent's disk (the sqlite default) loses
all of it whenever the CI system hands the next build a fresh disk - every CodeBuild build, most
containerised Jenkins agents, GitHub-hosted runners - and the next run silently falls back to the
CI variables. This module makes that visible: a one-line warning in ``run`` and ``plan`` when a CI
system is detected and the store is not shared, recorded in the report; and an error (exit 2,
before anything changes) when ``DEPLOYFW_REQUIRE_SHARED_STATE`` is set.

Where the ``state:`` section comes from: ``DEPLOYFW_STATE`` (the section as YAML, e.g.
``{backend: dynamodb, table: deployfw-state}``) when set - the CI files set it, so one repository
keeps sqlite on laptops and the sandbox and a shared table in CI - else modules.yaml's ``state:``,
else the sqlite default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.errors import InputError, Problem

if TYPE_CHECKING:
    from deployfw.backends import BackendRegistry
    from deployfw.ci import CIContext
    from deployfw.config import Config
    from deployfw.state.store import StateStore

STATE_VARIABLE = "DEPLOYFW_STATE"
REQUIRE_VARIABLE = "DEPLOYFW_REQUIRE_SHARED_STATE"
_TRUE = ("1", "true", "yes", "on")


def state_section(
    config: Config, registry: BackendRegistry, environ: Mapping[str, str]
) -> tuple[Mapping[str, Any] | None, str]:
    """The ``state:`` section in effect and where it came from (``DEPLOYFW_STATE``, ``modules.yaml``, ``default``).

    ``DEPLOYFW_STATE`` is checked like the section in modules.yaml (backend id, its options):
    a bad value is bad input naming the variable, before any AWS call.
    """
    text = environ.get(STATE_VARIABLE, "").strip()
    if not text:
        return config.state, "modules.yaml" if config.state else "default"
    import yaml

    from deployfw.schema import validate

    try:
        section = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(Problem(None, None, STATE_VARIABLE, f"not YAML: {exc}".splitlines()[0])) from None
    if not isinstance(section, dict):
        raise InputError(
            Problem(None, None, STATE_VARIABLE, f"must be a mapping like '{{backend: dynamodb}}', got {text!r}")
        )
    choices = registry.catalog().get("state", {})
    backend = section.get("backend", "sqlite")
    if backend not in choices:
        valid = ", ".join(sorted(choices)) or "none installed"
        message = f"unknown state backend {backend!r}; valid: {valid}"
        raise InputError(Problem(None, None, f"{STATE_VARIABLE}.backend", message))
    options = {k: v for k, v in section.items() if k != "backend"}
    schema = {"type": "object", "additionalProperties": False, **choices[backend]}
    problems = [
        Problem(None, None, ".".join(map(str, (STATE_VARIABLE, *key))), f"{message} (state backend {backend!r})")
        for key, message in validate(options, schema)
    ]
    if problems:
        raise InputError(problems)
    return section, STATE_VARIABLE


@dataclass(frozen=True)
class Placement:
    """Where a command's deploy history lives, as the plan, the report and the warning tell it."""

    backend: str
    location: str
    shared: bool | None  # None: the store does not say (a third-party store without ``shared``)
    persistent: bool  # sqlite ``persistent: true``: this disk is kept between builds
    source: str  # DEPLOYFW_STATE | modules.yaml | default
    ci: str | None  # the CI system detected, None on a terminal
    warning: str | None = None

    @property
    def survives(self) -> bool:
        """Whether the next build can read what this one records."""
        return self.ci is None or self.shared is not False or self.persistent

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "location": self.location,
            "shared": self.shared,
            "persistent": self.persistent,
            "source": self.source,
            "ci": self.ci,
            "warning": self.warning,
        }


def placement(store: StateStore, section: Mapping[str, Any] | None, source: str, ci: CIContext) -> Placement:
    """Describe ``store`` and, in CI with a store on the agent's disk, say what is lost and how to fix it."""
    options = dict(section or {})
    backend = str(options.get("backend") or "sqlite")
    from deployfw.state.store import Located

    located = store if isinstance(store, Located) else None
    found = Placement(
        backend,
        located.location if located is not None else repr(store),
        located.shared if located is not None else None,
        bool(options.get("persistent", False)),
        source,
        ci.title if ci.is_ci else None,
    )
    if found.survives:
        return found
    fallback = ci.base_source or "the CI variables"
    warning = (
        f"warning: the state store is a {found.location} on this {ci.title} agent's disk: deploy history and "
        f"rollback pins go with the agent, so the next build measures changes from {fallback} and does not "
        f"retry failed modules; use a shared store (`state: {{backend: dynamodb}}` or {STATE_VARIABLE}, table "
        "created once with `deployfw state init`), or `persistent: true` on the sqlite store if this disk is "
        "kept between builds"
    )
    return dataclasses.replace(found, warning=warning)


def require_shared(found: Placement, environ: Mapping[str, str]) -> Problem | None:
    """With ``DEPLOYFW_REQUIRE_SHARED_STATE`` set, a CI run on a store that is not shared is bad input."""
    if environ.get(REQUIRE_VARIABLE, "").strip().lower() not in _TRUE:
        return None
    if found.ci is None or found.shared is True:
        return None
    what = "is not shared" if found.shared is False else "does not say whether it is shared"
    return Problem(
        None,
        None,
        REQUIRE_VARIABLE,
        f"this {found.ci} run needs a shared state store, but the {found.backend} store ({found.location}) {what}; "
        f"set `state: {{backend: dynamodb}}` in modules.yaml or {STATE_VARIABLE}, or unset {REQUIRE_VARIABLE}",
    )
