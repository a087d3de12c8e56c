"""From a JSON run report to what the page shows: words, links, lanes.

The template only lays these out; every fact on the page is computed here from
the report and nothing else, so a field the report lacks is a line the page
leaves out, never a guess. Text is plain (the template escapes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployfw.report_html.links import Link, Repository, build_links, deploy_links
from deployfw.report_html.timeline import Lane, Scale, lane, parse_time, run_scale, seconds_text

STAGE_SYMBOLS = {"succeeded": "✓", "failed": "✗", "skipped": "-"}
# Detail keys shown first, in this order; the rest follow alphabetically.
BUILD_ORDER = ("backend", "reused", "status", "result", "project", "build_id", "number", "url", "content_tag", "digest")
DEPLOY_ORDER = (
    "backend", "id", "status", "rolled_back", "rollback_deployment_id", "rollback_state", "deployment_config",
    "application", "deployment_group", "cluster", "service", "task_definition", "previous_task_definition",
)  # fmt: skip
HIDDEN_DETAILS = ("instances", "logs", "url")  # shown on their own (a table, links)


@dataclass(frozen=True)
class Moment:
    """One line of a module's timeline as text: when, in which stage, what."""

    at: str  # ISO time, for <time datetime>
    offset: str  # "+12.3 s" from the run's start
    stage: str
    text: str
    css: str


@dataclass(frozen=True)
class Fact:
    term: str
    value: Any  # str | bool | number | list | dict: the template renders each kind


@dataclass
class Failure:
    stage: str | None
    error: str
    log_tail: list[str]
    rollback: str | None  # one sentence, or None where no deployment was touched
    rollback_css: str


@dataclass
class ModuleView:
    name: str
    status: str
    outcome: str  # "succeeded", "failed - rolled back", "skipped: dependency order-api failed"
    reason: str
    stages: list[tuple[str, str, str]]  # (stage, status, "2.7 s" or "")
    duration: str
    deployment: str | None
    links: list[Link]
    lane: Lane | None
    moments: list[Moment]
    build: list[Fact]
    deploy: list[Fact]
    instances: list[Mapping[str, Any]]
    image: str | None
    failure: Failure | None
    after: list[str] = field(default_factory=list)


@dataclass
class PageView:
    title: str
    status: str
    run_id: str
    env: str | None
    base: str | None
    head: str
    commits: Link | None
    base_link: Link | None
    head_link: Link | None
    repository: Link | None
    duration: str
    started: str | None
    ended: str | None
    ci: Link | None
    region: str | None
    endpoint: str | None
    counts: str
    modules: list[ModuleView]
    axis: list[str]
    has_timing: bool

    @property
    def failures(self) -> list[ModuleView]:
        return [m for m in self.modules if m.failure is not None]


def describe(mark: Mapping[str, Any]) -> str:
    """A timeline mark in words (the lanes' tooltips and the text list say the same)."""
    kind = str(mark.get("kind"))
    fields = {k: v for k, v in mark.items() if k not in ("at", "stage", "kind")}
    if kind == "status":
        return f"deployment {fields.get('status')}"
    if kind == "traffic":
        split = f" ({fields['split']})" if fields.get("split") else ""
        return f"traffic: {fields.get('percent')}% on the replacement{split}"
    if kind == "rollout":
        counts = ", ".join(f"{k} {fields[k]}" for k in ("running", "pending", "failed") if k in fields)
        return f"rollout {fields.get('state')}" + (f": {counts}" if counts else "")
    if kind == "rollback":
        return "rollback started" + (f": {fields['reason']}" if fields.get("reason") else "")
    if kind == "rolled_back":
        by = f" by {fields['by']}" if fields.get("by") else ""
        return f"rolled back{by}" + (f" (deployment {fields['deployment']})" if fields.get("deployment") else "")
    if kind == "rollback_failed":
        return "rollback failed" + (f" (deployment {fields['deployment']})" if fields.get("deployment") else "")
    if kind == "waited" and isinstance(fields.get("seconds"), int | float):
        reason = f" for {fields['reason']}" if fields.get("reason") else ""
        return f"waited {seconds_text(float(fields['seconds']))}{reason}"
    if kind == "instance":
        event = f" at {fields['event']}" if fields.get("event") else ""
        return f"instance {fields.get('id')}: {fields.get('status')}{event}"
    rest = ", ".join(f"{k}={v}" for k, v in fields.items())
    return f"{kind}: {rest}" if rest else kind


def page(report: Mapping[str, Any]) -> PageView:
    status = str(report.get("status") or "unknown")
    region = report.get("region") if isinstance(report.get("region"), str) else None
    endpoint = report.get("aws_endpoint") if isinstance(report.get("aws_endpoint"), str) else None
    real_aws = endpoint is None
    repo = Repository(report["repository_url"]) if isinstance(report.get("repository_url"), str) else None
    base, head = report.get("base"), str(report.get("head") or "")
    scale = run_scale(report)
    run_start = parse_time(report.get("started_at")) or (scale.start if scale else None)
    modules = [_module(m, scale, run_start, region, real_aws) for m in report.get("modules") or []]
    seconds = report.get("seconds")
    if not isinstance(seconds, int | float) and scale is not None:
        seconds = scale.span
    env = report.get("env")
    title = f"deployfw run {report.get('run_id') or ''}: {status}" + (f" ({env})" if env else "")
    return PageView(
        title=title.replace("  ", " "),
        status=status,
        run_id=str(report.get("run_id") or ""),
        env=env if isinstance(env, str) else None,
        base=base if isinstance(base, str) else None,
        head=head,
        commits=repo.compare(base, head) if repo and isinstance(base, str) and head else None,
        base_link=repo.commit(base) if repo and isinstance(base, str) else None,
        head_link=repo.commit(head) if repo and head else None,
        repository=repo.home() if repo else None,
        duration=seconds_text(float(seconds)) if isinstance(seconds, int | float) else "unknown",
        started=report.get("started_at") if isinstance(report.get("started_at"), str) else None,
        ended=report.get("ended_at") if isinstance(report.get("ended_at"), str) else None,
        ci=Link("CI build", report["ci_url"]) if _web(report.get("ci_url")) else None,
        region=region,
        endpoint=endpoint,
        counts=_counts(modules),
        modules=modules,
        axis=scale.axis() if scale else [],
        has_timing=scale is not None,
    )


def _web(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _counts(modules: list[ModuleView]) -> str:
    if not modules:
        return "no module was selected: nothing to deploy"
    tally: dict[str, int] = {}
    for module in modules:
        tally[module.status] = tally.get(module.status, 0) + 1
    parts = [f"{tally[s]} {s}" for s in ("succeeded", "failed", "skipped") if s in tally]
    parts += [f"{n} {s}" for s, n in tally.items() if s not in ("succeeded", "failed", "skipped")]
    noun = "module" if len(modules) == 1 else "modules"
    return f"{len(modules)} {noun}: " + ", ".join(parts)


def _module(
    module: Mapping[str, Any], scale: Scale | None, run_start: float | None, region: str | None, real_aws: bool
) -> ModuleView:
    name = str(module.get("name"))
    status = str(module.get("status") or "unknown")
    build = _mapping(module.get("build"))
    deploy = _mapping(module.get("deploy"))
    stages: list[Mapping[str, Any]] = [s for s in module.get("stages") or [] if isinstance(s, dict)]
    rolled_back = bool(deploy.get("rolled_back"))
    outcome = status
    if status == "failed" and rolled_back:
        outcome = "failed - rolled back"
    elif status == "skipped" and module.get("error"):
        outcome = f"skipped: {module['error']}"
    begun, ended = parse_time(module.get("started_at")), parse_time(module.get("ended_at"))
    seconds = sum(float(s.get("seconds") or 0) for s in stages)
    duration = seconds_text(ended - begun) if begun is not None and ended is not None else seconds_text(seconds)
    instances: list[Mapping[str, Any]] = [i for i in deploy.get("instances") or [] if isinstance(i, dict)]
    return ModuleView(
        name=name,
        status=status,
        outcome=outcome,
        reason=str(module.get("reason") or ""),
        stages=[(str(s.get("stage")), str(s.get("status")), _stage_time(s)) for s in stages],
        duration=duration if stages else "",
        deployment=str(deploy["id"]) if deploy.get("id") else None,
        links=build_links(build, region, real_aws) + deploy_links(deploy, region, real_aws),
        lane=lane(module, scale, run_start, describe) if scale is not None else None,
        moments=_moments(module, scale),
        build=_facts(build, BUILD_ORDER),
        deploy=_facts(deploy, DEPLOY_ORDER),
        instances=instances,
        image=module.get("image") if isinstance(module.get("image"), str) else None,
        failure=_failure(module, stages, deploy) if status == "failed" else None,
        after=[str(a) for a in module.get("after") or []],
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _stage_time(stage: Mapping[str, Any]) -> str:
    """How long a stage ran; nothing for a stage that never started."""
    seconds = stage.get("seconds")
    if stage.get("status") == "skipped" or not isinstance(seconds, int | float):
        return ""
    return seconds_text(float(seconds))


def _moments(module: Mapping[str, Any], scale: Scale | None) -> list[Moment]:
    if scale is None:
        return []
    found: list[tuple[float, int, Moment]] = []

    def add(at_text: Any, stage: str, text: str, css: str) -> None:
        at = parse_time(at_text)
        if at is not None:
            found.append((at, len(found), Moment(str(at_text), scale.offset(at), stage, text, css)))

    add(module.get("started_at"), "", "started", "module")
    for stage in module.get("stages") or []:
        name = str(stage.get("stage"))
        add(stage.get("started_at"), name, "started", "stage")
        status = str(stage.get("status"))
        add(stage.get("ended_at"), name, f"{status} after {seconds_text(float(stage.get('seconds') or 0))}", status)
    for mark in module.get("timeline") or []:
        add(mark.get("at"), str(mark.get("stage") or ""), describe(mark), f"mark {mark.get('kind')}")
    add(module.get("ended_at"), "", f"finished: {module.get('status')}", "module")
    return [m for _, _, m in sorted(found, key=lambda f: (f[0], f[1]))]


def _facts(section: Mapping[str, Any], order: tuple[str, ...]) -> list[Fact]:
    keys = [k for k in order if k in section] + sorted(k for k in section if k not in order)
    return [
        Fact(k.replace("_", " "), section[k])
        for k in keys
        if k not in HIDDEN_DETAILS and section[k] is not None and section[k] != [] and section[k] != {}
    ]


def _failure(module: Mapping[str, Any], stages: list[Mapping[str, Any]], deploy: Mapping[str, Any]) -> Failure:
    failed = next((s for s in stages if s.get("status") == "failed"), None)
    stage = str(failed.get("stage")) if failed else None
    error = str((failed or {}).get("error") or module.get("error") or "failed (no message in the report)")
    tail = [str(line) for line in (failed or {}).get("log_tail") or []]
    rollback: str | None = None
    css = ""
    if deploy.get("rolled_back"):
        parts = ["Rolled back"]
        if deploy.get("rollback_deployment_id"):
            parts.append(f"by deployment {deploy['rollback_deployment_id']}")
        if deploy.get("rollback_state"):
            parts.append(f"({deploy['rollback_state']})")
        rollback, css = " ".join(parts) + ".", "rolled-back"
    elif stage == "deploy":
        rollback, css = "No rollback is reported for this deployment.", "no-rollback"
    elif stage in ("build", "push"):
        rollback = f"Nothing was deployed: the {stage} stage failed before the deploy stage."
    return Failure(stage, error, tail, rollback, css)
