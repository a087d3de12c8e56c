"""The example third-party plugin, pip-installed from its own pyproject: found, called, and disabled.

These are the three promises the plugin system makes to a plugin author; each is
checked both through the CLI in a fresh interpreter (what users do) and through
a :class:`PluginManager` in this process (what the runner does).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Receiver, run_cli

from deployfw import redact
from deployfw.backends import RunContext
from deployfw.errors import InputError
from deployfw.plugins import PluginManager

WEBHOOK_HOOKS = ["deployfw_config_loaded", "deployfw_module_end", "deployfw_run_end", "deployfw_run_start"]


def _plugin_rows(stdout: str) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(stdout)["plugins"]}


def _send_run(manager: PluginManager, ctx: RunContext, *, error: str | None = None) -> None:
    """What the runner does around a one-module run, through the manager's hook relay."""
    module = ctx.config.modules["user-api"]
    manager.hook.deployfw_run_start(ctx=ctx, modules=["user-api"])
    manager.hook.deployfw_module_start(ctx=ctx, module=module)
    manager.hook.deployfw_module_end(ctx=ctx, module=module, status="failed" if error else "succeeded", error=error)
    report = {"status": "failed" if error else "succeeded", "modules": [{"name": "user-api", "error": error}]}
    manager.hook.deployfw_run_end(ctx=ctx, report=report)


# -- found ----------------------------------------------------------------------------


def test_cli_lists_the_installed_plugin_with_its_distribution_version_and_hooks(webhook_site: Path) -> None:
    result = run_cli("plugins", "--json", site=webhook_site)

    assert result.returncode == 0, result.stderr
    row = _plugin_rows(result.stdout)["webhook"]
    assert row == {"name": "webhook", "version": "0.1.0", "source": "deployfw-webhook", "hooks": WEBHOOK_HOOKS}


def test_cli_text_output_names_the_plugin(webhook_site: Path) -> None:
    result = run_cli("plugins", site=webhook_site)

    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("webhook "))
    assert "0.1.0" in line
    assert "deployfw-webhook" in line
    assert "deployfw_run_end" in line


def test_not_listed_when_not_installed() -> None:
    """The install is private to the tests that ask for it: no leak into the environment."""
    result = run_cli("plugins", "--json")

    assert result.returncode == 0, result.stderr
    assert "webhook" not in _plugin_rows(result.stdout)


def test_manager_loads_it_from_the_entry_point(webhook_installed: Path) -> None:
    info = {p.name: p for p in PluginManager().plugins()}["webhook"]

    assert (info.source, info.version, list(info.hooks)) == ("deployfw-webhook", "0.1.0", WEBHOOK_HOOKS)


# -- called ---------------------------------------------------------------------------


def test_run_events_are_posted_as_json(
    webhook_installed: Path, receiver: Receiver, run_context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", receiver.url)

    _send_run(PluginManager(), run_context)

    bodies = receiver.bodies
    assert [b["event"] for b in bodies] == ["run_start", "module_end", "run_end"]  # module_start is not sent
    start, module_end, end = bodies
    assert start["modules"] == ["user-api"]
    assert (module_end["module"], module_end["status"], module_end["error"]) == ("user-api", "succeeded", None)
    assert end["status"] == "succeeded"
    assert end["report"]["modules"][0]["name"] == "user-api"
    for body in bodies:
        assert (body["run_id"], body["project"], body["head"]) == ("run-42", "shop", run_context.head)
    request = receiver.requests[0]
    assert request["path"] == "/hooks/T0KEN-IN-PATH"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"] == "deployfw-webhook/0.1.0"


def test_registered_secrets_never_leave_the_machine(
    webhook_installed: Path, receiver: Receiver, run_context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = 'tok"en\\-9f8e7d6c'  # a quote and a backslash: JSON escaping must not defeat masking
    redact.register(secret)
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", receiver.url)

    _send_run(PluginManager(), run_context, error=f"jenkins refused token {secret}")

    raw = b"".join(r["raw"] for r in receiver.requests).decode()
    assert "9f8e7d6c" not in raw
    assert receiver.bodies[1]["error"] == "jenkins refused token ***"
    assert receiver.bodies[2]["report"]["modules"][0]["error"] == "jenkins refused token ***"


def test_no_url_means_no_request(webhook_installed: Path, receiver: Receiver, run_context: RunContext) -> None:
    _send_run(PluginManager(), run_context)

    assert receiver.requests == []


def test_a_5xx_answer_is_a_warning_not_a_failure(
    webhook_installed: Path,
    receiver: Receiver,
    run_context: RunContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.status = 503
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", receiver.url)

    with caplog.at_level(logging.WARNING, logger="deployfw.webhook"):
        _send_run(PluginManager(), run_context)

    assert len(receiver.requests) == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "deployfw.webhook"]
    assert len(warnings) == 3
    assert all("HTTP 503" in w for w in warnings)
    assert not any("T0KEN-IN-PATH" in w for w in warnings)  # webhook URLs carry tokens in the path


def test_refused_connection_is_a_warning(
    webhook_installed: Path, run_context: RunContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", f"http://127.0.0.1:{port}/x")

    with caplog.at_level(logging.WARNING, logger="deployfw.webhook"):
        PluginManager().hook.deployfw_run_end(ctx=run_context, report={"status": "succeeded"})

    assert "run_end not delivered" in caplog.text


def test_a_silent_endpoint_costs_only_the_timeout(
    webhook_installed: Path, run_context: RunContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/x")
        monkeypatch.setenv("DEPLOYFW_WEBHOOK_TIMEOUT", "0.3")
        manager = PluginManager()
        timeouts: list[float] = []
        urlopen = urllib.request.urlopen

        def spy(*args: Any, **kwargs: Any) -> Any:
            timeouts.append(kwargs["timeout"])
            return urlopen(*args, **kwargs)

        monkeypatch.setattr(urllib.request, "urlopen", spy)
        with caplog.at_level(logging.WARNING, logger="deployfw.webhook"):
            manager.hook.deployfw_run_end(ctx=run_context, report={"status": "succeeded"})

    assert timeouts == [0.3]  # the configured timeout bounded the wait
    assert "timed out" in caplog.text


def test_a_url_that_is_not_http_is_refused_before_the_run(
    webhook_installed: Path, run_context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", "file:///etc/passwd")

    with pytest.raises(InputError, match="DEPLOYFW_WEBHOOK_URL: must be an http"):
        PluginManager().hook.deployfw_config_loaded(config=run_context.config)


# -- disabled -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--disable-plugin", "webhook"], {}),
        ([], {"DEPLOYFW_DISABLE_PLUGINS": "webhook"}),
        ([], {"DEPLOYFW_DISABLE_PLUGINS": " other , webhook "}),
    ],
    ids=["flag", "env", "env-list"],
)
def test_disabled_plugin_is_not_listed(webhook_site: Path, args: list[str], env: dict[str, str]) -> None:
    result = run_cli(*args, "plugins", "--json", site=webhook_site, env=env)

    assert result.returncode == 0, result.stderr
    assert "webhook" not in _plugin_rows(result.stdout)
    assert {"local", "aws"} <= set(_plugin_rows(result.stdout))  # only that plugin is gone


@pytest.mark.parametrize("how", ["argument", "env"])
def test_disabled_plugin_is_not_called(
    how: str,
    webhook_installed: Path,
    receiver: Receiver,
    run_context: RunContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEPLOYFW_WEBHOOK_URL", receiver.url)
    if how == "env":
        monkeypatch.setenv("DEPLOYFW_DISABLE_PLUGINS", "webhook")
        manager = PluginManager()
    else:
        manager = PluginManager(disabled=["webhook"])

    _send_run(manager, run_context)

    assert "webhook" not in {p.name for p in manager.plugins()}
    assert receiver.requests == []


# -- the plugin's own test suite --------------------------------------------------------


def test_the_plugins_own_suite_passes_with_the_deployfw_pytest_kit(webhook_site: Path) -> None:
    """What a plugin author runs: their tests get ``git_repo`` from deployfw's pytest11 entry point."""
    source = webhook_site.parent / "source"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=source,
        env={**_without_plugin_env(), "PYTHONPATH": str(webhook_site)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def _without_plugin_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYFW_")}
