"""The generated policies, proven: the example runs with exactly them, and with any statement less it fails.

The sandbox enforces IAM (``DEPLOYFW_SANDBOX_IAM=enforce``); user ``ci`` runs deployfw, the CodeBuild
projects' role builds order-api, the Jenkins agent user builds in the ``mixed`` environment - each
holding exactly ``deployfw iam policy --for`` its name. The request log then shows who called what,
and every call is held to AWS's service authorization data.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from iam_helpers import ARNS, Principals
from run_helpers import commit_all

from deployfw.testing import SandboxProcess
from deployfw.testing.cli import deployfw_command
from deployfw.testing.iam import sandbox_mismatches, undeclared

pytestmark = [pytest.mark.sandbox, pytest.mark.long]
# Which module exercises a statement: a local build and rolling deploy is the quickest, so first.
PREFERENCE = ("product-api", "user-api", "payment-api", "order-api", "legacy-api")


def test_the_example_runs_with_exactly_the_generated_policies(
    principals: Principals, sandbox: SandboxProcess
) -> None:
    sandbox.clear_requests()
    done = principals.run("-e", "mixed", "run", "--all")
    assert done.code == 0, done.output
    log = sandbox.requests()
    callers = {entry.get("principal", "").split(":")[-1].split("/")[0:2][-1] for entry in log}
    assert {"ci", "deployfw-codebuild-role", "jenkins-agent"} <= callers, callers
    # nothing refused but what deployfw works without (the traffic split of order-api's linear deployment),
    # and that refusal was logged with its fix
    refused = {c["action"] for e in log for c in e.get("iam") or [] if c["decision"] != "allowed"}
    assert refused <= {"codedeploy:GetDeploymentTarget"}, refused
    if refused:
        assert "traffic split not shown" in done.output and "codedeploy:GetDeploymentTarget" in done.output
    # every call is one its principal's declarations cover, by AWS's own operation -> action data
    declared = {name: principals.declared[name]["policy"] for name in ("ci", "codebuild", "jenkins")}
    assert undeclared(log, declared, ARNS) == []
    # and the sandbox authorised each with the action and resource type AWS would
    assert sandbox_mismatches(log) == []


def scenario(principals: Principals, principal: str, statement: dict, env: str | None) -> str:
    """Run one module with ``statement`` missing from ``principal``'s policy; the failed command's output.

    The run builds and pushes (the module's images are deleted first) and deploys; when it succeeds,
    a rollback follows (it reads the recorded task definition). A statement only a cancelled deploy
    needs (StopDeployment) is proven by cancelling one while it runs.
    """
    module = next(m for m in PREFERENCE if m in statement["modules"]) if statement["modules"] else "user-api"
    if env not in statement["envs"]:  # a statement only an environment overlay needs (e.g. ecs-native's)
        env = statement["envs"][0]
    commit_all(principals.repo, f"without {statement['Sid']}")
    principals.forget_images(module)  # a build and a push, not a reuse
    principals.grant(principal, principals.without(principal, statement["Sid"]))
    selection = ("-e", env) if env else ()
    try:
        if "codedeploy:StopDeployment" in statement["Action"]:
            return cancelled(principals, module)
        outputs = []
        done = principals.run(*selection, "run", "-m", module)
        outputs.append(done)
        if done.code == 0:  # what `run` needs is there; a rollback reads the recorded task definition
            commit_all(principals.repo, f"again without {statement['Sid']}")  # something to roll back from
            again = principals.run(*selection, "run", "-m", module)
            outputs += [again, principals.run(*selection, "rollback", module)] if again.code == 0 else [again]
    finally:
        principals.grant(principal)
    failed = [o for o in outputs if o.code != 0]
    assert failed, f"{principal} without {statement['Sid']}: {module} still deployed and rolled back"
    return failed[-1].output


def cancelled(principals: Principals, module: str) -> str:
    """``deployfw run -m MODULE`` as ci, interrupted (SIGINT) once its CodeDeploy deployment exists."""
    sandbox = principals.sandbox
    sandbox.clear_requests()
    proc = subprocess.Popen([*deployfw_command(), "run", "-m", module], cwd=principals.repo,
                            env=sandbox.run_env(**principals.keys), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        while proc.poll() is None and not any(
            r["operation"] == "CreateDeployment" and r["status"] == 200 for r in sandbox.requests()
        ):
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before its deployment could be cancelled"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, output
    return output


@pytest.mark.parametrize("principal", ["ci", "codebuild", "jenkins"])
def test_every_statement_is_needed(principals: Principals, principal: str) -> None:
    env = "mixed" if principal == "jenkins" else None
    for statement in principals.statements(principal):
        output = scenario(principals, principal, statement, env)
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert any(action in output for action in actions), f"{statement['Sid']}: no action named in\n{output}"
        if statement["Sid"] == "EcsUpdateService":  # registered, then refused: the run says what it left
            assert "was registered but not deployed" in output


def test_a_run_without_passrole_prints_the_fix_in_one_line(principals: Principals) -> None:
    statement = next(s for s in principals.statements("ci") if s["Sid"] == "PassTaskRoles")
    output = scenario(principals, "ci", statement, None)
    role = statement["Resource"]
    lines = [line for line in output.splitlines() if "iam:PassRole" in line and role in line]
    assert lines, output
    assert any("iam:PassedToService" in line and "ecs-tasks.amazonaws.com" in line and "user/ci" in line
               for line in lines), lines  # fmt: skip
    fix = re.search(r"add this statement to its IAM policy: (\{.*?\}\}\})", lines[0])
    assert fix is not None, lines[0]
