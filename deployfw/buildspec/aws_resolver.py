"""Resolve buildspec secrets from AWS Systems Manager and Secrets Manager.

boto3 is imported on first use, not at import time, so loading the buildspec
package (and ``deployfw --help``) stays fast. ``endpoint_url`` points the
clients at the sandbox; without it boto3's own resolution applies (including
``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from typing import Any

from deployfw.buildspec.secrets import extract_json_key, parse_secret_reference
from deployfw.errors import ExternalError


class AwsSecretResolver:
    """A :class:`~deployfw.buildspec.secrets.SecretResolver` backed by boto3.

    Clients are created lazily and retried with botocore's standard retry
    mode, which covers throttling and transient 5xx the way every other AWS
    boundary in deployfw does.
    """

    def __init__(
        self,
        *,
        session: Any | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._session = session
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            session = self._session or boto3.session.Session()
            self._clients[service] = session.client(
                service,
                region_name=self._region_name,
                endpoint_url=self._endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        return self._clients[service]

    def get_parameter(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client("ssm").get_parameter(Name=name, WithDecryption=True)
        except ClientError as exc:
            raise ExternalError(f"ssm GetParameter {name}: {_describe(exc)}") from None
        except BotoCoreError as exc:
            raise ExternalError(f"ssm GetParameter {name}: {exc}") from None
        return str(response["Parameter"]["Value"])

    def get_secret(self, reference: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

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
            response = self._client("secretsmanager").get_secret_value(**kwargs)
        except ClientError as exc:
            raise ExternalError(
                f"secretsmanager GetSecretValue {ref.secret_id}: {_describe(exc)}"
            ) from None
        except BotoCoreError as exc:
            raise ExternalError(f"secretsmanager GetSecretValue {ref.secret_id}: {exc}") from None
        if "SecretString" not in response:
            raise ExternalError(
                f"secret {ref.secret_id!r} is binary; a build variable needs a string secret"
            )
        value = str(response["SecretString"])
        if ref.json_key is None:
            return value
        try:
            return extract_json_key(value, ref)
        except ValueError as exc:
            raise ExternalError(str(exc)) from None


def _describe(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
