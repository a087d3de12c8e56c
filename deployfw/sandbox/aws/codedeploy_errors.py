"""CodeDeploy error types moto lacks, named and shaped as AWS returns them."""

from __future__ import annotations

from moto.core.exceptions import JsonRESTError


class CodeDeployError(JsonRESTError):
    """A 400 CodeDeploy error; ``error_type`` is the AWS exception name."""

    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


def limit_exceeded(group: str, active_id: str) -> CodeDeployError:
    return CodeDeployError(
        "DeploymentLimitExceededException",
        f"The Deployment Group '{group}' already has an active Deployment '{active_id}'",
    )


def config_missing(name: str) -> CodeDeployError:
    return CodeDeployError(
        "DeploymentConfigDoesNotExistException",
        f"No deployment configuration found for name: {name}",
    )


def invalid_config_name(message: str) -> CodeDeployError:
    return CodeDeployError("InvalidDeploymentConfigNameException", message)


def invalid_ecs_service(message: str) -> CodeDeployError:
    return CodeDeployError("InvalidECSServiceException", message)


def invalid_target_group_pair(message: str) -> CodeDeployError:
    return CodeDeployError("InvalidTargetGroupPairException", message)


def deployment_missing(deployment_id: str) -> CodeDeployError:
    return CodeDeployError(
        "DeploymentDoesNotExistException",
        f"The deployment {deployment_id} does not exist with the user or AWS account.",
    )


def already_completed(deployment_id: str) -> CodeDeployError:
    return CodeDeployError(
        "DeploymentAlreadyCompletedException",
        f"The deployment {deployment_id} has already completed.",
    )


def invalid_revision(message: str) -> CodeDeployError:
    return CodeDeployError("InvalidRevisionException", message)
