"""Registers the AWS backends with their section schemas.

Factories import the implementation (and boto3) only when a run needs them,
so listing plugins or validating a config stays fast.
"""

from __future__ import annotations

from typing import Any

from deployfw.builds.options import BUILDSPEC_OPTION, ENVIRONMENT_OPTION, TIMEOUT_OPTION
from deployfw.hookspecs import hookimpl

ECS_ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"
ECS_DEPLOYMENT_CONFIGS = [
    ECS_ALL_AT_ONCE,
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
]

CODEBUILD_SCHEMA = {
    "type": "object",
    "properties": {
        "project": {"type": "string", "minLength": 1, "description": "CodeBuild project name (default MODULE-build)."},
        "buildspec": BUILDSPEC_OPTION,
        "environment": ENVIRONMENT_OPTION,
        "timeout_minutes": TIMEOUT_OPTION,
    },
}
ECR_SCHEMA = {
    "type": "object",
    "properties": {
        "repository": {
            "type": "string",
            "pattern": r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$",
            "description": "Default: module name.",
        },
        "immutable_tags": {"type": "boolean", "description": "Create the repository with IMMUTABLE tags."},
    },
}
_ECS_COMMON: dict[str, Any] = {
    "cluster": {"type": "string", "minLength": 1},
    "service": {"type": "string", "minLength": 1, "description": "ECS service (default: module name)."},
    "taskdef": {
        "type": "string",
        "description": "Task definition template: MODULE_PATH/VALUE if that file exists, else VALUE from the "
        "repository root; default MODULE_PATH/taskdef.json, else taskdef.json.",
    },
    "container": {"type": "string", "description": "Container that receives the image (default: the first)."},
    "family": {"type": "string", "minLength": 1, "description": "Value of ${FAMILY} in templates (default: service)."},
    "timeout_minutes": TIMEOUT_OPTION,
}
_CODEDEPLOY: dict[str, Any] = {
    "appspec": {
        "type": "string",
        "description": "AppSpec template: MODULE_PATH/VALUE if that file exists, else VALUE from the repository "
        "root; default MODULE_PATH/appspec.yaml or .yml, else appspec.yaml or .yml.",
    },
    "application": {"type": "string", "description": "CodeDeploy application (default: PROJECT-MODULE)."},
    "deployment_group": {"type": "string", "description": "Deployment group (default: MODULE)."},
    "container_port": {"type": "integer", "minimum": 1},
    "health_check_path": {"type": "string", "pattern": "^/"},
}
BLUEGREEN_SCHEMA = {
    "type": "object",
    "properties": {
        **_ECS_COMMON,
        **_CODEDEPLOY,
        "deployment_config": {
            "enum": ECS_DEPLOYMENT_CONFIGS,
            "description": "Traffic shifting: canary, linear or all at once.",
        },
    },
}
NLB_SCHEMA = {
    "type": "object",
    "properties": {
        **_ECS_COMMON,
        **_CODEDEPLOY,
        "deployment_config": {
            "enum": ECS_DEPLOYMENT_CONFIGS,
            "description": "CodeDeploy behind an NLB accepts only all-at-once traffic shifting (preflight says so; "
            "ecs-native deploys canary and linear behind an NLB).",
        },
    },
}
S3_SCHEMA = {
    "type": "object",
    "properties": {
        "bucket": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            "description": "Bucket holding the revision bundles (created once; deployfw does not create it).",
        },
        "prefix": {"type": "string", "description": "Key prefix: bundles go to PREFIX/MODULE/TAG.zip (default none)."},
    },
    "required": ["bucket"],
}
_TAGS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVER_SCHEMA = {
    "type": "object",
    "properties": {
        "application": {
            "type": "string",
            "minLength": 1,
            "description": "CodeDeploy application (default PROJECT-MODULE).",
        },
        "deployment_group": {"type": "string", "minLength": 1, "description": "Deployment group (default: MODULE)."},
        "deployment_config": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9._-]+$",
            "description": "CodeDeployDefault.OneAtATime (default), HalfAtATime, AllAtOnce or a custom one.",
        },
        "file_exists_behavior": {
            "enum": ["DISALLOW", "OVERWRITE", "RETAIN"],
            "description": "What the agent does with a file it did not install (CodeDeploy's default: DISALLOW).",
        },
        "ignore_application_stop_failures": {
            "type": "boolean",
            "description": "Go on when the previous revision's ApplicationStop fails (default false).",
        },
        "timeout_minutes": TIMEOUT_OPTION,
        "bundle": {
            "type": "string",
            "description": "Folder packed into the bundle, appspec.yml at its root (default: the module path).",
        },
        "on_premises_tags": {**_TAGS, "description": "Tags the group selects on-premises instances by."},
        "ec2_tags": {**_TAGS, "description": "Tags the group selects EC2 instances by."},
    },
}
ROLLING_SCHEMA = {
    "type": "object",
    "properties": {
        **_ECS_COMMON,
        "container_port": {"type": "integer", "minimum": 1},
        "health_check_path": {"type": "string", "pattern": "^/"},
    },
}
NATIVE_SCHEMA = {
    "type": "object",
    "properties": {
        **_ECS_COMMON,
        "container_port": {"type": "integer", "minimum": 1},
        "health_check_path": {"type": "string", "pattern": "^/"},
        "strategy": {
            "enum": ["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"],
            "description": "ECS deploymentConfiguration.strategy (default BLUE_GREEN).",
        },
        "bake_time_minutes": {
            "type": "integer",
            "description": "bakeTimeInMinutes: both revisions run this long after the shift, 0-1440 (default 5).",
        },
        "canary_percent": {"type": "number", "description": "CANARY: share of the first step, 0.1-100 (default 5)."},
        "canary_bake_time_minutes": {"type": "integer", "description": "CANARY: minutes before the rest (default 10)."},
        "linear_step_percent": {"type": "number", "description": "LINEAR: share of each step, 3-100 (default 10)."},
        "linear_step_bake_time_minutes": {"type": "integer", "description": "LINEAR: minutes per step (default 6)."},
        "alarms": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "CloudWatch alarm names; one in ALARM fails and rolls back the deployment.",
        },
        "load_balancer_type": {
            "enum": ["application", "network"],
            "description": "The balancer in front of the service (default application): what the sandbox creates, "
            "checked against the live service by plan.",
        },
    },
}


@hookimpl
def deployfw_sandbox_seed(config: Any, module: Any) -> list[Any]:
    from deployfw_aws.seed import seeds

    return seeds(config, module)


@hookimpl
def deployfw_register_commands(commands: Any) -> None:
    commands.add(
        "render",
        "deployfw_aws.commands:render",
        help="Render a module's taskdef.json, appspec.yaml and CodePipeline files.",
    )
    commands.add(
        "bundle",
        "deployfw_aws.bundle_cli:bundle",
        help="Pack and push CodeDeploy revision bundles for EC2 and on-premises servers.",
    )
    commands.add(
        "migrate",
        "deployfw_aws.migrate_command:migrate",
        help="Switch a module's CODE_DEPLOY service to ECS-native deployments in place (plan, then --yes).",
    )


@hookimpl
def deployfw_register_backends(registry: Any) -> None:
    registry.add_build(
        "codebuild",
        "deployfw_aws.codebuild:CodeBuildBuild",
        schema=CODEBUILD_SCHEMA,
        description="Start the module's CodeBuild project with its buildspec and stream the log",
    )
    registry.add_registry(
        "ecr",
        "deployfw_aws.ecr:EcrRegistry",
        schema=ECR_SCHEMA,
        description="ECR repository, commit and content tags, build reuse by content tag",
    )
    registry.add_registry(
        "s3",
        "deployfw_aws.s3registry:S3Registry",
        schema=S3_SCHEMA,
        description="S3 bucket of revision bundles under content keys, reuse by content key and ETag",
    )
    registry.add_deploy(
        "codedeploy-server",
        "deployfw_aws.servers:ServerDeploy",
        schema=SERVER_SCHEMA,
        description="CodeDeploy to EC2 and on-premises instances (IDC), per-instance progress and auto-rollback",
    )
    registry.add_deploy(
        "ecs-bluegreen",
        "deployfw_aws.bluegreen:BlueGreenDeploy",
        schema=BLUEGREEN_SCHEMA,
        description="CodeDeploy ECS blue/green with canary, linear or all-at-once traffic and auto-rollback",
    )
    registry.add_deploy(
        "ecs-nlb",
        "deployfw_aws.bluegreen:NlbDeploy",
        schema=NLB_SCHEMA,
        description="CodeDeploy ECS deployment behind a Network Load Balancer (all-at-once only)",
    )
    registry.add_deploy(
        "ecs-native",
        "deployfw_aws.native:NativeDeploy",
        schema=NATIVE_SCHEMA,
        description="ECS-native blue/green, linear or canary (ECS deployment controller), ALB or NLB, with rollback",
    )
    registry.add_deploy(
        "ecs-rolling",
        "deployfw_aws.rolling:RollingDeploy",
        schema=ROLLING_SCHEMA,
        description="ECS rolling update with the deployment circuit breaker and rollback",
    )
