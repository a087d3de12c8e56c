"""CodeBuild backend: builds that run their buildspec and end by the real outcome.

moto's CodeBuild reports SUCCEEDED on the first poll without running anything. Here
``StartBuild`` hands the build to :mod:`.codebuild_worker`, which checks out the local
repository at the requested source version, runs the buildspec with deployfw's own
runner, streams the output to CloudWatch Logs and walks the real phase names.
``BatchGetBuilds`` just reports what the worker has done so far.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from moto.codebuild import urls as moto_urls
from moto.codebuild.exceptions import ResourceNotFoundException
from moto.codebuild.models import CodeBuildBackend
from moto.codebuild.responses import CodeBuildResponse
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds

from deployfw.sandbox.aws import context
from deployfw.sandbox.aws.urls import url_module


class SandboxCodeBuildBackend(CodeBuildBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.cancels: dict[str, threading.Event] = {}
        self.counters: dict[str, int] = {}

    sandbox_response: type | None = None
    """Set by :mod:`.install` to the response class below."""

    @property
    def _url_module(self) -> Any:
        return url_module(moto_urls, self.sandbox_response)

    def _builds(self) -> dict[str, dict[str, Any]]:
        return {b["id"]: b for history in self.build_metadata_history.values() for b in history}

    def start_build(
        self,
        project_name: str,
        source_version: str | None = None,
        artifact_override: dict[str, Any] | None = None,
        *,
        buildspec_override: str | None = None,
        env_overrides: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        with ctx.lock:
            project = self.codebuild_projects.get(project_name)
            if project is None:
                raise ResourceNotFoundException(f"Project cannot be found: {project_name}")
            meta = project.project_metadata
            build = super().start_build(project_name, source_version, artifact_override)
            build_uuid = str(uuid.uuid4())
            build["id"] = f"{project_name}:{build_uuid}"
            build["arn"] = build["arn"].rsplit("/", 1)[0] + "/" + build["id"]
            self.build_history[project_name][-1] = build["id"]
            self.counters[project_name] = self.counters.get(project_name, 0) + 1
            build["buildNumber"] = self.counters[project_name]
            build["source"] = dict(meta.get("source") or {})
            if buildspec_override:
                build["source"]["buildspec"] = buildspec_override
            env = dict(meta.get("environment") or {})
            variables = {v["name"]: dict(v) for v in env.get("environmentVariables", [])}
            for override in env_overrides or []:
                variables[override["name"]] = {"type": "PLAINTEXT", **override}
            env["environmentVariables"] = list(variables.values())
            build["environment"] = env
            cw = (meta.get("logsConfig") or {}).get("cloudWatchLogs") or {}
            group = cw.get("groupName") or f"/aws/codebuild/{project_name}"
            stream = f"{cw['streamName']}/{build_uuid}" if cw.get("streamName") else build_uuid
            build["logs"] = {
                "groupName": group,
                "streamName": stream,
                "deepLink": (
                    f"https://console.aws.amazon.com/cloudwatch/home?region={self.region_name}"
                    f"#logEvent:group={group};stream={stream}"
                ),
                "cloudWatchLogsArn": (
                    f"arn:aws:logs:{self.region_name}:{self.account_id}:log-group:{group}:log-stream:{stream}"
                ),
                "cloudWatchLogs": {"status": "ENABLED", "groupName": group, "streamName": stream},
                "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
            }
            now = iso_8601_datetime_with_milliseconds()
            build["phases"] = [
                {
                    "phaseType": "SUBMITTED",
                    "phaseStatus": "SUCCEEDED",
                    "startTime": now,
                    "endTime": now,
                    "durationInSeconds": 0,
                },
            ]
            build["currentPhase"] = "QUEUED"
            build["phases"].append({"phaseType": "QUEUED", "startTime": now})
            build["initiator"] = "deployfw-sandbox"
            cancel = threading.Event()
            self.cancels[build["id"]] = cancel
            module = ctx.registry.module_for_project(project_name)
            from deployfw.sandbox.aws.codebuild_worker import BuildWorker

            BuildWorker(
                ctx=ctx,
                backend=self,
                build=build,
                cancel=cancel,
                fail=ctx.faults.take_build(module),
                module=module,
            ).start()
            return build

    def batch_get_builds(self, ids: list[str]) -> list[dict[str, Any]]:
        with context.current().lock:
            builds = self._builds()
            return [builds[i] for i in ids if i in builds]

    def stop_build(self, build_id: str) -> dict[str, Any] | None:
        with context.current().lock:
            build = self._builds().get(build_id)
            if build is None:
                raise ResourceNotFoundException(f"Build {build_id} does not exist")
            cancel = self.cancels.get(build_id)
            if cancel is not None and not build.get("buildComplete"):
                cancel.set()
            return build

    def sandbox_advance(self) -> None:
        """Builds progress in their own threads; nothing to tick."""


class SandboxCodeBuildResponse(CodeBuildResponse):
    """Passes the overrides moto's handler drops, and adds RetryBuild."""

    def start_build(self) -> ActionResult:
        backend: SandboxCodeBuildBackend = self.codebuild_backend  # type: ignore[assignment]
        build = backend.start_build(
            self._get_param("projectName"),
            self._get_param("sourceVersion"),
            self._get_param("artifactsOverride"),
            buildspec_override=self._get_param("buildspecOverride"),
            env_overrides=self._get_param("environmentVariablesOverride"),
        )
        return ActionResult({"build": build})

    def retry_build(self) -> ActionResult:
        backend: SandboxCodeBuildBackend = self.codebuild_backend  # type: ignore[assignment]
        previous = backend._builds().get(self._get_param("id"))
        if previous is None:
            raise ResourceNotFoundException(f"Build {self._get_param('id')} does not exist")
        env = previous["environment"].get("environmentVariables", [])
        build = backend.start_build(
            previous["projectName"],
            previous.get("sourceVersion"),
            previous.get("artifacts"),
            buildspec_override=previous["source"].get("buildspec"),
            env_overrides=[{k: v for k, v in e.items()} for e in env],
        )
        return ActionResult({"build": build})
