"""Principals holding the generated policies in an IAM-enforcing sandbox, and runs as them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deployfw.testing import CliResult, SandboxProcess, run_cli

ACCOUNT = "123456789012"
CODEBUILD_ROLE = "deployfw-codebuild-role"  # the role the sandbox's CodeBuild projects name
JENKINS_USER = "jenkins-agent"  # the user the sandbox's Jenkins jobs run as
# Prefixes of the request log's principal ARNs -> the deployfw principal they act as.
ARNS = {
    f"arn:aws:iam::{ACCOUNT}:user/ci": "ci",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/{CODEBUILD_ROLE}/": "codebuild",
    f"arn:aws:iam::{ACCOUNT}:user/{JENKINS_USER}": "jenkins",
}


class Principals:
    """``ci``, the CodeBuild role and the Jenkins agent, each holding ``deployfw iam policy --for`` its name."""

    def __init__(self, sandbox: SandboxProcess, repo: Path) -> None:
        self.sandbox = sandbox
        self.repo = repo
        self.iam = sandbox.client("iam")
        self.generated: dict[str, dict[str, Any]] = {}
        self.declared: dict[str, dict[str, Any]] = {}  # everything declared, optional needs included
        self.keys: dict[str, str] = {}

    def create(self) -> Principals:
        for principal in ("ci", "codebuild", "jenkins"):
            for extra, into in (((), self.generated), (("--include-optional",), self.declared)):
                done = run_cli(self.sandbox.run_env(), self.repo, "iam", "policy", "--for", principal, "--json",
                               "--account", ACCOUNT, *extra)  # fmt: skip
                assert done.code == 0, done.output
                into[principal] = json.loads(done.stdout)
        self.iam.create_user(UserName="ci")
        key = self.iam.create_access_key(UserName="ci")["AccessKey"]
        self.keys = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        for principal in self.generated:
            self.grant(principal)
        return self

    def policy(self, principal: str) -> dict[str, Any]:
        return dict(self.generated[principal]["policy"])

    def statements(self, principal: str) -> list[dict[str, Any]]:
        """The generated statements with the modules and environments each serves (``--json`` provenance)."""
        why = {s["sid"]: s for s in self.generated[principal]["statements"]}
        return [{**s, "modules": why[s["Sid"]]["modules"], "envs": why[s["Sid"]]["envs"]}
                for s in self.policy(principal)["Statement"]]  # fmt: skip

    def grant(self, principal: str, document: dict[str, Any] | None = None) -> None:
        """Make ``document`` (default: the generated policy) the principal's only policy."""
        document = document or self.policy(principal)
        if not document["Statement"]:  # IAM refuses a policy without statements: hold none at all
            if principal == "codebuild":
                self.iam.delete_role_policy(RoleName=CODEBUILD_ROLE, PolicyName="deployfw")
            else:
                self.iam.delete_user_policy(UserName="ci" if principal == "ci" else JENKINS_USER, PolicyName="deployfw")
            return
        text = json.dumps(document)
        if principal == "ci":
            self.iam.put_user_policy(UserName="ci", PolicyName="deployfw", PolicyDocument=text)
        elif principal == "codebuild":
            self.iam.put_role_policy(RoleName=CODEBUILD_ROLE, PolicyName="deployfw", PolicyDocument=text)
        else:
            self.iam.put_user_policy(UserName=JENKINS_USER, PolicyName="deployfw", PolicyDocument=text)

    def without(self, principal: str, sid: str) -> dict[str, Any]:
        document = self.policy(principal)
        return {**document, "Statement": [s for s in document["Statement"] if s["Sid"] != sid]}

    def run(self, *argv: str) -> CliResult:
        """``deployfw ARGV`` in the repository as user ``ci`` (its keys, the sandbox's endpoints)."""
        return run_cli(self.sandbox.run_env(**self.keys), self.repo, *argv)

    def forget_images(self, repository: str) -> None:
        """Delete every image of ``repository`` - or every revision bundle of a module deployed to servers
        (s3 registry) - as the administrator, so the next run builds and pushes."""
        ecr = self.sandbox.client("ecr")
        if repository in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]:
            ids = ecr.list_images(repositoryName=repository).get("imageIds") or []
            if ids:
                ecr.batch_delete_image(repositoryName=repository, imageIds=ids)
            return
        s3 = self.sandbox.client("s3")
        for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or []
                    if f"/{repository}/" in f"/{o['Key']}"]  # fmt: skip
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
