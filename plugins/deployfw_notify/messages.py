"""What each event says, independent of where it goes: a title, a few lines, facts and a link.

Built from what the lifecycle hooks hand over and nothing else. Every target's
payload (:mod:`deployfw_notify.payloads`) is laid out from one :class:`Message`, so
Slack, Teams, Chime, SNS and a JSON webhook tell the same story.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployfw.backends import RunContext, StageResult

MAX_ERROR = 600  # characters of an error a chat message shows


@dataclass(frozen=True)
class Message:
    event: str  # run_start | run_end | module_failed | rolled_back
    status: str  # started | succeeded | failed | rolled_back
    title: str
    text: str
    facts: tuple[tuple[str, str], ...] = ()
    link: str | None = None  # the CI build, where known
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable fields for JSON targets


def _where(ctx: RunContext) -> str:
    project = ctx.config.project or ctx.config.root.name
    return f"{project} ({ctx.config.env})" if ctx.config.env else project


def _base(ctx: RunContext, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "run_id": ctx.run_id,
        "project": ctx.config.project,
        "env": ctx.config.env,
        "head": ctx.head,
        "ci_url": ctx.ci_url,
    }


def _cut(text: str, limit: int = MAX_ERROR) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_start(ctx: RunContext, modules: Sequence[str]) -> Message:
    noun = "module" if len(modules) == 1 else "modules"
    return Message(
        "run_start",
        "started",
        f"{_where(ctx)}: deploying {len(modules)} {noun}",
        f"{', '.join(modules) or 'nothing'} at {ctx.head[:12]}",
        (("run", ctx.run_id), ("commit", ctx.head[:12])),
        ctx.ci_url,
        {**_base(ctx, "run_start"), "modules": list(modules)},
    )


def module_failed(ctx: RunContext, module: str, error: str | None) -> Message:
    return Message(
        "module_failed",
        "failed",
        f"{_where(ctx)}: {module} failed",
        _cut(error or "failed (no message)"),
        (("module", module), ("run", ctx.run_id), ("commit", ctx.head[:12])),
        ctx.ci_url,
        {**_base(ctx, "module_failed"), "module": module, "status": "failed", "error": error},
    )


def rolled_back(ctx: RunContext, module: str, result: StageResult) -> Message:
    details = result.details
    rollback = details.get("rollback_deployment_id")
    facts = [("module", module), ("deployment", str(details.get("id") or "-"))]
    if rollback:
        facts.append(("rollback", str(rollback)))
    return Message(
        "rolled_back",
        "rolled_back",
        f"{_where(ctx)}: {module} was rolled back",
        _cut(result.error or "the deployment was rolled back"),
        (*facts, ("run", ctx.run_id)),
        ctx.ci_url,
        {
            **_base(ctx, "rolled_back"),
            "module": module,
            "deployment_id": details.get("id"),
            "rollback_deployment_id": rollback,
            "error": result.error,
        },
    )


def run_end(ctx: RunContext, report: Mapping[str, Any]) -> Message:
    modules = [m for m in report.get("modules") or [] if isinstance(m, Mapping)]
    status = str(report.get("status") or "unknown")
    tally: dict[str, list[str]] = {}
    for module in modules:
        tally.setdefault(str(module.get("status")), []).append(str(module.get("name")))
    seconds = report.get("seconds")
    took = f" in {float(seconds):.1f} s" if isinstance(seconds, int | float) else ""
    failed = tally.get("failed", [])
    title = f"{_where(ctx)}: run {status}{took}"
    if failed:
        title += f": {', '.join(failed)} failed"
    lines = [f"{len(names)} {state}: {', '.join(names)}" for state, names in sorted(tally.items())]
    return Message(
        "run_end",
        status,
        title,
        "\n".join(lines) or "nothing was deployed",
        (("run", ctx.run_id), ("commit", ctx.head[:12]), *((s, str(len(n))) for s, n in sorted(tally.items()))),
        ctx.ci_url,
        {**_base(ctx, "run_end"), "status": status, "report": dict(report)},
    )
