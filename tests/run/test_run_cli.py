"""``deployfw run`` input handling: bad input is exit 2 before any AWS call; plan and --dry-run change nothing.

The sandbox's request log is the witness: "nothing changed" means no mutating call
reached AWS, and for bad input no call at all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from run_helpers import SECRET, SERVICES

from deployfw.testing import CliResult, SandboxProcess, mutating


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("run", "-m", "no-such-api"), "unknown module 'no-such-api'"),
        (("run", "-m", "common", "-m", "nope", "--report", "r.json"), "unknown module 'nope'"),
        (("run", "--all", "--stop-after", "build", "--artifacts-dir", "art"), "--artifacts-dir needs --stop-after"),
        (("run", "--all", "--stop-after", "release"), "Invalid value for '--stop-after'"),
        (("run", "--all", "--max-parallel", "0"), "Invalid value for '--max-parallel'"),
        (("run", "--all", "--no-such-flag"), "No such option"),
    ],
)
def test_bad_input_exits_2_before_any_aws_call(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, argv: tuple[str, ...], message: str
) -> None:
    sandbox.clear_requests()
    done = deployfw(*argv)
    assert done.code == 2, done.output
    assert message in done.stderr
    assert "Traceback" not in done.output
    assert sandbox.requests() == []


@pytest.mark.parametrize("argv", [("run", "--all", "--dry-run"), ("plan", "--all"), ("plan", "--all", "--json")])
def test_dry_run_and_plan_make_no_mutating_aws_call(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, argv: tuple[str, ...]
) -> None:
    sandbox.clear_requests()
    done = deployfw(*argv)
    assert done.code == 0, done.output
    for name in SERVICES:
        assert name in done.stdout
    assert mutating(sandbox.requests()) == []
    assert SECRET not in done.output
