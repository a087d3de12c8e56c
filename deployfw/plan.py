"""The plan: what ``run`` will do for each affected module, as plain data.

``plan``, ``run --dry-run`` and ``run`` share this one pipeline: detection -> plan ->
executor. The planner only reads (config, templates, the state store, git trees for
content tags, backend descriptions); it never changes anything, so a plan is safe to print
on any machine. Preflight findings are bad input (exit 2) and stop a run before anything
changes. Each stage carries the backend id and the resolved section it runs with, and each
module its content tag, so the executor works from the plan alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deployfw.backends import BackendRegistry, RunContext, backend_for
from deployfw.config import Config, Module
from deployfw.detect import Affected, Detection
from deployfw.errors import Problem
from deployfw.state.model import Pin

STOP_AFTER = ("build", "push", "deploy")
# The runner's stages, in order, and the config section whose backend runs each.
STAGE_SECTIONS = (("build", "build"), ("push", "registry"), ("deploy", "deploy"))


@dataclass(frozen=True)
class StagePlan:
    stage: str  # build | push | deploy
    section: str  # build | registry | deploy: whose backend runs the stage
    backend: str
    plugin: str
    steps: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # the resolved section, backend key excluded

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "backend": self.backend,
            "plugin": self.plugin,
            "steps": list(self.steps),
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class ModulePlan:
    name: str
    reasons: tuple[str, ...]
    after: tuple[str, ...]  # service modules of this plan that must deploy first
    stages: tuple[StagePlan, ...]
    base: str | None = None  # the commit this module's change is measured from
    content_tag: str | None = None  # the image tag its inputs at head hash to (reuse key)
    # section -> backend id for every section, also those of stages this run stops before
    # (``--stop-after push --artifacts-dir`` asks the deploy backend for its artifacts).
    backends: Mapping[str, str] = field(default_factory=dict)

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.stage == name), None)

    def backend_of(self, section: str) -> str:
        """The backend id of a section (``registry`` serves both build reuse and push)."""
        return self.backends[section]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "content_tag": self.content_tag,
            "reasons": list(self.reasons),
            "after": list(self.after),
            "stages": [s.to_json() for s in self.stages],
        }


@dataclass(frozen=True)
class Plan:
    env: str | None
    base: str | None
    head: str
    modules: tuple[ModulePlan, ...]  # dependency order
    libraries: tuple[str, ...]  # affected, propagated to dependents, never deployed
    stop_after: str = "deploy"
    findings: tuple[Problem, ...] = field(default=())
    up_to_date: tuple[tuple[str, str], ...] = ()  # (module, last deployed commit) not affected since
    notes: tuple[str, ...] = ()  # what the reader should know about how the plan was made
    warnings: tuple[str, ...] = ()  # what the reader must act on (a state store CI agents lose)
    pinned: Mapping[str, Pin] = field(default_factory=dict)  # affected, held back by a rollback pin
    releases: Mapping[str, Pin] = field(default_factory=dict)  # deployed over a pin, released on success

    @property
    def per_module_bases(self) -> bool:
        """Whether modules are measured from their own last deploys (the state store) rather than one base."""
        return bool(self.up_to_date) or any(m.base != self.base for m in self.modules)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "base": self.base,
            "head": self.head,
            "stop_after": self.stop_after,
            "modules": [m.to_json() for m in self.modules],
            "libraries": list(self.libraries),
            "up_to_date": [{"name": n, "deployed": c} for n, c in self.up_to_date],
            "findings": [str(p) for p in self.findings],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "pinned": [{"name": n, "reason": p.reason(), "pin": p.to_dict()} for n, p in self.pinned.items()],
            "releases": [{"name": n, "pin": p.to_dict()} for n, p in self.releases.items()],
        }

    def text(self, *, warnings: bool = True) -> str:
        """The display-only executor: what run would do, module by module.

        ``warnings=False`` for ``run``, which prints them on their own before it waits for locks.
        """
        if self.per_module_bases:
            base = "each module's last deploy"
            if self.base:
                base += f" (else {self.base[:12]})"
        else:
            base = self.base[:12] if self.base else "none (everything)"
        lines = [f"plan{' for ' + self.env if self.env else ''}: base {base} -> head {self.head[:12]}"]
        lines.extend(self.warnings if warnings else ())
        lines.extend(f"note: {note}" for note in self.notes)
        for name, commit in self.up_to_date:
            lines.append(f"{name}: up to date (deployed {commit[:12]}, nothing it depends on changed since)")
        for name, pin in self.pinned.items():
            lines.append(f"{name}: {pin.reason()} (holds commit {pin.commit[:12]}, unchanged since {pin.since[:12]})")
        for module in self.modules:
            lines.append(f"{module.name}: {'; '.join(module.reasons)}")
            if module.name in self.releases:
                pin = self.releases[module.name]
                lines.append(f"  pin:   released when this deploy succeeds (set by rollback {pin.run_id})")
            if self.per_module_bases:
                lines.append(f"  base:  {module.base[:12] if module.base else 'none (everything)'}")
            if module.after:
                lines.append(f"  after: {', '.join(module.after)}")
            for stage in module.stages:
                lines.append(f"  {stage.stage:<7}{stage.backend} ({stage.plugin})")
                lines.extend(f"           - {step}" for step in stage.steps)
        if self.libraries:
            lines.append(f"libraries affected (deployed through their dependents): {', '.join(self.libraries)}")
        if not self.modules:
            why = "every affected service module is pinned" if self.pinned else "no service module is affected"
            lines.append(f"nothing to deploy: {why}")
        return "\n".join(lines)


def make_plan(
    config: Config,
    detection: Detection,
    registry: BackendRegistry,
    ctx: RunContext,
    *,
    stop_after: str = "deploy",
    bases: Mapping[str, str] | None = None,
    up_to_date: tuple[tuple[str, str], ...] = (),
    content_tag: Callable[[Module], str] | None = None,
    notes: tuple[str, ...] = (),
) -> Plan:
    """Turn a detection into per-module stage plans, with every backend's preflight findings.

    ``content_tag`` computes a module's content tag (from the head commit's git tree); plans
    that never build (tests of the planner) may leave it out.
    """
    affected: dict[str, Affected] = {m.name: m for m in detection.modules}
    services = [n for n in config.order if n in affected and config.modules[n].is_service]
    libraries = tuple(n for n in config.order if n in affected and not config.modules[n].is_service)
    last = STOP_AFTER.index(stop_after)
    findings: list[Problem] = []
    modules = []
    for name in services:
        module = config.modules[name]
        stages = []
        for stage, section_name in STAGE_SECTIONS[: last + 1]:
            section = module.section(section_name)
            assert section is not None  # validated with the backend catalog
            backend = backend_for(ctx, registry, section_name, section.backend)  # type: ignore[call-overload]
            findings.extend(backend.preflight(module, config))
            spec = registry.get(section_name, section.backend)
            steps = tuple(backend.steps(module, config))
            stages.append(StagePlan(stage, section_name, section.backend, spec.plugin, steps, dict(section.options)))
        after = tuple(d for d in _service_dependencies(config, module) if d in affected)
        base = (bases or {}).get(name, detection.base)
        tag = content_tag(module) if content_tag is not None else None
        backends = {s: section.backend for s in ("build", "registry", "deploy") if (section := module.section(s))}
        modules.append(ModulePlan(name, affected[name].reasons, after, tuple(stages), base, tag, backends))
    return Plan(
        config.env,
        detection.base,
        detection.head,
        tuple(modules),
        libraries,
        stop_after,
        tuple(dict.fromkeys(findings)),
        up_to_date,
        notes,
    )


def _service_dependencies(config: Config, module: Module) -> Sequence[str]:
    """Service modules ``module`` depends on, transitively (through libraries too), in order."""
    seen: set[str] = set()
    stack = list(module.depends_on)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(config.modules[name].depends_on)
    return [n for n in config.order if n in seen and config.modules[n].is_service]
