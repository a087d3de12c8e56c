"""Drift: a module whose live state is not its last recorded deploy is not "up to date".

The state store says what deployfw last deployed; the deploy backend's optional
:class:`~deployfw.backends.Describes` ability says what runs now. When someone deployed by hand,
scaled a service onto another task definition, or deleted it, the two differ - and a run that
compared commits only would call the module up to date and leave it broken. So before a plan
calls a module up to date, the pipeline asks its deploy backend once (in parallel for many
modules) and compares the live task definition with the recorded one:

* the same: up to date, as before;
* different, or the service is gone: the module is drifted - ``run`` deploys it again (the head
  commit's image, usually reused by content tag) with the reason ``drift: ...``; with
  ``--drift report`` the plan only says so;
* a deployment in progress, a describe that fails, a backend without the ability, a record
  without a task definition: drift cannot be judged, and the plan says so once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from deployfw import redact
from deployfw.backends import BackendRegistry, Describes, ModuleJob, RunContext, backend_for
from deployfw.state import DeployRecord

DriftMode = Literal["deploy", "report"]
DRIFT_MODES: tuple[DriftMode, ...] = ("deploy", "report")
MAX_PARALLEL = 8  # describe calls in flight at once; each is one or two read-only API calls


@dataclass
class DriftFindings:
    """What the check found: drifted modules with their reason, and what could not be judged."""

    drifted: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def short(task_definition: str | None) -> str:
    """``family:revision`` of a task definition ARN (the whole value when it is not an ARN)."""
    return task_definition.rsplit("/", 1)[-1] if task_definition else "none"


def judge(recorded: str, live: Mapping[str, Any]) -> str | None:
    """The drift reason for one module, or None when what runs is what was recorded."""
    if live.get("exists") is False:
        where = "/".join(str(live[k]) for k in ("cluster", "service") if live.get(k)) or "the target"
        return f"drift: {where} does not exist (recorded task definition {short(recorded)})"
    running = live.get("task_definition")
    if running == recorded:
        return None
    return f"drift: live task definition {short(running)} is not the recorded {short(recorded)}"


def check_drift(
    ctx: RunContext,
    registry: BackendRegistry,
    records: Mapping[str, DeployRecord],
    names: Sequence[str],
) -> DriftFindings:
    """Describe every module of ``names`` (those a plan would call up to date) and judge it."""
    findings = DriftFindings()
    cannot: dict[str, list[str]] = {}
    work: list[tuple[str, Describes, str]] = []
    for name in names:
        module = ctx.config.modules[name]
        record = records.get(name)
        if module.deploy is None or record is None or not record.task_definition:
            continue
        deployer = backend_for(ctx, registry, "deploy", module.deploy.backend)
        if not isinstance(deployer, Describes):
            cannot.setdefault(module.deploy.backend, []).append(name)
            continue
        work.append((name, deployer, record.task_definition))
    for backend, modules in sorted(cannot.items()):
        findings.notes.append(
            f"drift cannot be checked for {', '.join(modules)}: deploy backend {backend!r} cannot describe what runs"
        )

    def describe(item: tuple[str, Describes, str]) -> tuple[str, str, Mapping[str, Any] | Exception]:
        name, deployer, recorded = item
        try:
            return name, recorded, deployer.describe(ModuleJob(ctx, ctx.config.modules[name], lambda _line: None))
        except Exception as exc:  # one module's trouble must not stop the plan
            return name, recorded, exc

    if not work:
        return findings
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(work)), thread_name_prefix="drift") as pool:
        answers = list(pool.map(describe, work))
    for name, recorded, live in answers:
        if isinstance(live, Exception):
            findings.notes.append(f"{name}: drift not checked: {redact.mask(f'{type(live).__name__}: {live}')}")
        elif live.get("in_progress"):
            findings.notes.append(f"{name}: a deployment is in progress; drift not judged")
        elif (reason := judge(recorded, live)) is not None:
            findings.drifted[name] = reason
    return findings
