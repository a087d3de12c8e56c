"""The one boundary to AWS: boto3 clients with deployfw's retry policy.

Every AWS call of every backend goes through :meth:`Aws.call`, so there is a
single retry policy (tenacity: jittered exponential backoff inside a deadline)
for throttling, 5xx answers, connection resets and timeouts, and everything
else fails at once with the service's own message. botocore's own retries are
switched off so the two policies never multiply. The endpoint is the only
thing that differs between real AWS and the sandbox: ``AWS_ENDPOINT_URL`` (or
the run's ``endpoint_url``), exactly as boto3 and awscli honour it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions
import tenacity

from deployfw import redact
from deployfw.errors import ExternalError

if TYPE_CHECKING:
    from deployfw.backends import RunContext
    from deployfw.iam.denied import Denial

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "ServerException",
    }
)
DEFAULT_DEADLINE = 120.0  # seconds one logical call may spend retrying
IDENTITY_DEADLINE = 20.0
"""Seconds the caller-identity call (STS GetCallerIdentity) may spend retrying. It is every command's first
contact with AWS: when AWS does not answer it (no network, a wrong endpoint), it will not answer the next call
either, and read-only commands (``plan``, ``status``) fall back at once instead of after minutes of retries."""


class AwsError(ExternalError):
    """An AWS call failed for good; ``code`` is the service's error code when there is one.

    ``transient`` says whether the failure was one the retry policy retries (throttling, 5xx,
    a dropped connection): a caller that repeats a whole sequence of calls (an upload that must
    start over) asks :func:`is_transient`, which reads it.
    """

    def __init__(
        self,
        service: str,
        operation: str,
        message: str,
        code: str | None = None,
        *,
        transient: bool = False,
        denial: Denial | None = None,
    ) -> None:
        self.service, self.operation, self.code, self.transient = service, operation, code, transient
        self.denial = denial  # an AccessDenied: who may not do what where (``message`` is then the fix)
        self.detail = redact.mask(message)  # the service's own message, without the call's name
        super().__init__(redact.mask(f"{service}.{operation} failed: {message}"))


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and broken connections are worth retrying; nothing else is."""
    if isinstance(exc, AwsError):
        return exc.transient
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in RETRYABLE_CODES or status >= 500 or status == 429
    return isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError
        | ConnectionError,
    )


class Aws:
    """boto3 clients for one region and endpoint, created once and shared by threads."""

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str | None = None,
        deadline: float = DEFAULT_DEADLINE,
        sleep: Callable[[float], None] = time.sleep,
        clients: Mapping[str, Any] | None = None,
        advise: Callable[[Denial], str] | None = None,
    ) -> None:
        """``clients`` pre-sets clients by service name (tests wrap real ones to record or fail calls);
        ``advise`` turns an AccessDenied into the fix (:func:`deployfw.iam.denied.advisor`)."""
        redact.register_environment()
        self.region = region
        self.endpoint_url = endpoint_url
        self.deadline = deadline
        self._sleep = sleep
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = dict(clients or {})
        self._lock = threading.Lock()
        self._account: str | None = None
        self._identity_error: AwsError | None = None
        self._advise = advise
        self._config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="deployfw",
        )

    def client(self, service: str) -> Any:
        """A raw client; prefer :meth:`call`, which applies the retry policy."""
        with self._lock:
            if service not in self._clients:
                kwargs: dict[str, Any] = {"config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[service] = self._session.client(service, **kwargs)
            return self._clients[service]

    def retrying(self, deadline: float | None = None) -> tenacity.Retrying:
        """The retry policy: jittered exponential backoff on transient faults, within a deadline.

        :meth:`call` applies it to one call; a caller whose unit of work is a *sequence* of calls
        that must start over together (a layer upload whose lost part answer leaves the byte
        position unknown) iterates it around the sequence and makes each call with ``retry=False``.
        """
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=5.0),
            stop=tenacity.stop_after_delay(self.deadline if deadline is None else deadline),
            sleep=self._sleep,
            reraise=True,
        )

    def call(
        self,
        service: str,
        operation: str,
        /,
        *,
        deadline: float | None = None,
        retry: bool = True,
        **params: Any,
    ) -> dict[str, Any]:
        """Call ``operation`` (snake_case) with the retry policy; raise :class:`AwsError` when it fails.

        ``retry=False`` makes exactly one attempt (the caller retries a larger unit of work).
        """
        method = getattr(self.client(service), operation)
        try:
            if not retry:
                return dict(method(**params))
            return dict(self.retrying(deadline)(method, **params))
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            message, code = error.get("Message") or str(exc), error.get("Code")
            denial = self._denial(service, operation, code, message)
            if denial is not None:
                from deployfw.iam.denied import explain

                fix = self._advise(denial) if self._advise else explain(denial, None)
                raise AwsError(service, operation, f"{code}: {fix}", code, denial=denial) from None
            raise AwsError(service, operation, message, code, transient=is_transient(exc)) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(service, operation, str(exc), transient=is_transient(exc)) from None

    def _denial(self, service: str, operation: str, code: str | None, message: str) -> Denial | None:
        """An AccessDenied (any service's spelling) as who/what/where; None for other errors."""
        from deployfw.iam.denied import DENIED_CODES, parse

        if code not in DENIED_CODES:
            return None
        meta = getattr(self.client(service), "meta", None)
        mapping = getattr(meta, "method_to_api_mapping", None)
        api_name = (mapping.get(operation) if isinstance(mapping, dict) else None) or "".join(
            part.capitalize() for part in operation.split("_")
        )
        prefix = getattr(getattr(meta, "service_model", None), "signing_name", None) or service
        return parse(code, message, f"{service}.{operation}", f"{prefix}:{api_name}")

    def account_id(self) -> str:
        """The caller's account, asked once; a failure is remembered too, so a second asker does not wait again."""
        if self._account is None:
            if self._identity_error is not None:
                raise self._identity_error
            try:
                answer = self.call("sts", "get_caller_identity", deadline=min(self.deadline, IDENTITY_DEADLINE))
            except AwsError as exc:
                self._identity_error = exc
                raise
            self._account = str(answer["Account"])
        return self._account


def aws_for(ctx: RunContext) -> Aws:
    """The run's shared :class:`Aws`, created on first use."""
    from deployfw.iam.denied import advisor

    shared: Aws = ctx.resource("aws", lambda: Aws(ctx.region, endpoint_url=ctx.endpoint_url, advise=advisor(ctx)))
    return shared
