"""ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment.

Answered from :mod:`.ecs_native`'s records in botocore's shapes. What the API reference
documents, the sandbox does: a page holds 20 deployments unless ``maxResults`` (1-100) says
otherwise, newest first, filtered by ``status`` and ``createdAt``; describing takes at most 20
ARNs and reports unknown ones as ``failures`` with reason MISSING; StopServiceDeployment accepts
stop type ROLLBACK (the only one the reference calls valid) on a deployment that has not
completed - a PENDING or IN_PROGRESS one moves to ROLLBACK_REQUESTED, one already stopping or
rolling back continues - refuses a completed one (ConflictException) and an unknown ARN
(ServiceDeploymentNotFoundException).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException, InvalidParameterException

from deployfw.sandbox.aws import context
from deployfw.sandbox.aws.ecs_native_model import COMPLETED

if TYPE_CHECKING:
    from deployfw.sandbox.aws.ecs import SandboxEcsBackend

PAGE = 20
MAX_ARNS = 20


class ServiceDeploymentNotFoundException(ECSException):
    def __init__(self, arn: str) -> None:
        super().__init__("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")


class ConflictException(ECSException):
    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message)


def list_deployments(
    backend: SandboxEcsBackend,
    cluster: str,
    service_ref: str,
    statuses: list[str] | None,
    created: dict[str, Any] | None,
    token: str | None,
    max_results: int | None,
) -> tuple[list[dict[str, Any]], str | None]:
    with context.current().lock:
        backend.advance()
        service = backend._get_service(cluster, service_ref.split("/")[-1])
        if max_results is not None and not 1 <= max_results <= 100:
            raise InvalidParameterException("maxResults must be between 1 and 100.")
        engine = backend.native
        records = [engine.records[a] for a in engine.by_service.get(engine.key(service), [])]
        after, before = _instant((created or {}).get("after")), _instant((created or {}).get("before"))
        found = [
            r for r in records
            if (not statuses or r.status in statuses)
            and (after is None or r.created_at.timestamp() >= after)
            and (before is None or r.created_at.timestamp() <= before)
        ]  # fmt: skip
        start = _offset(token)
        size = max_results or PAGE
        page = found[start : start + size]
        following = start + size
        next_token = base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(found) else None
        return [r.brief() for r in page], next_token


def describe_deployments(backend: SandboxEcsBackend, arns: list[str]) -> tuple[list[dict[str, Any]], list[Any]]:
    _check_arns(arns, "serviceDeploymentArns")
    with context.current().lock:
        backend.advance()
        engine = backend.native
        found, failures = [], []
        for arn in arns:
            record = engine.records.get(arn)
            if record is None:
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            owners = [record.target.owner, *(r.owner for r in record.source)]
            counts = {owner: engine.counts(owner) for owner in owners}
            service = backend.services.get(f"{record.cluster}:{record.service}")
            desired = int(service.desired_count) if service is not None else 0
            found.append(record.describe(counts, desired))
        return found, failures


def describe_revisions(backend: SandboxEcsBackend, arns: list[str]) -> tuple[list[dict[str, Any]], list[Any]]:
    _check_arns(arns, "serviceRevisionArns")
    with context.current().lock:
        engine = backend.native
        found, failures = [], []
        for arn in arns:
            revision = engine.revisions.get(arn)
            if revision is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(revision.describe())
        return found, failures


def stop_deployment(backend: SandboxEcsBackend, arn: str, stop_type: str | None) -> str:
    with context.current().lock:
        backend.advance()
        with backend.native.lock:
            record = backend.native.records.get(arn)
            if record is None:
                raise ServiceDeploymentNotFoundException(arn)
            if (stop_type or "ROLLBACK") != "ROLLBACK":
                raise InvalidParameterException(f"Invalid stopType {stop_type!r}: the valid value is ROLLBACK.")
            if record.status in COMPLETED:
                raise ConflictException(
                    f"The service deployment {arn} is already {record.status} and cannot be stopped."
                )
            if record.status in ("PENDING", "IN_PROGRESS"):
                record.status = "ROLLBACK_REQUESTED"
                record.status_reason = "Service deployment rolled back because of a StopServiceDeployment request."
                record.touch()
        backend.advance()
        return arn


def _check_arns(arns: list[str], name: str) -> None:
    if not arns:
        raise InvalidParameterException(f"{name} can not be empty.")
    if len(arns) > MAX_ARNS:
        raise InvalidParameterException(f"{name} can have at most {MAX_ARNS} items.")


def _instant(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterException("Invalid nextToken.") from None


class NativeResponses:
    """Response methods the ECS response class gains (moto dispatches by operation name)."""

    def _native_backend(self) -> SandboxEcsBackend:
        return self.ecs_backend  # type: ignore[attr-defined]

    def _param(self, name: str, default: Any = None) -> Any:
        return self._get_param(name, default)  # type: ignore[attr-defined]

    def list_service_deployments(self) -> ActionResult:
        found, token = list_deployments(
            self._native_backend(),
            self._param("cluster", "default"),
            self._param("service"),
            self._param("status"),
            self._param("createdAt"),
            self._param("nextToken"),
            self._param("maxResults"),
        )
        return ActionResult({"serviceDeployments": found, **({"nextToken": token} if token else {})})

    def describe_service_deployments(self) -> ActionResult:
        found, failures = describe_deployments(self._native_backend(), self._param("serviceDeploymentArns", []))
        return ActionResult({"serviceDeployments": found, "failures": failures})

    def describe_service_revisions(self) -> ActionResult:
        found, failures = describe_revisions(self._native_backend(), self._param("serviceRevisionArns", []))
        return ActionResult({"serviceRevisions": found, "failures": failures})

    def stop_service_deployment(self) -> ActionResult:
        arn = stop_deployment(self._native_backend(), self._param("serviceDeploymentArn"), self._param("stopType"))
        return ActionResult({"serviceDeploymentArn": arn})
