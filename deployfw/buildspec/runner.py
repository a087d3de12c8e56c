"""Run a validated buildspec with CodeBuild's phase semantics.

Phases run in CodeBuild's order (INSTALL, PRE_BUILD, BUILD, POST_BUILD),
each in its own shell session (:mod:`deployfw.buildspec.session`), with the
exported environment carried from one phase to the next. After a failed
phase the next step follows CodeBuild:

* ``on-failure: CONTINUE`` - go on to the next phase;
* ``on-failure: ABORT`` - stop the build there;
* not given - CodeBuild's phase-transition table: a failed INSTALL or
  PRE_BUILD ends the build, a failed BUILD still runs POST_BUILD, and
  UPLOAD_ARTIFACTS is attempted after BUILD/POST_BUILD failures.

Every emitted line, including the runner's own ``[Container]`` markers, goes
through :func:`deployfw.redact.mask`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from deployfw import redact
from deployfw.buildspec.artifacts import copy_artifacts, match_artifacts
from deployfw.buildspec.environment import initial_environment, resolve_secrets
from deployfw.buildspec.model import (
    PHASE_TYPES,
    UPLOAD_ARTIFACTS,
    Buildspec,
    BuildspecResult,
    PhaseResult,
    Status,
)
from deployfw.buildspec.names import expand_name
from deployfw.buildspec.secrets import SecretResolver
from deployfw.buildspec.session import PhaseSession, ShellState, Step
from deployfw.errors import ExternalError, InputError

# Phases whose failure ends the build when the buildspec gives no on-failure.
_FATAL_BY_DEFAULT = frozenset({"install", "pre_build"})


class _Log:
    """Formats CodeBuild-style ``[Container]`` lines and masks everything it emits."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit

    def output(self, line: str) -> None:
        self._emit(redact.mask(line))

    def container(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S.%f")
        self._emit(redact.mask(f"[Container] {stamp} {message}"))


def run_buildspec(
    spec: Buildspec,
    *,
    workdir: Path,
    env: Mapping[str, str],
    emit: Callable[[str], None],
    cancel: threading.Event | None = None,
    resolver: SecretResolver | None = None,
    phase_callback: Callable[[str], None] | None = None,
    shell: str = "bash",
    artifacts_dir: Path | None = None,
) -> BuildspecResult:
    """Run ``spec`` in ``workdir`` and return how it went.

    ``env`` is the caller's variables (CodeBuild's start-build overrides:
    they win over the buildspec's own). ``shell`` is used unless the
    buildspec sets ``env.shell``. ``resolver`` defaults to AWS when the
    buildspec names parameter-store or secrets-manager values. A resolver
    failure is reported as a FAILED result before any phase runs; a missing
    ``workdir`` or shell is an InputError, since nothing could run at all.
    """
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise InputError(f"{spec.filename}: source directory {workdir} does not exist")
    chosen = spec.env.shell or shell
    if shutil.which(chosen) is None:
        raise InputError(f"{spec.filename}: shell {chosen!r} is not installed here")
    return _Run(spec, workdir, env, _Log(emit), cancel or threading.Event(),
                phase_callback, chosen).execute(resolver, artifacts_dir)


class _Run:
    """The state of one build: carried shell state, results so far, first error."""

    def __init__(self, spec: Buildspec, workdir: Path, env: Mapping[str, str], log: _Log,
                 cancel: threading.Event, phase_callback: Callable[[str], None] | None,
                 shell: str) -> None:
        self.spec = spec
        self.workdir = workdir
        self.caller_env = dict(env)
        self.log = log
        self.cancel = cancel
        self.phase_callback = phase_callback or (lambda _name: None)
        self.shell = shell
        self.phases: list[PhaseResult] = []
        self.error: str | None = None
        self.failed = False

    def execute(self, resolver: SecretResolver | None, artifacts_dir: Path | None
                ) -> BuildspecResult:
        for section in self.spec.ignored:
            self.log.container(f"Skipping '{section}' in {self.spec.filename}: not supported "
                               "by the local buildspec runner")
        try:
            resolved = resolve_secrets(self.spec.env, resolver, overridden=self.caller_env)
        except ExternalError as exc:
            message = redact.mask(f"could not resolve build environment variables: {exc}")
            self.log.container(message)
            return BuildspecResult("FAILED", [], {}, [], error=message)
        state = ShellState(
            initial_environment(self.spec.env, self.caller_env, resolved, self.workdir),
            self.workdir,
        )
        stopped, state, upload = self._phases(state)
        exported = self._exported(state.env)
        artifacts: list[Path] = []
        name = None
        if not stopped and upload and self.spec.artifacts is not None:
            artifacts, name = self._artifacts(state, artifacts_dir)
        status: Status = "STOPPED" if stopped else ("FAILED" if self.failed else "SUCCEEDED")
        self.log.container(f"Build {status.lower()}" + (f": {self.error}" if self.error else ""))
        return BuildspecResult(status, self.phases, exported, artifacts, self.error, name)

    def _phases(self, state: ShellState) -> tuple[bool, ShellState, bool]:
        """Run the phases; return (stopped, final state, whether to upload artifacts)."""
        for key, phase_type in PHASE_TYPES.items():
            if self.cancel.is_set():
                self.log.container("Build stopped")
                return True, state, False
            phase = self.spec.phase(key)
            self.phase_callback(phase_type)
            self.log.container(f"Entering phase {phase_type}")
            started = datetime.now(UTC)
            state.env["CODEBUILD_BUILD_SUCCEEDING"] = "0" if self.failed else "1"
            if phase is None:
                self._record(phase_type, "SUCCEEDED", started, None)
                continue
            if phase.runtime_versions:
                self.log.container("Skipping runtime-versions: the local runner uses the tools "
                                   "already installed")
            if phase.run_as:
                self.log.container(f"Skipping run-as {phase.run_as}: commands run as the "
                                   "current user")
            run = self._session().run(phase.commands, phase.finally_commands, state)
            state = run.state or state
            if run.stopped:
                self._record(phase_type, "STOPPED", started, None)
                self.log.container("Build stopped")
                return True, state, False
            failed = run.failed_step
            if failed is None:
                self._record(phase_type, "SUCCEEDED", started, run.exit_code)
                continue
            self.failed = True
            reason = (f"Error while executing command: {failed.text}. "
                      f"Reason: exit status {failed.exit_code}")
            self.error = self.error or redact.mask(f"{phase_type}: {reason}")
            self.log.container(f"Phase context status code: COMMAND_EXECUTION_ERROR "
                               f"Message: {reason}")
            self._record(phase_type, "FAILED", started, failed.exit_code)
            action = phase.on_failure
            if action == "ABORT" or (action is None and key in _FATAL_BY_DEFAULT):
                return False, state, False
        return False, state, True

    def _session(self) -> PhaseSession:
        return PhaseSession(
            shell=self.shell,
            on_output=self.log.output,
            on_command=lambda step: self.log.container(f"Running command {step.text}"),
            on_result=self._on_result,
            cancel=self.cancel,
        )

    def _on_result(self, step: Step) -> None:
        if step.exit_code:
            self.log.container(
                f"Command did not exit successfully {step.text} exit status {step.exit_code}"
            )

    def _record(self, phase_type: str, status: Status, started: datetime,
                exit_code: int | None) -> None:
        self.phases.append(PhaseResult(phase_type, status, started, datetime.now(UTC),
                                       exit_code))
        self.log.container(f"Phase complete: {phase_type} State: {status}")

    def _exported(self, env: Mapping[str, str]) -> dict[str, str]:
        exported = {}
        for name in self.spec.env.exported_variables:
            if name in env:
                exported[name] = env[name]
            else:
                self.log.container(f"Exported variable {name} is not set; not exported")
        return exported

    def _artifacts(self, state: ShellState, out_dir: Path | None
                   ) -> tuple[list[Path], str | None]:
        assert self.spec.artifacts is not None
        started = datetime.now(UTC)
        self.phase_callback(UPLOAD_ARTIFACTS)
        self.log.container(f"Entering phase {UPLOAD_ARTIFACTS}")
        spec = self.spec.artifacts
        name = expand_name(spec.name, shell=self.shell, state=state) if spec.name else None
        pairs = match_artifacts(spec, self.workdir)
        if not pairs:
            self.failed = True
            message = "CLIENT_ERROR: no matching artifact paths found"
            self.error = self.error or f"{UPLOAD_ARTIFACTS}: {message}"
            self.log.container(f"Phase context status code: {message}")
            self._record(UPLOAD_ARTIFACTS, "FAILED", started, None)
            return [], name
        if out_dir is None:
            paths = [source for source, _ in pairs]
        else:
            paths = copy_artifacts(pairs, Path(out_dir), self.log.container)
        self._record(UPLOAD_ARTIFACTS, "SUCCEEDED", started, None)
        return paths, name
