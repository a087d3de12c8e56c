"""The executor: carries out a :class:`~deployfw.plan.Plan`, module by module.

Modules run concurrently (``max_parallel``) but a module waits for the service
modules it depends on; a failure never stops independent modules, and its
dependents are reported ``skipped`` with the reason. Each module goes through:

    registry.prepare -> registry.find(content tag)  (reuse: skip the build)
                     -> build.build                  (pushes commit + content tags)
    push:   registry.find(content tag) -> registry.promote(commit tag)
    deploy: deploy.deploy(repo@sha256:digest)

Cancellation (Ctrl-C / SIGTERM) sets ``ctx.cancel``: nothing new starts, and
running backends stop their builds and roll back their deployments. Nothing is
reported succeeded that did not succeed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployfw import redact
from deployfw.backends import (
    BackendRegistry,
    BuildBackend,
    DeployBackend,
    DeployOutcome,
    ModuleJob,
    RegistryBackend,
    RunContext,
    StageResult,
    WritesArtifacts,
    backend_for,
)
from deployfw.deploying import conclude_in_flight, recorded_deploy
from deployfw.errors import DeployfwError
from deployfw.events import Event, EventLog
from deployfw.plan import ModulePlan, Plan
from deployfw.report import LOG_TAIL_LINES, LOG_TAIL_WIDTH, ModuleReport, RunReport, StageReport, utc_stamp
from deployfw.runstate import RunState
from deployfw.state import Superseded


@dataclass
class RunOptions:
    max_parallel: int = 16
    artifacts_dir: Path | None = None


class Runner:
    """Executes one plan; create one per run."""

    def __init__(
        self,
        plan: Plan,
        registry: BackendRegistry,
        ctx: RunContext,
        hooks: Any,
        events: EventLog,
        options: RunOptions | None = None,
        state: RunState | None = None,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.ctx = ctx
        self.hooks = hooks
        self.events = events
        self.options = options or RunOptions()
        self.state = state
        self.reports: dict[str, ModuleReport] = {
            m.name: ModuleReport(m.name, after=list(m.after)) for m in plan.modules
        }
        # Affected but held back by a rollback pin: in the report, skipped with the pin's reason.
        self.pinned = [ModuleReport(name, "skipped", pin.reason()) for name, pin in plan.pinned.items()]
        self.wall: Callable[[], float] = time.time  # the report's absolute times
        # The last lines each module logged in each stage: a failed stage's log tail in the report.
        self._tails: dict[tuple[str, str], deque[str]] = {}
        self._timeline_lock = threading.Lock()
        events.subscribe(self._remember)

    # -- scheduling ----------------------------------------------------------------

    def run(self) -> RunReport:
        """Run every module; the caller has already taken the locks (``RunState.acquire_all``)."""
        try:
            return self._run()
        finally:
            if self.state is not None:
                self.state.release_all()

    def _run(self) -> RunReport:
        started = time.monotonic()
        started_at = utc_stamp(self.wall())
        self.hooks.deployfw_run_start(ctx=self.ctx, modules=[m.name for m in self.plan.modules])
        pending = {m.name: m for m in self.plan.modules}
        running: dict[Future[None], str] = {}
        for pinned in self.pinned:
            self.events.emit(pinned.name, "skip", pinned.reason)
        with ThreadPoolExecutor(max_workers=max(1, self.options.max_parallel), thread_name_prefix="module") as pool:
            while pending or running:
                for name, module_plan in list(pending.items()):
                    verdict = self._ready(module_plan)
                    if verdict is None:
                        continue
                    del pending[name]
                    if isinstance(verdict, str):
                        self._skip(module_plan, verdict)
                    else:
                        running[pool.submit(self._run_module, module_plan)] = name
                if not running:
                    if pending:  # unreachable with a valid plan; never spin
                        for module_plan in pending.values():
                            self._skip(module_plan, "dependency never ran")
                        pending.clear()
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=0.5)
                for future in done:
                    running.pop(future)
                    future.result()
        report = RunReport(
            self.plan.env,
            self.plan.base,
            self.plan.head,
            self.ctx.run_id,
            [*(self.reports[m.name] for m in self.plan.modules), *self.pinned],
            ci_url=self.ctx.ci_url,
            seconds=time.monotonic() - started,
            started_at=started_at,
            ended_at=utc_stamp(self.wall()),
            region=self.ctx.region,
            aws_endpoint=self.ctx.endpoint_url,
            repository_url=self.ctx.repository_url,
        )
        if self.state is not None:
            report.state = self.state.placement.to_json() if self.state.placement is not None else None
            report.pins = self.state.pin_report(self.plan.pinned)
        try:
            self.hooks.deployfw_run_end(ctx=self.ctx, report=report.to_json())
        except Exception as exc:  # a reporting plugin must not change the outcome
            self.events.emit("deployfw", "report", f"warning: a run_end hook failed: {exc}")
        return report

    def _ready(self, module_plan: ModulePlan) -> bool | str | None:
        """True to start, a reason string to skip, None to keep waiting."""
        if self.ctx.cancel.is_set():
            return "cancelled before it started"
        for dep in module_plan.after:
            status = self.reports[dep].status
            if status == "failed" or (status == "skipped" and self.reports[dep].error):
                return f"dependency {dep} {status}"
            if status != "succeeded":
                return None
        return True

    def _skip(self, module_plan: ModulePlan, reason: str) -> None:
        report = self.reports[module_plan.name]
        report.status, report.reason, report.error = "skipped", "; ".join(module_plan.reasons), reason
        report.stages = [StageReport(s.stage, "skipped", error=reason) for s in module_plan.stages]
        self.events.emit(module_plan.name, "skip", reason)
        self._module_end(module_plan.name, report)

    # -- one module ------------------------------------------------------------------

    def _run_module(self, module_plan: ModulePlan) -> None:
        if self.ctx.cancel.is_set():
            # Queued for a free slot when the run was cancelled: it never started, the same
            # outcome as a module cancelled before it was queued (not a failed build).
            self._skip(module_plan, "cancelled before it started")
            return
        module = self.ctx.config.modules[module_plan.name]
        report = self.reports[module.name]
        report.reason = "; ".join(module_plan.reasons)
        report.started_at = utc_stamp(self.wall())
        self.hooks.deployfw_module_start(ctx=self.ctx, module=module)
        job = ModuleJob(self.ctx, module, self.events.for_module(module.name, "build"))
        stages = [s.stage for s in module_plan.stages]
        try:
            self._recover(job, module_plan)
            if self._deployed_meanwhile(job, report, stages):
                self._module_end(module.name, report)
                return
            ok = self._stage(job, report, "build", lambda: self._build(job, module_plan, report))
            if ok and "push" in stages:
                ok = self._stage(job, report, "push", lambda: self._push(job, module_plan, report))
            if ok and "deploy" in stages:
                ok = self._stage(job, report, "deploy", lambda: self._deploy(job, module_plan, report))
            report.status = "succeeded" if ok else "failed"
        except Superseded as exc:
            # A newer run took this module over; it finishes (or recovers) what is in flight.
            report.status, report.error = "skipped", None
            report.reason = f"superseded by run {exc.by_run or 'unknown'}; stopped at a safe point"
            self.events.emit(module.name, "lock", report.reason)
        except Exception as exc:  # a backend bug must not take the other modules down
            report.status = "failed"
            report.error = redact.mask(f"{type(exc).__name__}: {exc}")
            self.events.emit(module.name, "error", report.error)
        report.image = job.image_uri
        for missing in stages[len(report.stages) :]:
            report.stages.append(StageReport(missing, "skipped", error="an earlier stage failed"))
        report.ended_at = utc_stamp(self.wall())
        self._module_end(module.name, report)

    def _stage(self, job: ModuleJob, report: ModuleReport, stage: str, body: Callable[[], StageResult]) -> bool:
        if self.ctx.cancel.is_set():
            report.error = report.error or f"cancelled before {stage}"
            return False
        if self.state is not None:
            self.state.check(job.module.name)  # a safe point: Superseded propagates
        job.log = self.events.for_module(job.module.name, stage)
        job.marker = self._marker(report, stage)
        started = time.monotonic()
        started_at = utc_stamp(self.wall())
        try:
            result = body()
        except Superseded:
            raise
        except DeployfwError as exc:
            result = StageResult(False, str(exc))
        except Exception as exc:
            # A backend bug: the module's handler reports it; the stage it broke is on record as failed.
            tail = list(self._tails.get((job.module.name, stage), ())) or None
            crash = redact.mask(f"{type(exc).__name__}: {exc}")
            seconds = round(time.monotonic() - started, 3)
            report.stages.append(StageReport(stage, "failed", seconds, crash, started_at, utc_stamp(self.wall()), tail))
            raise
        seconds = time.monotonic() - started
        status = "succeeded" if result.ok else "failed"
        error = redact.mask(result.error) if result.error else None
        tail = None if result.ok else list(self._tails.get((job.module.name, stage), ())) or None
        report.stages.append(
            StageReport(stage, status, round(seconds, 3), error, started_at, utc_stamp(self.wall()), tail)
        )
        if not result.ok:
            report.error = error or f"{stage} failed"
        self.events.emit(job.module.name, stage, f"{status} in {seconds:.1f}s" + (f": {error}" if error else ""))
        self.hooks.deployfw_stage_end(ctx=self.ctx, module=job.module, stage=stage, result=result)
        return result.ok

    def _marker(self, report: ModuleReport, stage: str) -> Callable[[str, dict[str, Any]], None]:
        """What ``job.mark`` calls during ``stage``: one timeline entry, stamped now."""

        def mark(kind: str, fields: dict[str, Any]) -> None:
            entry = {"at": utc_stamp(self.wall()), "stage": stage, "kind": str(kind)}
            entry.update((k, v) for k, v in fields.items() if k not in entry)
            with self._timeline_lock:
                report.timeline.append(entry)

        return mark

    def _remember(self, event: Event) -> None:
        """Keep the last lines of each module's stage (called under the event log's lock: stays quick)."""
        tail = self._tails.get((event.module, event.stage))
        if tail is None:
            tail = self._tails[(event.module, event.stage)] = deque(maxlen=LOG_TAIL_LINES)
        line = event.line
        tail.append(line if len(line) <= LOG_TAIL_WIDTH else line[: LOG_TAIL_WIDTH - 1] + "…")

    def _registry(self, module_plan: ModulePlan) -> RegistryBackend:
        return backend_for(self.ctx, self.registry, "registry", module_plan.backend_of("registry"))

    def _builder(self, module_plan: ModulePlan) -> BuildBackend:
        return backend_for(self.ctx, self.registry, "build", module_plan.backend_of("build"))

    def _deployer(self, module_plan: ModulePlan) -> DeployBackend:
        return backend_for(self.ctx, self.registry, "deploy", module_plan.backend_of("deploy"))

    def _build(self, job: ModuleJob, module_plan: ModulePlan, report: ModuleReport) -> StageResult:
        registry = self._registry(module_plan)
        content_tag = module_plan.content_tag
        if content_tag is None:
            return StageResult(False, "the plan has no content tag for this module; nothing to build under")
        job.image = registry.prepare(job, content_tag)
        existing = registry.find(job, content_tag)
        backend_id = module_plan.backend_of("build")
        if existing:
            job.digest = existing
            report.build = {"backend": backend_id, "reused": True, "content_tag": content_tag, "digest": existing}
            job.log(f"image with content tag {content_tag} exists ({existing}); build skipped")
            return StageResult(True, details=report.build)
        result = self._builder(module_plan).build(job)
        report.build = {"backend": backend_id, "reused": False, "content_tag": content_tag, **result.details}
        return result

    def _push(self, job: ModuleJob, module_plan: ModulePlan, report: ModuleReport) -> StageResult:
        assert job.image is not None
        registry = self._registry(module_plan)
        digest = job.digest or registry.find(job, job.image.content_tag)
        if not digest:
            return StageResult(
                False,
                f"the build finished but {job.image.repository_uri} has no image tagged {job.image.content_tag}; "
                "does the buildspec push to $REPOSITORY_URI with --tag $IMAGE_CONTENT_TAG?",
            )
        job.digest = digest
        # The build pushes the commit tag itself, and a re-run of a commit finds it in place:
        # re-tagging then is a PutImage that ECR refuses (ImageAlreadyExists) - noise in
        # CloudTrail and the request log, and a second call where one read settles it.
        if registry.find(job, job.image.commit_tag) != digest:
            registry.promote(job, digest, [job.image.commit_tag])
        report.build["digest"] = digest
        job.log(f"{job.image_uri} tagged {job.image.commit_tag}")
        if self.options.artifacts_dir is not None:
            deployer = self._deployer(module_plan)
            if isinstance(deployer, WritesArtifacts):
                out = self.options.artifacts_dir / job.module.name
                written = deployer.write_artifacts(job, out)
                job.log(f"CodePipeline artifacts: {', '.join(p.name for p in written)} in {out}")
            else:
                job.log(f"deploy backend {module_plan.backend_of('deploy')!r} writes no CodePipeline artifacts")
        return StageResult(True, details={"digest": digest})

    def _deploy(self, job: ModuleJob, module_plan: ModulePlan, report: ModuleReport) -> StageResult:
        backend_id = module_plan.backend_of("deploy")
        deployer = self._deployer(module_plan)
        outcome: DeployOutcome = recorded_deploy(
            self.state,
            job,
            lambda: deployer.deploy(job),
            backend=backend_id,
            commit=self.ctx.head,
            image_uri=job.image_uri,
            digest=job.digest,
        )
        report.deploy = outcome.report(backend_id)
        error = outcome.error
        if not outcome.ok and outcome.task_definition and not outcome.deployment_id and not outcome.live:
            # Say what was done before the failure (an AccessDenied on CreateDeployment, say): nothing half-done
            # goes unmentioned.
            registered = outcome.task_definition.rsplit("/", 1)[-1]
            error = f"{error} (task definition {registered} was registered but not deployed: the service still runs "
            error += "what it ran before)"
        return StageResult(outcome.ok, error, report.deploy)

    def _deployed_meanwhile(self, job: ModuleJob, report: ModuleReport, stages: list[str]) -> bool:
        """True (and the report filled in) when head was deployed since this run planned: never deploy it twice."""
        if self.state is None or "deploy" not in stages:
            return False
        record = self.state.deployed_meanwhile(job.module.name, self.ctx.head)
        if record is None:
            return False
        note = f"deployed at {self.ctx.head[:12]} by run {record.run_id} after this run planned; not deployed again"
        report.status = "succeeded"
        report.reason = "; ".join(filter(None, (report.reason, note)))
        report.image = record.image_uri
        report.deploy = {
            "backend": record.backend or "",
            "id": record.deployment_id,
            "task_definition": record.task_definition,
            "rolled_back": False,
            "by_run": record.run_id,
        }
        report.stages = [StageReport(stage, "skipped", error=note) for stage in stages]
        self.events.emit(job.module.name, "deploy", note)
        return True

    def _recover(self, job: ModuleJob, module_plan: ModulePlan) -> None:
        """Conclude what a killed or superseded run left in flight for this module, before starting anew."""
        if self.state is None or module_plan.stage("deploy") is None:
            return
        log = self.events.for_module(job.module.name, "recover")
        conclude_in_flight(self.state, self._deployer(module_plan), job, log)

    def _module_end(self, name: str, report: ModuleReport) -> None:
        module = self.ctx.config.modules[name]
        try:
            self.hooks.deployfw_module_end(ctx=self.ctx, module=module, status=report.status, error=report.error)
        except Exception as exc:
            self.events.emit(name, "report", f"warning: a module_end hook failed: {exc}")


def install_signal_handlers(cancel: threading.Event, events: EventLog) -> None:
    """First Ctrl-C/SIGTERM: stop cleanly (builds stopped, deployments rolled back). Second: exit now."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        name = signal.Signals(signum).name
        events.emit("deployfw", "cancel", f"{name}: stopping builds and rolling back deployments in progress")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
