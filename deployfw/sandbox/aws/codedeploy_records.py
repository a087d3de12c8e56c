"""What the sandbox's CodeDeploy remembers beyond moto's deployment and group records.

moto's ``DeploymentInfo`` has no place for a deployment's error information, rollback
information and previous revision, and its ``DeploymentGroup`` none for the last attempted
and last successful deployments (GetDeploymentGroup's ``lastAttemptedDeployment``,
``lastSuccessfulDeployment``, ``targetRevision``). The sandbox keeps them in one typed record
beside each moto object, so the backend, the responses and the server lifecycle read one
declared shape instead of attributes grafted on at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.codedeploy.models import DeploymentGroup, DeploymentInfo

_KEY = "sandbox_record"


@dataclass
class DeploymentRecord:
    """A deployment's fields that moto does not keep (empty: not set; the responses leave them out)."""

    previous_revision: dict[str, Any] | None = None
    error_information: dict[str, str] = field(default_factory=dict)
    rollback_info: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupRecord:
    """A deployment group's deployment history: what it last attempted and last deployed successfully."""

    last_attempted: DeploymentInfo | None = None
    last_successful: DeploymentInfo | None = None
    last_successful_revision: dict[str, Any] | None = None


def of_deployment(deployment: DeploymentInfo) -> DeploymentRecord:
    """The record kept with ``deployment`` (created empty the first time it is asked for)."""
    record: DeploymentRecord = deployment.__dict__.setdefault(_KEY, DeploymentRecord())
    return record


def of_group(group: DeploymentGroup) -> GroupRecord:
    """The record kept with ``group`` (created empty the first time it is asked for)."""
    record: GroupRecord = group.__dict__.setdefault(_KEY, GroupRecord())
    return record
