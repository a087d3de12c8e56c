"""The sandbox's CodeDeploy agent: one instance's part of a deployment, done for real.

For each lifecycle event of an in-place deployment, in order, on the instance's own root folder
(``R``, what ``/`` is on a real server):

``ApplicationStop``
    the scripts of the revision *last installed* on the instance (the agent's
    ``deployment-instructions/GROUP_last_successful_install``); nothing the first time;
``DownloadBundle``
    the bundle from the sandbox's S3, refused when its ETag is not the deployment's, unzipped
    (modes kept) into ``R/opt/codedeploy-agent/deployment-root/GROUP/DEPLOYMENT/deployment-archive``;
``BeforeInstall``, ``AfterInstall``, ``ApplicationStart``, ``ValidateService``
    the new revision's scripts, run in the instance (its address, its PID namespace) with the
    variables CodeDeploy sets, each with its timeout;
``Install``
    the files the previous deployment of the group installed are removed (the agent's cleanup
    file), then the AppSpec's ``files`` are copied under ``R`` - a file that is already there
    fails the event with ``DISALLOW``, is replaced with ``OVERWRITE``, kept with ``RETAIN``.

Each script's output goes to ``scripts.log`` and into a 2 KB tail, as the agent keeps it; a
failure's diagnostics carry the agent's error code (ScriptMissing, ScriptNotExecutable,
ScriptTimedOut, ScriptFailed, UnknownError), the script, the message and that tail.

A script's timeout is a limit on real work (scripts run at real speed), so it passes on the
sandbox clock but never cuts a script short of ``min(timeout, 30)`` real seconds.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from deployfw.sandbox.clock import SandboxClock
from deployfw.sandbox.fleet.appspec import AgentAppSpec, AgentScript, AppSpecError, parse
from deployfw.sandbox.fleet.hosts import HostProcess
from deployfw.serverspec import (
    APPSPEC_NAME,
    DEFAULT_FILE_EXISTS,
    IN_PLACE_EVENTS,
    PREVIOUS_REVISION_EVENTS,
)

AGENT_ROOT = "opt/codedeploy-agent/deployment-root"
LOG_TAIL_BYTES = 2048
REAL_SECONDS_FLOOR = 30.0

Diagnostics = dict[str, Any]
EventSink = Callable[[str, str, Diagnostics | None], None]
"""``(event, status, diagnostics)``: Pending -> InProgress -> Succeeded | Failed | Skipped."""
Fetch = Callable[[str, str, str | None], tuple[bytes, str]]
"""``(bucket, key, version) -> (bytes, etag)``; raises ``LookupError`` with S3's reason."""


class InstanceLike(Protocol):
    name: str
    root: Path
    host: HostProcess | None

    def script_env(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class AgentJob:
    """What the agent is told about the deployment (the agent's deployment specification)."""

    deployment_id: str
    application: str
    group: str
    group_id: str
    bucket: str
    key: str
    etag: str | None
    version: str | None = None
    file_exists_behavior: str | None = None
    ignore_application_stop_failures: bool = False

    @property
    def locator(self) -> str:
        return f"s3://{self.bucket}/{self.key}@{self.etag or '-'}"


class EventFailed(Exception):
    def __init__(self, code: str, message: str, script: str = "", log_tail: str = "") -> None:
        super().__init__(message)
        self.diagnostics = {"errorCode": code, "scriptName": script, "message": message, "logTail": log_tail}


class ScriptLog:
    """The last 2 KB of a lifecycle event's script output, whole entries only (the agent's logTail)."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, entry: str) -> None:
        self.entries.append(entry)
        while len(self.entries) > 1 and sum(len(e) for e in self.entries) > LOG_TAIL_BYTES:
            self.entries.pop(0)

    @property
    def tail(self) -> str:
        return "".join(self.entries)[-LOG_TAIL_BYTES:]


def script_seconds(clock: SandboxClock, timeout: float) -> float:
    """Real seconds a script with ``timeout`` sandbox seconds may run (see the module docstring)."""
    return max(clock.bounded(timeout), min(float(timeout), REAL_SECONDS_FLOOR))


class Agent:
    """Runs deployments on one instance, one at a time (the caller serialises them)."""

    def __init__(self, instance: InstanceLike, fetch: Fetch, clock: SandboxClock) -> None:
        self.instance = instance
        self.fetch = fetch
        self.clock = clock

    # -- paths on the instance -------------------------------------------------------------------

    @property
    def agent_root(self) -> Path:
        return self.instance.root / AGENT_ROOT

    def _instructions(self) -> Path:
        return self.agent_root / "deployment-instructions"

    def _on_instance(self, path: str) -> Path:
        """An absolute path on the instance, under its root folder."""
        return self.instance.root / path.lstrip("/")

    def _deployment_dir(self, job: AgentJob) -> Path:
        return self.agent_root / job.group_id / job.deployment_id

    def last_installed(self, group_id: str) -> Path | None:
        marker = self._instructions() / f"{group_id}_last_successful_install"
        try:
            folder = marker.read_text().strip()
        except OSError:
            return None
        path = self._on_instance(folder)
        return path if (path / "deployment-archive").is_dir() else None

    # -- one deployment ------------------------------------------------------------------------------

    def deploy(self, job: AgentJob, sink: EventSink, abort: threading.Event) -> bool:
        """Every lifecycle event in order; True when the instance succeeded. Events not reached are Skipped."""
        folder = self._deployment_dir(job)
        folder.mkdir(parents=True, exist_ok=True)
        spec: AgentAppSpec | None = None
        events = list(IN_PLACE_EVENTS)
        for index, event in enumerate(events):
            if abort.is_set():
                for rest in events[index:]:
                    sink(rest, "Skipped", None)
                return False
            sink(event, "InProgress", None)
            try:
                if event == "DownloadBundle":
                    self._download(job, folder)
                    diagnostics = None
                elif event == "Install":
                    spec = spec or self._appspec(folder)
                    self._install(job, folder, spec)
                    diagnostics = None
                elif event in PREVIOUS_REVISION_EVENTS:
                    diagnostics = self._previous_hooks(event, job, folder)
                else:
                    spec = spec or self._appspec(folder)
                    diagnostics = self._hooks(event, job, folder / "deployment-archive", spec, folder)
            except EventFailed as failed:
                sink(event, "Failed", failed.diagnostics)
                for rest in events[index + 1 :]:
                    sink(rest, "Skipped", None)
                return False
            sink(event, "Succeeded", diagnostics)
        return True

    def _previous_hooks(self, event: str, job: AgentJob, folder: Path) -> Diagnostics | None:
        """ApplicationStop runs the scripts of the revision last installed (none the first time)."""
        previous = self.last_installed(job.group_id)
        if previous is None:
            return None
        try:
            spec = parse((previous / "deployment-archive" / APPSPEC_NAME).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, AppSpecError):
            return None  # nothing the agent can run
        try:
            return self._hooks(event, job, previous / "deployment-archive", spec, folder)
        except EventFailed as failed:
            if event == "ApplicationStop" and job.ignore_application_stop_failures:
                failed.diagnostics["message"] += " (ignored: ignoreApplicationStopFailures)"
                return failed.diagnostics
            raise

    def _appspec(self, folder: Path) -> AgentAppSpec:
        path = folder / "deployment-archive" / APPSPEC_NAME
        if not path.is_file():
            raise EventFailed("UnknownError", f"The CodeDeploy agent did not find an AppSpec file within the unpacked "
                                              f"revision directory at revision-relative path \"{APPSPEC_NAME}\".")
        try:
            return parse(path.read_text(encoding="utf-8"))
        except (AppSpecError, UnicodeDecodeError) as exc:
            raise EventFailed("UnknownError", str(exc)) from None

    # -- DownloadBundle ------------------------------------------------------------------------------

    def _download(self, job: AgentJob, folder: Path) -> None:
        try:
            data, etag = self.fetch(job.bucket, job.key, job.version)
        except LookupError as exc:
            raise EventFailed("UnknownError", f"Downloading s3://{job.bucket}/{job.key}: {exc}") from None
        if job.etag and job.etag.strip('"') != etag.strip('"'):
            raise EventFailed("UnknownError", f"Expected deployment artifact bundle etag {job.etag} but was actually "
                                              f"{etag}")  # fmt: skip
        bundle = folder / "bundle.tar"
        bundle.write_bytes(data)
        archive = folder / "deployment-archive"
        shutil.rmtree(archive, ignore_errors=True)
        archive.mkdir(parents=True)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zipped:
                for info in zipped.infolist():
                    target = (archive / info.filename).resolve()
                    if not target.is_relative_to(archive.resolve()):
                        raise EventFailed("UnknownError", f"bundle entry {info.filename} points outside the archive")
                    zipped.extract(info, archive)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and not info.is_dir():
                        os.chmod(target, mode)
        except zipfile.BadZipFile as exc:
            raise EventFailed("UnknownError", f"The bundle is not a zip archive: {exc}") from None
        instructions = self._instructions()
        instructions.mkdir(parents=True, exist_ok=True)
        (instructions / f"{job.group_id}_most_recent_install").write_text(self._instance_path(folder) + "\n")

    def _instance_path(self, path: Path) -> str:
        return "/" + path.relative_to(self.instance.root).as_posix()

    # -- Install ---------------------------------------------------------------------------------------

    def _install(self, job: AgentJob, folder: Path, spec: AgentAppSpec) -> None:
        instructions = self._instructions()
        instructions.mkdir(parents=True, exist_ok=True)
        cleanup = instructions / f"{job.group_id}-cleanup"
        if cleanup.is_file():
            for line in reversed(cleanup.read_text().splitlines()):
                kind, _, where = line.partition(" ")
                path = self._on_instance(where)
                if kind == "file" and (path.is_file() or path.is_symlink()):
                    path.unlink()
                elif kind == "dir" and path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            cleanup.unlink()
        behavior = spec.file_exists_behavior or job.file_exists_behavior or DEFAULT_FILE_EXISTS
        archive = folder / "deployment-archive"
        plan: list[tuple[Path, Path]] = []
        made: list[Path] = []
        for source, destination in spec.files:
            origin = archive / source.lstrip("/")
            target = self._on_instance(destination)
            if origin.is_dir():
                for path in sorted(p for p in origin.rglob("*") if p.is_file()):
                    plan.append((path, target / path.relative_to(origin)))
            elif origin.is_file():
                plan.append((origin, target / origin.name))
            else:
                raise EventFailed("UnknownError", f"The source {source} of the files section is not in the bundle")
        copies = []
        for origin, target in plan:
            if target.exists():
                if behavior == "DISALLOW":
                    raise EventFailed("UnknownError", "The deployment failed because a specified file already exists "
                                                      f"at this location: {self._instance_path(target)}")  # fmt: skip
                if behavior == "RETAIN":
                    continue
            copies.append((origin, target))
        for origin, target in copies:
            for parent in reversed(target.parents):
                if parent.is_relative_to(self.instance.root) and not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            shutil.copyfile(origin, target)
            os.chmod(target, stat.S_IMODE(origin.stat().st_mode))
        lines = [f"dir {self._instance_path(d)}" for d in made] + [f"file {self._instance_path(t)}" for _, t in copies]
        cleanup.write_text("".join(f"{line}\n" for line in lines))
        (instructions / f"{job.group_id}_last_successful_install").write_text(self._instance_path(folder) + "\n")

    # -- hook scripts ---------------------------------------------------------------------------------

    def _hooks(
        self, event: str, job: AgentJob, archive: Path, spec: AgentAppSpec, folder: Path
    ) -> Diagnostics | None:
        scripts = spec.hooks.get(event) or ()
        if not scripts:
            return None
        log = ScriptLog()
        log_file = folder / "logs" / "scripts.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8") as out:

            def write(entry: str) -> None:
                log.add(entry)
                out.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {entry}")
                out.flush()

            write(f"LifecycleEvent - {event}\n")
            for script in scripts:
                self._script(event, job, archive, script, write, log)
        return {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": log.tail}

    def _script(
        self,
        event: str,
        job: AgentJob,
        archive: Path,
        script: AgentScript,
        write: Callable[[str], None],
        log: ScriptLog,
    ) -> None:
        path = archive / script.location.lstrip("/")
        if not path.is_file():
            raise EventFailed("ScriptMissing", f"Script does not exist at specified location: {path}",
                              script.location, log.tail)  # fmt: skip
        if not os.access(path, os.X_OK):
            try:
                os.chmod(path, stat.S_IMODE(path.stat().st_mode) | 0o111)
            except OSError:
                raise EventFailed("ScriptNotExecutable", f"Unable to set script at specified location: "
                                  f"{script.location} as executable", script.location, log.tail) from None
        write(f"Script - {script.location}\n")
        host = self.instance.host
        if host is None:
            raise EventFailed("UnknownError", "the instance is not running", script.location, log.tail)
        argv = [str(path)]
        if script.runas and script.runas != "root" and os.geteuid() == 0:
            argv = ["runuser", "-u", script.runas, "--", str(path)]
        env = self._env(event, job)
        result = host.run(argv, env, archive, script_seconds(self.clock, script.timeout), on_line=write)
        who = f" run as user {script.runas}" if script.runas else ""
        where = f"Script at specified location: {script.location}{who}"
        if result.error == "timeout":
            raise EventFailed("ScriptTimedOut", f"Script at specified location: {script.location} failed to complete "
                              f"in {script.timeout} seconds", script.location, log.tail)  # fmt: skip
        if result.error == "outputs_left_open":
            raise EventFailed("UnknownError", f"Script at specified location: {script.location} failed to close "
                              "STDOUT", script.location, log.tail)  # fmt: skip
        if result.error:
            raise EventFailed("UnknownError", f"{where} could not run: {result.error}", script.location, log.tail)
        if result.exit_code != 0:
            raise EventFailed("ScriptFailed", f"{where} failed with exit code {result.exit_code}", script.location,
                              log.tail)  # fmt: skip

    def _env(self, event: str, job: AgentJob) -> Mapping[str, str]:
        env = dict(self.instance.script_env())
        env.update({
            "LIFECYCLE_EVENT": event,
            "DEPLOYMENT_ID": job.deployment_id,
            "APPLICATION_NAME": job.application,
            "DEPLOYMENT_GROUP_NAME": job.group,
            "DEPLOYMENT_GROUP_ID": job.group_id,
            "BUNDLE_BUCKET": job.bucket,
            "BUNDLE_KEY": job.key,
            "BUNDLE_VERSION": job.version or "",
            "BUNDLE_ETAG": job.etag or "",
        })  # fmt: skip
        return env

