"""Run one CodeBuild build for real in a daemon thread.

The phases are CodeBuild's own names; INSTALL..POST_BUILD are reported by the buildspec
runner as it enters them, the bookkeeping phases around them are ours. Every line of
output becomes a CloudWatch Logs event in the build's group/stream, so a client that
tails the log (as deployfw's codebuild backend does) sees the build as it happens.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.core.utils import iso_8601_datetime_with_milliseconds

from deployfw import redact
from deployfw.builds.tool import tool_env
from deployfw.sandbox.aws import checkout
from deployfw.sandbox.aws.context import SandboxContext

_RUNNER_PHASES = ("INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")


def _now() -> str:
    return iso_8601_datetime_with_milliseconds()


DECRYPT_ERROR = "Decrypted Variables Error"
"""The phase context status code CodeBuild gives a build whose PARAMETER_STORE variable cannot be read."""


class MissingParameter(Exception):
    """A PARAMETER_STORE variable names a parameter SSM does not hold."""


def _runner(ctx: SandboxContext) -> Any:
    """The buildspec runner: injected, else deployfw's own (imported only when needed)."""
    return ctx.build_runner or importlib.import_module("deployfw.buildspec")


class BuildWorker(threading.Thread):
    def __init__(
        self,
        *,
        ctx: SandboxContext,
        backend: Any,
        build: dict[str, Any],
        cancel: threading.Event,
        fail: bool,
        module: str,
    ) -> None:
        super().__init__(name=f"codebuild-{build['id']}", daemon=True)
        self.ctx, self.backend, self.build = ctx, backend, build
        self.cancel, self.fail, self.module = cancel, fail, module
        self._phase_started = time.monotonic()

    # -- bookkeeping -------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        """Close the current phase as SUCCEEDED (unless already closed) and open ``phase``."""
        with self.ctx.lock:
            phases = self.build["phases"]
            last = phases[-1]
            if "phaseStatus" not in last:
                self._close(last, "SUCCEEDED")
            phases.append({"phaseType": phase, "startTime": _now()})
            self.build["currentPhase"] = phase
        self._phase_started = time.monotonic()

    def _close(self, phase: dict[str, Any], status: str, message: str | None = None, code: str | None = None) -> None:
        phase["phaseStatus"] = status
        phase["endTime"] = _now()
        phase["durationInSeconds"] = int(time.monotonic() - self._phase_started)
        if message:
            phase["contexts"] = [{"statusCode": code or status, "message": message}]

    def _fail_current(self, status: str, message: str, code: str | None = None) -> None:
        with self.ctx.lock:
            last = self.build["phases"][-1]
            if "phaseStatus" not in last:
                self._close(last, status, message, code)

    def _pace(self) -> None:
        self.cancel.wait(self.ctx.timings.build_phase)

    def emit(self, line: str) -> None:
        from moto.logs.models import logs_backends

        text = redact.mask(line.rstrip("\n"))
        logs = self.build["logs"]
        with self.ctx.lock:
            backend = logs_backends[self.backend.account_id][self.backend.region_name]
            if logs["groupName"] not in backend.groups:
                backend.create_log_group(logs["groupName"], {})
            group = backend.groups[logs["groupName"]]
            if logs["streamName"] not in group.streams:
                group.create_log_stream(logs["streamName"])
            stamp = int(datetime.now(UTC).timestamp() * 1000)
            group.put_log_events(logs["streamName"], [{"timestamp": stamp, "message": text}])

    # -- the build -----------------------------------------------------------------------------

    def run(self) -> None:
        status = "FAILED"
        workdir = Path(tempfile.mkdtemp(prefix="deployfw-codebuild-"))
        try:
            status = self._run(workdir)
        except Exception as exc:  # a sandbox bug must end the build, not hang it
            self.emit(f"[Container] sandbox error: {type(exc).__name__}: {exc}")
            self._fail_current("FAILED", str(exc))
            status = "FAILED"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self._complete(status)

    def _run(self, workdir: Path) -> str:
        for phase in ("PROVISIONING", "DOWNLOAD_SOURCE"):
            self._pace()
            if self.cancel.is_set():
                return "STOPPED"
            self._enter(phase)
        denied = self._logs_denied()
        if denied:
            self._fail_current("FAILED", denied)
            return "FAILED"
        self.emit(f"[Container] {datetime.now(UTC):%Y/%m/%d %H:%M:%S} Running on deployfw sandbox")
        sha = None
        if self.ctx.repo_root is not None:
            try:
                sha = checkout.resolve(self.ctx.repo_root, self.build.get("sourceVersion"))
                checkout.export(self.ctx.repo_root, sha, workdir)
            except (ValueError, OSError) as exc:
                self.emit(f"[Container] CLIENT_ERROR: {exc}")
                self._fail_current("CLIENT_ERROR", str(exc))
                return "FAILED"
            with self.ctx.lock:
                self.build["resolvedSourceVersion"] = sha
        self.emit(f"[Container] Source downloaded at {sha or '(no repository configured)'}")
        try:
            text, filename = self._buildspec_text(workdir)
        except ValueError as exc:
            self.emit(f"[Container] YAML_FILE_ERROR: {exc}")
            self._fail_current("CLIENT_ERROR", str(exc))
            return "FAILED"
        if self.fail:
            self._enter("INSTALL")
            self._enter("BUILD")
            message = f"deployfw sandbox fault build:{self.module}: BUILD failed"
            self.emit(f"[Container] Phase complete: BUILD State: FAILED ({message})")
            self._fail_current("FAILED", message)
            return "FAILED"
        runner = _runner(self.ctx)
        try:
            spec = runner.load_buildspec(text, filename)
        except Exception as exc:  # InputError from deployfw.buildspec
            self.emit(f"[Container] YAML_FILE_ERROR: {exc}")
            self._fail_current("CLIENT_ERROR", f"YAML_FILE_ERROR: {exc}")
            return "FAILED"
        try:
            env = self._environment(workdir, sha)
        except MissingParameter as exc:  # CodeBuild fails the build in DOWNLOAD_SOURCE, before any command
            self.emit("[Container] Phase complete: DOWNLOAD_SOURCE State: FAILED")
            self.emit(f"[Container] Phase context status code: {DECRYPT_ERROR} Message: {exc}")
            self._fail_current("FAILED", str(exc), DECRYPT_ERROR)
            return "FAILED"
        result = runner.run_buildspec(
            spec,
            workdir=workdir,
            env=env,
            emit=self.emit,
            cancel=self.cancel,
            phase_callback=self._runner_phase,
        )
        self._apply_result(result)
        if result.status == "SUCCEEDED" and not self.cancel.is_set():
            for phase in ("UPLOAD_ARTIFACTS", "FINALIZING"):
                self._enter(phase)
                self._pace()
        return "STOPPED" if self.cancel.is_set() else str(result.status)

    def _logs_denied(self) -> str | None:
        """With IAM enforced, CodeBuild writes the build's log as the project's service role - and fails
        the build, as AWS does, when the role may not (the log is then empty: nothing else to say)."""
        iam = self.ctx.iam
        role = self.build.get("serviceRole")
        if iam is None or not iam.enforcing or not role:
            return None
        from deployfw.sandbox.aws.authz.requests import Check

        logs = self.build["logs"]
        stream = (f"arn:aws:logs:{self.backend.region_name}:{self.backend.account_id}:log-group:{logs['groupName']}"
                  f":log-stream:{logs['streamName']}")  # fmt: skip
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            if not iam.decide(str(role), Check(action, stream), self.backend.region_name).allowed:
                return (
                    f"ACCESS_DENIED: Service role {role} does not allow AWS CodeBuild to create Amazon CloudWatch "
                    f"Logs log streams for build {self.build['arn']}. Error message: {role} is not authorized to "
                    f"perform: {action} on resource: {stream}"
                )
        return None

    def _runner_phase(self, name: str) -> None:
        if name.upper() in _RUNNER_PHASES:
            self._enter(name.upper())

    def _apply_result(self, result: Any) -> None:
        outcome = {p.name.upper(): p.status for p in getattr(result, "phases", [])}
        with self.ctx.lock:
            for phase in self.build["phases"]:
                status = outcome.get(phase["phaseType"])
                if status and status != "SUCCEEDED":
                    phase.setdefault("endTime", _now())
                    phase["phaseStatus"] = status
            last = self.build["phases"][-1]
            if "phaseStatus" not in last:
                self._close(last, "SUCCEEDED" if result.status == "SUCCEEDED" else result.status)
            exported = getattr(result, "exported_variables", {}) or {}
            self.build["exportedEnvironmentVariables"] = [{"name": k, "value": v} for k, v in exported.items()]

    def _buildspec_text(self, workdir: Path) -> tuple[str, str]:
        given = self.build.get("source", {}).get("buildspec") or ""
        if "\n" in given or given.strip().startswith("version"):
            return given, "buildspecOverride"
        path = workdir / (given or "buildspec.yml")
        if not path.is_file():
            raise ValueError(f"buildspec file {given or 'buildspec.yml'} not found in the source")
        return path.read_text(encoding="utf-8"), str(path.relative_to(workdir))

    def _environment(self, workdir: Path, sha: str | None) -> dict[str, str]:
        build = self.build
        # The runner starts from os.environ itself; ours are CodeBuild's variables, and the deployfw
        # that runs this sandbox (a real CodeBuild image installs its own; ours is this process's).
        env: dict[str, str] = tool_env()
        region = self.backend.region_name
        env.update(
            {
                "CODEBUILD_BUILD_ID": build["id"],
                "CODEBUILD_BUILD_ARN": build["arn"],
                "CODEBUILD_BUILD_NUMBER": str(build["buildNumber"]),
                "CODEBUILD_INITIATOR": build.get("initiator", ""),
                "CODEBUILD_SOURCE_VERSION": str(build.get("sourceVersion") or ""),
                "CODEBUILD_RESOLVED_SOURCE_VERSION": sha or "",
                "CODEBUILD_SRC_DIR": str(workdir),
                "CODEBUILD_BUILD_IMAGE": str(build["environment"].get("image", "")),
                "CODEBUILD_LOG_PATH": build["logs"]["streamName"],
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
            }
        )
        endpoint = getattr(self.ctx, "endpoint_url", None)
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        iam = self.ctx.iam
        if iam is not None and iam.enforcing and build.get("serviceRole"):
            # The build runs as the project's service role, as in CodeBuild: a session of it.
            session = iam.role_session(str(build["serviceRole"]), f"codebuild-{build['buildNumber']}", region)
            env.update(session.environment())
        variables = build["environment"].get("environmentVariables", [])
        self.emit("[Container] Processing environment variables")
        if any(v.get("type") == "PARAMETER_STORE" for v in variables):
            self.emit("[Container] Decrypting parameter store environment variables")
        for variable in variables:
            env[variable["name"]] = self._resolve(variable)
        return env

    def _resolve(self, variable: dict[str, str]) -> str:
        """PARAMETER_STORE values come from the sandbox's SSM; they count as secrets. A missing
        parameter raises :class:`MissingParameter`, which fails the build as CodeBuild does."""
        kind, value = variable.get("type", "PLAINTEXT"), variable.get("value", "")
        if kind != "PARAMETER_STORE":
            return value
        from moto.ssm.models import ssm_backends

        with self.ctx.lock:
            try:
                parameter = ssm_backends[self.backend.account_id][self.backend.region_name].get_parameter(value)
            except Exception:  # moto refuses some names outright; AWS reports those as missing too
                parameter = None
        if parameter is None:
            raise MissingParameter(f"parameter does not exist: {value}")
        resolved = str(parameter.value)
        redact.register(resolved)
        return resolved

    def _complete(self, status: str) -> None:
        if status == "STOPPED":
            self._fail_current("STOPPED", "Build was stopped")
        with self.ctx.lock:
            self.build["phases"].append({"phaseType": "COMPLETED", "startTime": _now()})
            self.build["currentPhase"] = "COMPLETED"
            self.build["buildStatus"] = status
            self.build["buildComplete"] = True
            self.build["endTime"] = _now()
        self.emit(f"[Container] Build completed: {status}")
