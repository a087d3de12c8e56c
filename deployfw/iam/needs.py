"""What a backend declares: the IAM actions its calls need, on which resources, for whom.

A backend knows exactly which AWS calls it makes on which resources - far better than a person
clicking until AWS stops refusing. It says so with :class:`IamNeed` values built from the
module's config (:class:`IamScope` gives the account, region and ARN helpers), next to the code
that makes the calls. Everything else - the policies of ``deployfw iam policy``, the fix printed
for an AccessDenied, the IAM rows of ``deployfw doctor`` - is derived from these declarations, so
a backend that starts calling a new operation changes all three by changing one list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from deployfw.config import Config, Module

# Who makes the calls. ``ci`` runs ``deployfw run`` (a CI role or user: the orchestrating
# CodeBuild project's service role, or the Jenkins controller/agent running the pipeline);
# ``codebuild`` is the service role of the modules' CodeBuild build projects; ``jenkins`` is a
# Jenkins agent running ``deployfw build MODULE``; ``pipeline`` is a CodePipeline service role.
Principal = Literal["ci", "codebuild", "jenkins", "pipeline"]
PRINCIPALS: tuple[Principal, ...] = ("ci", "codebuild", "jenkins", "pipeline")
# A need of whoever builds the module (the build backend says who: :class:`deployfw.backends.BuildsAs`).
BUILDER = "builder"

# When a need applies: ``run`` on every run (and its failure handling: stopping a deployment on
# cancel, recovering one a killed run left behind); ``setup`` only while a resource is first
# created (an ECR repository, the state table), left out of the policies unless asked for.
When = Literal["run", "setup"]

_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")
_SID = re.compile(r"^[A-Za-z0-9]+$")

# Condition block of an IAM statement: operator -> key -> value(s).
Conditions = Mapping[str, Mapping[str, str | tuple[str, ...]]]


@dataclass(frozen=True)
class IamNeed:
    """Some actions on some resources, for one principal, with the reason deployfw makes the calls.

    ``resources`` are exact ARNs or ARN patterns (``task-definition/shop-user-api:*``). ``("*",)``
    is allowed only for actions whose IAM definition has no resource type, and ``wildcard`` must
    then say so (it is printed with the policy). ``sid`` names the statement the need lands in
    (needs with the same sid, actions and conditions share one statement).
    """

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str
    principal: str = "ci"
    conditions: Conditions = field(default_factory=dict)
    wildcard: str | None = None
    when: When = "run"
    # Set when deployfw works without this need, less well: says what is lost. Optional needs are left
    # out of the policies unless asked for (least privilege), and a refusal of one is logged, not fatal.
    optional: str | None = None

    def __post_init__(self) -> None:
        if not _SID.match(self.sid):
            raise ValueError(f"IamNeed sid {self.sid!r}: letters and digits only (IAM's Sid rule)")
        if not self.actions or any(not _ACTION.match(a) for a in self.actions):
            raise ValueError(f"IamNeed {self.sid}: actions must be 'service:Action' names, got {self.actions!r}")
        if not self.resources:
            raise ValueError(f"IamNeed {self.sid}: no resources")
        if "*" in self.resources and (len(self.resources) > 1 or not self.wildcard):
            raise ValueError(f"IamNeed {self.sid}: Resource '*' must stand alone and say why (wildcard=...)")
        if self.principal not in (*PRINCIPALS, BUILDER):
            raise ValueError(f"IamNeed {self.sid}: unknown principal {self.principal!r}")

    @property
    def is_wildcard(self) -> bool:
        return self.resources == ("*",)


@dataclass(frozen=True)
class IamScope:
    """What a declaration may read: the config, the module (None for run-wide needs), and where."""

    config: Config
    module: Module | None
    account: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, regional: bool = True, in_account: bool = True) -> str:
        """``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`` (IAM and S3 ARNs drop region and/or account)."""
        region = self.region if regional else ""
        account = self.account if in_account else ""
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def role_arn(self, name_or_arn: str) -> str:
        """An IAM role ARN from a role name (``ecsTaskExecutionRole``) or an ARN (returned unchanged)."""
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return self.arn("iam", f"role/{name_or_arn}", regional=False)


def passed_to(service: str) -> Conditions:
    """The condition that limits ``iam:PassRole`` to handing a role to one AWS service."""
    return {"StringEquals": {"iam:PassedToService": service}}


def wanted(need: IamNeed, *, setup: bool = False, optional: bool = False) -> bool:
    """Whether a policy includes ``need``: setup and optional needs only when asked for."""
    return (setup or need.when == "run") and (optional or need.optional is None)
