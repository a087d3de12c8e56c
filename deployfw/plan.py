"""The plan: what ``run`` will do for each affected module, as plain data.

``plan``, ``run --dry-run`` and ``run`` share this one pipeline: detection ->
plan -> executor. The planner only reads (config, templates, backend
descriptions); it never calls AWS or Jenkins, so a plan is safe to print on any
machine. Preflight findings are bad input (exit 2) and stop a run before
anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deployfw.backends import BackendRegistry, RunContext
from deployfw.config import Config, Module
from deployfw.detect import Affected, Detection
from deployfw.errors import Problem

STOP_AFTER = ("build", "push", "deploy")
# The runner's stages, in order, and the config section whose backend runs each.
STAGE_SECTIONS = (("build", "build"), ("push", "registry"), ("deploy", "deploy"))


@dataclass(frozen=True)
class StagePlan:
    stage: str
    backend: str
    plugin: str
    steps: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "backend": self.backend, "plugin": self.plugin, "steps": list(self.steps)}


@dataclass(frozen=True)
class ModulePlan:
    name: str
    reasons: tuple[str, ...]
    after: tuple[str, ...]  # service modules of this plan that must deploy first
    stages: tuple[StagePlan, ...]
    base: str | None = None  # the commit this module's change is measured from

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
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
        }


def backend_for(ctx: RunContext, registry: BackendRegistry, stage: str, backend_id: str) -> Any:
    """The run's one instance of a backend (created by its plugin's factory on first use)."""
    spec = registry.get(stage, backend_id)
    return ctx.resource(f"backend:{stage}:{backend_id}", lambda: spec.factory(ctx))


def make_plan(
    config: Config,
    detection: Detection,
    registry: BackendRegistry,
    ctx: RunContext,
    *,
    stop_after: str = "deploy",
    bases: dict[str, str] | None = None,
    up_to_date: tuple[tuple[str, str], ...] = (),
) -> Plan:
    """Turn a detection into per-module stage plans, with every backend's preflight findings."""
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
            backend = backend_for(ctx, registry, section_name, section.backend)
            findings.extend(backend.preflight(module, config))
            spec = registry.get(section_name, section.backend)
            stages.append(StagePlan(stage, section.backend, spec.plugin, tuple(backend.steps(module, config))))
        after = tuple(d for d in _service_dependencies(config, module) if d in affected)
        base = (bases or {}).get(name, detection.base)
        modules.append(ModulePlan(name, affected[name].reasons, after, tuple(stages), base))
    return Plan(
        config.env,
        detection.base,
        detection.head,
        tuple(modules),
        libraries,
        stop_after,
        tuple(dict.fromkeys(findings)),
        up_to_date,
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
