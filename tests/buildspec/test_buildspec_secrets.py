"""Secrets: resolution through the resolver protocol and AWS (moto), masking in every line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from buildspec_helpers import run

from deployfw.buildspec import parse_secret_reference
from deployfw.buildspec.aws_resolver import AwsSecretResolver
from deployfw.errors import ExternalError


class StubResolver:
    """Returns fixed values and records what was asked for."""

    def __init__(self, parameters: dict[str, str], secrets: dict[str, str]) -> None:
        self.parameters = parameters
        self.secrets = secrets
        self.asked: list[str] = []

    def get_parameter(self, name: str) -> str:
        self.asked.append(name)
        if name not in self.parameters:
            raise ExternalError(f"ParameterNotFound: {name}")
        return self.parameters[name]

    def get_secret(self, reference: str) -> str:
        self.asked.append(reference)
        return self.secrets[reference]


def unique(prefix: str) -> str:
    """Secrets are registered process-wide, so each test uses values of its own."""
    return f"{prefix}-{uuid.uuid4().hex}"


BUILDSPEC = """
    version: 0.2
    env:
      parameter-store:
        DB_PASSWORD: /shop/db-password
      secrets-manager:
        API_TOKEN: shop/api:token
      exported-variables: [DB_PASSWORD]
    phases:
      build:
        commands:
          - echo "password is $DB_PASSWORD"
          - echo "token is $API_TOKEN" >&2
          - printf '%s\\n' "$DB_PASSWORD" | rev | rev
          - echo "$DB_PASSWORD" | sed 's/^/prefix:/'
          - "false $API_TOKEN"
    """


def test_resolved_values_are_visible_to_commands_but_masked_in_every_line(
    tmp_path: Path,
) -> None:
    password, token = unique("pw"), unique("tok")
    resolver = StubResolver({"/shop/db-password": password}, {"shop/api:token": token})
    done = run(BUILDSPEC, tmp_path, resolver=resolver)
    assert done.output[:4] == ["password is ***", "token is ***", "***", "prefix:***"]
    assert done.result.error == ("BUILD: Error while executing command: false $API_TOKEN. Reason: exit status 1")
    for line in done.lines:
        assert password not in line and token not in line
    assert resolver.asked == ["/shop/db-password", "shop/api:token"]
    # Exported values are data for the pipeline, not log lines: they keep the real value.
    assert done.result.exported_variables == {"DB_PASSWORD": password}


def test_caller_override_wins_and_is_not_looked_up(tmp_path: Path) -> None:
    resolver = StubResolver({}, {"shop/api:token": unique("tok")})
    done = run(
        """
        version: 0.2
        env:
          parameter-store: {DB_PASSWORD: /missing}
          secrets-manager: {API_TOKEN: "shop/api:token"}
        phases:
          build: {commands: ['echo "$DB_PASSWORD"']}
        """,
        tmp_path,
        resolver=resolver,
        env={"DB_PASSWORD": "from-caller"},
    )
    assert done.output == ["from-caller"]
    assert resolver.asked == ["shop/api:token"]


def test_a_resolver_failure_fails_the_build_before_any_phase(tmp_path: Path) -> None:
    done = run(
        """
        version: 0.2
        env:
          parameter-store: {DB_PASSWORD: /missing}
        phases:
          build: {commands: [echo never]}
        """,
        tmp_path,
        resolver=StubResolver({}, {}),
    )
    assert done.result.status == "FAILED"
    assert done.result.phases == []
    assert done.output == []
    assert "env.parameter-store.DB_PASSWORD (/missing)" in done.result.error
    assert "ParameterNotFound" in done.result.error


def test_secret_reference_syntax() -> None:
    arn = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:db-AbCdEf"
    assert parse_secret_reference(f"{arn}:password::v-1").secret_id == arn
    ref = parse_secret_reference("db:password:AWSPREVIOUS")
    assert (ref.secret_id, ref.json_key, ref.version_stage, ref.version_id) == ("db", "password", "AWSPREVIOUS", None)
    assert parse_secret_reference("db").json_key is None
    with pytest.raises(ValueError, match="not both"):
        parse_secret_reference("db:k:AWSCURRENT:v1")
    with pytest.raises(ValueError, match="too many"):
        parse_secret_reference("db:k:s::extra")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_sandbox: Any) -> Iterator[None]:
    """This process's AWS clients on an in-process sandbox, the endpoint path deployfw takes to AWS.

    moto's state is process-wide and other sandboxes of this test process may be serving from
    it, so nothing is reset: what a test creates is deleted after it instead.
    """
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "AWS_ENDPOINT_URL": aws_sandbox.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ssm = boto3.client("ssm", region_name="ap-northeast-2")
    sm = boto3.client("secretsmanager", region_name="ap-northeast-2")
    parameters = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    secrets = {s["ARN"] for s in sm.list_secrets()["SecretList"]}
    yield
    for name in {p["Name"] for p in ssm.describe_parameters()["Parameters"]} - parameters:
        ssm.delete_parameter(Name=name)
    for arn in {s["ARN"] for s in sm.list_secrets()["SecretList"]} - secrets:
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_parameter_store_and_secrets_manager_through_aws(aws: None, tmp_path: Path) -> None:
    password, token, old_token = unique("pw"), unique("tok"), unique("old")
    ssm = boto3.client("ssm", region_name="ap-northeast-2")
    ssm.put_parameter(Name="/shop/db-password", Value=password, Type="SecureString")
    sm = boto3.client("secretsmanager", region_name="ap-northeast-2")
    sm.create_secret(Name="shop/api", SecretString=json.dumps({"token": old_token}))
    arn = sm.put_secret_value(SecretId="shop/api", SecretString=json.dumps({"token": token, "user": "svc"}))["ARN"]
    spec = """
        version: 0.2
        env:
          parameter-store: {DB_PASSWORD: /shop/db-password}
          secrets-manager:
            API_TOKEN: "shop/api:token"
            OLD_TOKEN: "shop/api:token:AWSPREVIOUS"
            WHOLE: "ARN"
        phases:
          build:
            commands:
              - test "$DB_PASSWORD" = "$WANT_PW"
              - test "$API_TOKEN" = "$WANT_TOKEN"
              - test "$OLD_TOKEN" = "$WANT_OLD"
              - echo "$WHOLE"
              - echo "$WHOLE" | cut -c2-
        """.replace("ARN", arn)
    done = run(
        spec,
        tmp_path,
        resolver=AwsSecretResolver(),
        env={"WANT_PW": password, "WANT_TOKEN": token, "WANT_OLD": old_token},
    )
    assert done.result.status == "SUCCEEDED", done.lines
    # The whole JSON secret is masked, and so is each value inside it.
    assert all(token not in line for line in done.lines)
    assert done.output == ["***", '"token": "***", "user": "svc"}']


def test_aws_resolver_reports_missing_values_without_leaking(aws: None) -> None:
    resolver = AwsSecretResolver(region_name="ap-northeast-2")
    with pytest.raises(ExternalError, match="ssm GetParameter /nope: ParameterNotFound"):
        resolver.get_parameter("/nope")
    with pytest.raises(ExternalError, match="secretsmanager GetSecretValue nope"):
        resolver.get_secret("nope")
    boto3.client("secretsmanager", region_name="ap-northeast-2").create_secret(Name="plain", SecretString="not-json")
    with pytest.raises(ExternalError, match="is not JSON, so it has no key 'k'") as info:
        resolver.get_secret("plain:k")
    assert "not-json" not in str(info.value)


def test_importing_the_package_does_not_import_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, deployfw.buildspec; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
