"""The EC2/on-premises (Server) platform: validate the revision, then progress.

There are no instances in the sandbox, so a Server deployment checks what CodeDeploy
checks before touching one (the S3 bundle exists) and then succeeds, or fails when a
``deploy:<module>`` fault is injected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.codedeploy.models import DeploymentInfo

    from deployfw.sandbox.aws.codedeploy import Progress


def _s3_object_exists(account_id: str, location: dict[str, Any]) -> bool:
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    try:
        backend.get_object(location.get("bucket", ""), location.get("key", ""), location.get("version"))
    except Exception:
        return False
    return backend.get_object(location.get("bucket", ""), location.get("key", "")) is not None


def step(backend: Any, deployment: DeploymentInfo, progress: Progress) -> dict[str, str] | None:
    if progress.stage == "start":
        revision = deployment.revision or {}
        if revision.get("revisionType") == "S3":
            location = revision.get("s3Location") or {}
            if not _s3_object_exists(backend.account_id, location):
                return {
                    "code": "REVISION_MISSING",
                    "message": (
                        f"The revision s3://{location.get('bucket')}/{location.get('key')} "
                        "does not exist or is not accessible."
                    ),
                }
        progress.stage = "unhealthy" if progress.fail_health else "install"
        return None
    if progress.stage == "unhealthy":
        return {
            "code": "HEALTH_CONSTRAINTS",
            "message": (
                "The overall deployment failed because too many individual instances failed "
                f"deployment (deployfw sandbox fault deploy:{progress.module})."
            ),
        }
    if progress.stage == "install":
        progress.stage = "done"
    return None
