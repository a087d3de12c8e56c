"""``DEPLOYFW_SANDBOX_IAM=least-privilege deployfw --sandbox run``: the run is made as ``deployfw-ci``,
which holds exactly the generated ci policy (one command proves the policy), and a bad mode is bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from run_helpers import copy_example

from deployfw.testing.cli import deployfw_command, terminal_env

pytestmark = pytest.mark.sandbox


def run(repo: Path, mode: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*deployfw_command(), *argv], cwd=repo, capture_output=True, text=True, timeout=240,
                          env=terminal_env(DEPLOYFW_SANDBOX_IAM=mode, DEPLOYFW_SANDBOX_TIME_SCALE="0"))  # fmt: skip


def test_an_in_process_sandbox_run_as_the_generated_ci_policy(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    done = run(repo, "least-privilege", "--sandbox", "run", "-m", "product-api", "-m", "user-api")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout and "AccessDenied" not in done.stderr


def test_an_unknown_mode_is_bad_input(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    done = run(repo, "everything", "--sandbox", "run", "-m", "user-api")
    assert done.returncode == 2 and "DEPLOYFW_SANDBOX_IAM='everything'" in done.stderr


def test_deployfw_sandbox_enforce_iam_prints_an_administrators_keys(tmp_path: Path) -> None:
    import boto3
    from botocore.exceptions import ClientError

    repo = copy_example(tmp_path / "repo")
    proc = subprocess.Popen([*deployfw_command(), "sandbox", "--enforce-iam", "--port", "0", "--jenkins-port", "0"],
                            cwd=repo, env=terminal_env(DEPLOYFW_SANDBOX_TIME_SCALE="0"), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(6)]
        env = dict(line.split("=", 1) for line in lines)
        assert list(env) == ["AWS_ENDPOINT_URL", "JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN",
                             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]  # fmt: skip

        def sts(key: str, secret: str) -> object:
            return boto3.client("sts", region_name="ap-northeast-2", endpoint_url=env["AWS_ENDPOINT_URL"],
                                aws_access_key_id=key, aws_secret_access_key=secret)  # fmt: skip

        admin = sts(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        assert admin.get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/deployfw-admin"  # type: ignore[attr-defined]
        with pytest.raises(ClientError) as refused:
            sts("sandbox", "sandbox-secret").get_caller_identity()  # type: ignore[attr-defined]
        assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
