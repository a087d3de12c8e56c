"""Injected AWS faults: a run of every example module still deploys each module exactly once.

With 30% of AWS calls throttled and 10% answered 5xx by the sandbox, every call must
be retried by the one AWS boundary (and the image pusher, which the buildspec's
``deployfw image build --push`` uses), while the non-idempotent ones
(CreateDeployment) must never create a second deployment. The commit changes every
module's image inputs, so the builds run under the same faults as the deployments.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from reliability_kit import SERVICES, Repo, SandboxProcess, deploy_calls, figure, judge, run

pytestmark = pytest.mark.long

FAULTS = "throttle:30,error:10"


def fault_run(repo: Repo, sandbox: SandboxProcess, faults: str) -> None:
    """One faulted run of a commit that needs fresh builds; asserts and records the figures."""
    head = repo.change_all(rebuild=True)
    sandbox.clear_requests()
    since = time.time()
    sandbox.set_faults(faults)
    started = time.monotonic()
    try:
        code, proc = run(repo.path, sandbox.run_env())
    finally:
        sandbox.set_faults("")
    seconds = time.monotonic() - started
    entries = sandbox.requests()
    verdict = judge(sandbox, repo.path, head, entries, since)
    faulted = Counter(e.get("fault") for e in entries if e.get("fault"))
    calls = deploy_calls(entries)
    figure(
        f"faults ({faults})",
        exit_code=code,
        seconds=round(seconds, 1),
        aws_calls=len(entries),
        throttled=faulted.get("throttle", 0),
        server_errors=faulted.get("error", 0),
        deployments_per_module={m: len(calls.get(m, [])) for m in SERVICES},
        successful_deployments=verdict.successes,
        problems=len(verdict.problems),
    )
    assert code == 0, proc.output[-4000:]
    assert faulted.get("throttle", 0) > 0 and faulted.get("error", 0) > 0, "the faults were not injected"
    assert not any(e["service"] == "sandbox" or "/_sandbox" in str(e.get("operation")) for e in entries)
    assert verdict.problems == [], verdict.problems
    assert {m: len(calls.get(m, [])) for m in SERVICES} == dict.fromkeys(SERVICES, 1)
    assert "build reused" not in proc.stdout, "the builds did not run under faults"


def test_every_module_deployed_exactly_once_under_throttling_and_5xx(warmed: Repo, rel_sandbox: SandboxProcess) -> None:
    fault_run(warmed, rel_sandbox, FAULTS)
