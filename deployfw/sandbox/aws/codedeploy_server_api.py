"""CodeDeploy operations of the EC2/on-premises platform that moto lacks, as response handlers.

moto dispatches an operation to the response method of its snake_case name; these live in a
mixin the sandbox's CodeDeploy response class inherits, so the Server platform's API surface
stays in one place: on-premises instance registration and tags, and the deployment targets of
a Server deployment (``instanceTarget``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from deployfw.sandbox.aws import codedeploy_server as server


def is_server(deployment: Any) -> bool:
    return (deployment.application.compute_platform or "Server") == "Server"


class ServerResponses:
    """Mixed into :class:`~deployfw.sandbox.aws.codedeploy_responses.SandboxCodeDeployResponse`."""

    backend: Any
    _get_param: Callable[..., Any]  # moto's BaseResponse provides it (an annotation only: no attribute here)

    # -- on-premises instances ----------------------------------------------------------------------

    def register_on_premises_instance(self) -> EmptyResult:
        server.register(self.backend, self._get_param("instanceName") or "", self._get_param("iamSessionArn"),
                        self._get_param("iamUserArn"))  # fmt: skip
        return EmptyResult()

    def deregister_on_premises_instance(self) -> EmptyResult:
        server.deregister(self.backend, self._get_param("instanceName") or "")
        return EmptyResult()

    def add_tags_to_on_premises_instances(self) -> EmptyResult:
        server.add_tags(self.backend, self._get_param("instanceNames") or [], self._get_param("tags") or [])
        return EmptyResult()

    def remove_tags_from_on_premises_instances(self) -> EmptyResult:
        server.remove_tags(self.backend, self._get_param("instanceNames") or [], self._get_param("tags") or [])
        return EmptyResult()

    def get_on_premises_instance(self) -> ActionResult:
        found = server.registered(self.backend, self._get_param("instanceName") or "")
        return ActionResult({"instanceInfo": found.info()})

    def batch_get_on_premises_instances(self) -> ActionResult:
        known = server.on_premises(self.backend)
        names = self._get_param("instanceNames") or []
        return ActionResult({"instanceInfos": [known[n].info() for n in names if n in known]})

    def list_on_premises_instances(self) -> ActionResult:
        names = server.list_on_premises(self.backend, self._get_param("registrationStatus"),
                                        self._get_param("tagFilters"))  # fmt: skip
        return ActionResult({"instanceNames": names})

    # -- Server deployment targets ------------------------------------------------------------------

    def _server_target_ids(self, deployment: Any) -> list[str]:
        return server.target_ids(self.backend, deployment, self._get_param("targetFilters"))

    def _server_target(self, deployment: Any, target_id: str) -> dict[str, Any]:
        return server.target(self.backend, deployment, target_id)
