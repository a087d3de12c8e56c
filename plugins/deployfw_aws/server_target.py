"""A ``codedeploy-server`` module's deploy section resolved, with its documented defaults in one place.

``plan``, ``run``, the sandbox seed and the preflight all read the section through
:func:`server_target`, so they never disagree about the application, the group, the bundle
folder or the tags the group selects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deployfw_aws.server_appspec import APPSPEC_NAME

if TYPE_CHECKING:
    from deployfw.config import Config, Module

BACKEND_ID = "codedeploy-server"
DEFAULT_CONFIG = "CodeDeployDefault.OneAtATime"
SERVER_CONFIGS = ("CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce")
DEFAULT_TIMEOUT_MINUTES = 60.0
MODULE_TAG = "deployfw-module"


@dataclass(frozen=True)
class ServerTarget:
    module: str
    application: str
    deployment_group: str
    deployment_config: str | None
    file_exists_behavior: str | None
    ignore_application_stop_failures: bool
    timeout_minutes: float | None
    bundle: str
    on_premises_tags: Mapping[str, str] = field(default_factory=dict)
    ec2_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.application}/{self.deployment_group}"

    @property
    def appspec(self) -> str:
        """The AppSpec at the bundle's root, relative to the repository root."""
        return f"{self.bundle}/{APPSPEC_NAME}" if self.bundle else APPSPEC_NAME

    def option_key(self, option: str) -> str:
        return f"modules.{self.module}.deploy.{option}"

    def bundle_dir(self, root: Path) -> Path:
        return root / self.bundle if self.bundle else root


def server_target(config: Config, module: Module) -> ServerTarget:
    """Resolve ``module``'s deploy section (defaults documented on each option of the schema)."""
    options = module.deploy.options if module.deploy is not None else {}
    application = f"{config.project}-{module.name}" if config.project else module.name
    on_premises = {str(k): str(v) for k, v in dict(options.get("on_premises_tags") or {}).items()}
    ec2 = {str(k): str(v) for k, v in dict(options.get("ec2_tags") or {}).items()}
    if not on_premises and not ec2:
        on_premises = {MODULE_TAG: module.name}
    return ServerTarget(
        module=module.name,
        application=str(options.get("application") or application),
        deployment_group=str(options.get("deployment_group") or module.name),
        deployment_config=options.get("deployment_config"),
        file_exists_behavior=options.get("file_exists_behavior"),
        ignore_application_stop_failures=bool(options.get("ignore_application_stop_failures", False)),
        timeout_minutes=options.get("timeout_minutes"),
        bundle=str(options.get("bundle") or module.path).strip("/"),
        on_premises_tags=on_premises,
        ec2_tags=ec2,
    )
