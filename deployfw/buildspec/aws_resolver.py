"""Resolve buildspec secrets from AWS Systems Manager and Secrets Manager.

Calls go through deployfw's AWS boundary (:class:`deployfw.aws.clients.Aws`), so they are
retried by the one policy every other AWS call uses. boto3 is imported on first use, not
at import time, so loading the buildspec package (and ``deployfw --help``) stays fast.
``endpoint_url`` points the clients at the sandbox; without it boto3's own resolution
applies (including ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployfw.buildspec.secrets import extract_json_key, parse_secret_reference
from deployfw.errors import ExternalError

if TYPE_CHECKING:
    from deployfw.aws.clients import Aws


class AwsSecretResolver:
    """A :class:`~deployfw.buildspec.secrets.SecretResolver` backed by the AWS boundary."""

    def __init__(
        self, *, aws: Aws | None = None, region_name: str | None = None, endpoint_url: str | None = None
    ) -> None:
        self._aws = aws
        self._region_name = region_name
        self._endpoint_url = endpoint_url

    def _call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        from deployfw.aws.clients import Aws, AwsError

        if self._aws is None:
            import boto3

            region = self._region_name or boto3.session.Session().region_name or "us-east-1"
            self._aws = Aws(region, endpoint_url=self._endpoint_url)
        try:
            return self._aws.call(service, operation, **params)
        except AwsError as exc:
            raise ExternalError(f"{exc.code or 'Error'}: {exc.detail}") from None

    def get_parameter(self, name: str) -> str:
        try:
            response = self._call("ssm", "get_parameter", Name=name, WithDecryption=True)
        except ExternalError as exc:
            raise ExternalError(f"ssm GetParameter {name}: {exc}") from None
        return str(response["Parameter"]["Value"])

    def get_secret(self, reference: str) -> str:
        try:
            ref = parse_secret_reference(reference)
        except ValueError as exc:
            raise ExternalError(f"secrets manager reference {reference!r}: {exc}") from None
        kwargs: dict[str, str] = {"SecretId": ref.secret_id}
        if ref.version_stage:
            kwargs["VersionStage"] = ref.version_stage
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        try:
            response = self._call("secretsmanager", "get_secret_value", **kwargs)
        except ExternalError as exc:
            raise ExternalError(f"secretsmanager GetSecretValue {ref.secret_id}: {exc}") from None
        if "SecretString" not in response:
            raise ExternalError(f"secret {ref.secret_id!r} is binary; a build variable needs a string secret")
        value = str(response["SecretString"])
        if ref.json_key is None:
            return value
        try:
            return extract_json_key(value, ref)
        except ValueError as exc:
            raise ExternalError(str(exc)) from None
