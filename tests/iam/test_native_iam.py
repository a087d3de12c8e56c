"""ecs-native's IAM declarations, proven in the IAM-enforcing sandbox.

User ``ci`` holds exactly ``deployfw -e native iam policy --for ci``: the example's ``native``
environment deploys payment-api as an ECS-native canary with it, every call is one the policy
allows by AWS's own operation -> action data (tag-on-create of the task definition included),
and ``deployfw migrate`` runs with the setup statements (and is refused without them). That each
of ecs-native's statements is needed is proven with the others' in test_enforced_run.py (the
statement's environment runs without it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from iam_helpers import ACCOUNT, ARNS, Principals
from run_helpers import commit_all

from deployfw.testing import SandboxProcess, run_cli
from deployfw.testing.iam import sandbox_mismatches, undeclared

pytestmark = pytest.mark.sandbox
NATIVE_SIDS = ("EcsTagTaskDefinition", "EcsServiceDeployments", "ElbReadListenerRules")


def native_policy(principals: Principals, *extra: str) -> dict[str, Any]:
    done = run_cli(principals.sandbox.run_env(), principals.repo, "-e", "native", "iam", "policy", "--for", "ci",
                   "--json", "--account", ACCOUNT, *extra)  # fmt: skip
    assert done.code == 0, done.output
    return dict(json.loads(done.stdout))


def test_the_native_canary_runs_with_exactly_its_generated_policy(
    principals: Principals, sandbox: SandboxProcess
) -> None:
    policy = native_policy(principals)["policy"]
    sids = {s["Sid"] for s in policy["Statement"]}
    assert {"EcsNativeUpdate", "EcsServiceRevisions", *NATIVE_SIDS} <= sids
    # in the policy of every environment they serve the native one only: that is where test_enforced_run.py
    # proves each is needed
    provenance = {s["Sid"]: s for s in principals.statements("ci")}
    assert all(provenance[sid]["envs"] == ["native"] for sid in ("EcsNativeUpdate", "EcsServiceRevisions",
                                                                  *NATIVE_SIDS))  # fmt: skip
    tagging = next(s for s in policy["Statement"] if s["Sid"] == "EcsTagTaskDefinition")
    assert tagging["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
    principals.grant("ci", policy)
    try:
        commit_all(principals.repo, "native under its own policy")
        sandbox.clear_requests()
        done = principals.run("-e", "native", "run", "-m", "payment-api")
        assert done.code == 0, done.output
        log = sandbox.requests()
    finally:
        principals.grant("ci")
    operations = {e["operation"] for e in log if "user/ci" in (e.get("principal") or "")}
    assert {"RegisterTaskDefinition", "UpdateService", "DescribeServiceDeployments", "DescribeListeners"} <= operations
    refused = [c for e in log for c in e.get("iam") or [] if c["decision"] != "allowed"]
    assert refused == []
    assert undeclared(log, {"ci": policy}, ARNS) == []
    assert sandbox_mismatches(log) == []
    tagged = [c for e in log if e["operation"] == "RegisterTaskDefinition" for c in e.get("iam") or []]
    assert any(c["action"] == "ecs:TagResource" for c in tagged)  # tag-on-create is authorised, as AWS does


def test_the_migration_runs_with_the_setup_policy_and_needs_it(principals: Principals, sandbox: SandboxProcess) -> None:
    """`deployfw migrate` (setup) as ci: refused without the setup statements, done with them."""
    plain = principals.policy("ci")
    done = run_cli(principals.sandbox.run_env(), principals.repo, "iam", "policy", "--for", "ci", "--json",
                   "--account", ACCOUNT, "--include-setup")  # fmt: skip
    assert done.code == 0, done.output
    setup = json.loads(done.stdout)["policy"]
    sids = {s["Sid"]: s for s in setup["Statement"]}
    assert "MigrateSwitchController" in sids and "MigrateSwitchController" not in {s["Sid"] for s in plain["Statement"]}
    passing = sids["MigratePassInfrastructureRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs.amazonaws.com"}}
    migrate = ("migrate", "payment-api", "--to", "ecs-native", "--role", "deployfw-ecs-infrastructure-role", "--yes")

    refused = principals.run(*migrate)  # the run's policy only
    assert refused.code != 0 and "AccessDenied" in refused.output, refused.output

    principals.grant("ci", setup)
    try:
        sandbox.clear_requests()
        switched = principals.run(*migrate)
        log = sandbox.requests()
    finally:
        principals.grant("ci")
    assert switched.code == 0, switched.output
    operations = {e["operation"] for e in log if "user/ci" in (e.get("principal") or "")}
    assert {"ModifyListener", "UpdateService", "GetRole", "DescribeServiceDeployments"} <= operations
    passed = [c for e in log if e["operation"] == "UpdateService" for c in e.get("iam") or []]
    assert any(c["action"] == "iam:PassRole" and c["decision"] == "allowed" for c in passed)
    assert undeclared(log, {"ci": setup}, ARNS) == []
    assert sandbox_mismatches(log) == []
