"""What the three ECS deploy backends share: construction, checks, artifacts and the deploy entry.

Each backend differs in how it puts a task definition into service (a CodeDeploy
deployment or an ECS rolling update) and how it follows it; everything before
that - resolving the target, rendering the templates with the image by digest,
turning bad input and AWS refusals into a failed stage - is the same and lives
here once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from deployfw.aws.clients import Aws, AwsError, aws_for
from deployfw.backends import DeployOutcome, LiveCheck, ModuleJob, RunContext, StageResult
from deployfw.errors import InputError, Problem
from deployfw_aws.deploy_common import (
    Backoff,
    Target,
    describe_service,
    short_arn,
    target_of,
    task_definition_image,
)
from deployfw_aws.render import (
    PREFLIGHT_IMAGE,
    Rendered,
    preflight_problems,
    render_job,
    render_module,
    write_artifacts,
)

if TYPE_CHECKING:
    from deployfw.config import Config, Module
    from deployfw.iam.needs import IamNeed, IamScope
    from deployfw.state import DeployRecord

NO_RESOURCE = "the action has no resource type in IAM: AWS accepts only Resource \"*\" for it"


def task_roles(taskdef: dict[str, Any], scope: IamScope) -> tuple[str, ...]:
    """The roles a task definition hands to ECS (``taskRoleArn``, ``executionRoleArn``), as ARNs."""
    names = (taskdef.get("taskRoleArn"), taskdef.get("executionRoleArn"))
    return tuple(sorted({scope.role_arn(str(n)) for n in names if n}))


def to_outcome(result: StageResult) -> DeployOutcome:
    """The typed outcome of the stage result the ECS deployers build internally.

    Inside this plugin a deploy accumulates its report fields in one dict as it goes; at the
    contract's edge the fields the runner, the state store and the report act on become typed.
    """
    details = dict(result.details)
    return DeployOutcome(
        result.ok,
        result.error,
        deployment_id=details.pop("id", None),
        task_definition=details.pop("task_definition", None),
        rolled_back=bool(details.pop("rolled_back", False)),
        live=bool(details.pop("deployed", False)),
        details=details,
    )


class EcsDeployer:
    """Base of the ECS deploy backends; subclasses implement ``_deploy`` and ``_target_details``."""

    backend_id: ClassVar[str]

    def __init__(
        self,
        ctx: RunContext,
        *,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.ctx = ctx
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff or Backoff()

    def preflight(self, module: Module, config: Config) -> Sequence[Problem]:
        return preflight_problems(config, module)

    # -- IAM: what the calls below need (DeclaresIam) -------------------------------------------

    def iam_needs(self, scope: IamScope) -> Sequence[IamNeed]:
        """ECS calls every deployer makes (register, describe, pass the task's roles), then the backend's own.

        The task definition template is rendered as a deploy renders it, so the family and the
        roles are the ones RegisterTaskDefinition will name.
        """
        from deployfw.iam.needs import IamNeed, passed_to

        assert scope.module is not None
        target = target_of(scope.config, scope.module)
        rendered = render_module(scope.config, scope.module, PREFLIGHT_IMAGE, account_id=scope.account,
                                 region=scope.region)  # fmt: skip
        family_arn = scope.arn("ecs", f"task-definition/{rendered.family}:*")
        service_arn = scope.arn("ecs", f"service/{target.cluster}/{target.service}")
        needs = [
            IamNeed("EcsRegisterTaskDefinition", ("ecs:RegisterTaskDefinition",), (family_arn,),
                    f"register {rendered.family} with the new image"),
            IamNeed("EcsReadTaskDefinition", ("ecs:DescribeTaskDefinition",), ("*",),
                    "read a recorded task definition (status, rollback)", wildcard=NO_RESOURCE),
            IamNeed("EcsDescribeService", ("ecs:DescribeServices",), (service_arn,),
                    f"read what {target.cluster}/{target.service} runs (status, drift)"),
        ]
        roles = task_roles(rendered.taskdef, scope)
        if roles:
            needs.append(IamNeed("PassTaskRoles", ("iam:PassRole",), roles,
                                 f"hand {rendered.family}'s task and execution roles to ECS",
                                 conditions=passed_to("ecs-tasks.amazonaws.com")))
        return [*needs, *self._iam_needs(scope, target, family_arn, service_arn, roles)]

    def _iam_needs(
        self, scope: IamScope, target: Target, family_arn: str, service_arn: str, roles: tuple[str, ...]
    ) -> list[IamNeed]:
        raise NotImplementedError

    # -- the live account (ChecksLive, for `deployfw doctor`) ------------------------------------

    controller_type: ClassVar[str] = "ECS"

    def live_checks(self, job: ModuleJob) -> list[LiveCheck]:
        """Cluster, service and its deployment controller; then the backend's own (read-only) checks."""
        from deployfw_aws import live_checks as live

        target = target_of(job.ctx.config, job.module)
        aws = aws_for(job.ctx)
        rows = [live.cluster(aws, target.cluster)]
        row, service = live.service(aws, target.cluster, target.service)
        rows.append(row)
        if service is not None:
            rows.append(live.controller(service, self.controller_type, self.backend_id, target.cluster, target.service))
        return [*rows, *self._live_checks(aws, target)]

    def _live_checks(self, aws: Aws, target: Target) -> list[LiveCheck]:
        return []

    def write_artifacts(self, job: ModuleJob, out_dir: Path) -> list[Path]:
        """CodePipeline's ECS actions deploy these (``run --stop-after push --artifacts-dir``).

        The same render a deploy registers, so a pipeline that deploys the files gets
        exactly what ``deployfw run`` would have deployed.
        """
        return write_artifacts(render_job(job, aws_for(job.ctx).account_id), out_dir)

    def _details(self, target: Target) -> dict[str, Any]:
        """The report's deploy details, the same keys for deploy and redeploy."""
        return {
            "backend": self.backend_id,
            "id": None,
            "task_definition": None,
            "rolled_back": False,
            "status": None,
            **self._target_details(target),
        }

    def _target_details(self, target: Target) -> dict[str, Any]:
        raise NotImplementedError

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        """Render ``job``'s image into the module's templates and put it into service."""
        target = target_of(job.ctx.config, job.module)
        details = self._details(target)
        if job.image_uri is None:
            return to_outcome(StageResult(False, "no image digest to deploy", details))
        aws = aws_for(job.ctx)
        try:
            rendered = render_job(job, aws.account_id)
            return to_outcome(self._deploy(job, aws, target, rendered, details))
        except (InputError, AwsError) as exc:
            return to_outcome(StageResult(False, str(exc), details))

    def redeploy(self, job: ModuleJob, record: DeployRecord) -> DeployOutcome:
        """Deploy the recorded, already registered task definition (``deployfw rollback``): no new image.

        Refuses a record without a task definition, and one ECS no longer has or has
        deregistered; waiting, stop-with-rollback and the details are deploy's.
        """
        target = target_of(job.ctx.config, job.module)
        details = self._details(target)
        task_definition_arn = record.task_definition
        if not task_definition_arn:
            return to_outcome(
                StageResult(False, f"the deploy by run {record.run_id} recorded no task definition", details)
            )
        details["task_definition"] = task_definition_arn
        aws = aws_for(job.ctx)
        try:
            image, status = task_definition_image(aws, task_definition_arn, target.container)
            if image is None:
                return to_outcome(StageResult(False, f"task definition {task_definition_arn} does not exist", details))
            if status == "INACTIVE":
                return to_outcome(
                    StageResult(
                        False,
                        f"task definition {short_arn(task_definition_arn)} was deregistered (INACTIVE); "
                        "ECS cannot deploy it again",
                        details,
                    )
                )
            job.log(f"redeploying task definition {short_arn(task_definition_arn)} ({image})")
            return to_outcome(self._redeploy(job, aws, target, task_definition_arn, image, details))
        except (InputError, AwsError) as exc:
            return to_outcome(StageResult(False, str(exc), details))

    def _redeploy(
        self, job: ModuleJob, aws: Aws, target: Target, arn: str, image: str, details: dict[str, Any]
    ) -> StageResult:
        raise NotImplementedError

    def describe(self, job: ModuleJob) -> dict[str, Any]:
        """What runs now, for ``deployfw status``; ``exists`` False when the service is gone."""
        target = target_of(job.ctx.config, job.module)
        aws = aws_for(job.ctx)
        live: dict[str, Any] = {"backend": self.backend_id, "cluster": target.cluster, "service": target.service}
        service = describe_service(aws, target)
        if service is None:
            return {**live, "exists": False, "task_definition": None, "image": None}
        self._describe_live(aws, target, service, live)
        return live

    def _describe_live(self, aws: Aws, target: Target, service: dict[str, Any], live: dict[str, Any]) -> None:
        raise NotImplementedError

    def _deploy(
        self,
        job: ModuleJob,
        aws: Aws,
        target: Target,
        rendered: Rendered | None,
        details: dict[str, Any],
        registered: str | None = None,
    ) -> StageResult:
        raise NotImplementedError
