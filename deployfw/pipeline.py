"""The one pipeline behind ``plan``, ``run --dry-run`` and ``run``.

config -> connect (the front end may start a sandbox) -> commits -> state store -> detection
-> plan. Only the executor that consumes the plan differs between the commands: ``plan`` and
``--dry-run`` read the state store without writing to it and print; ``run`` takes locks and
executes. Both therefore see the same per-module bases and make the same selection, so what
``plan`` prints is exactly what ``run`` will do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from deployfw.backends import RunContext
from deployfw.builds.content import ContentTagger
from deployfw.ci import CIContext, detect_ci
from deployfw.config import Config
from deployfw.context import make_context
from deployfw.detect import Affected, Detection, detect
from deployfw.errors import DeployfwError, InputError
from deployfw.gitrepo import GitRepo
from deployfw.pins import PinSelection, apply_pins
from deployfw.plan import Plan, make_plan
from deployfw.revisions import range_from, resolve_commit, resolve_range
from deployfw.runstate import RunState
from deployfw.session import Session
from deployfw.state import DeployRecord

StateUse = Literal["write", "read"]


@dataclass
class Prepared:
    config: Config
    ci: CIContext
    detection: Detection
    plan: Plan
    ctx: RunContext
    state: RunState | None = None


def prepare(
    session: Session,
    *,
    base: str | None,
    head: str | None,
    select_all: bool,
    modules: Sequence[str],
    stop_after: str = "deploy",
    state: StateUse = "read",
    unpin: bool = False,
) -> Prepared:
    """Config, commits, state, detection and plan.

    ``state="write"`` (run) opens the store to record deploys; ``"read"`` (plan, dry run)
    only reads it, and when it cannot be read (no credentials, no table yet) the plan says so
    and falls back to the CI variables. Either way each module's change is measured from its
    last successful deploy (unless ``--base``/``--all``/``-m`` say otherwise), so a failed or
    skipped module is picked up again by the next run and nothing is missed between runs.
    Rollback pins then hold modules back (see :mod:`deployfw.pins`; ``unpin`` with ``-m``
    deploys the named modules over their pins).
    """
    config = session.load_config()
    session.connect(config)
    ci = detect_ci(os.environ)
    repo = GitRepo(config.root)
    rng = resolve_range(repo, ci, base, head)
    detection = detect(config, repo, rng, select_all=select_all, names=modules)
    ctx = make_context(
        config, head=detection.head, ci_url=ci.build_url, repository_url=ci.repository_url,
        backends=session.plugins.backends,
    )
    opened: RunState | None = None
    bases: dict[str, str] = {}
    up_to_date: tuple[tuple[str, str], ...] = ()
    notes: list[str] = []
    pins = PinSelection(detection)
    warning: str | None = None
    try:
        opened = RunState.for_command(session.plugins, ctx, ci, read_only=state == "read")
        warning = opened.placement.warning if opened.placement is not None else None
        fallback = detection
        if not (base or select_all or modules):
            services = [n for n in config.order if config.modules[n].is_service]
            records = opened.last_successes(services)
            attempts = opened.latest_attempts(n for n in services if n not in records)
            fallback, bases, up_to_date = since_last_deploys(config, repo, detection, records, attempts)
        pins = apply_pins(config, repo, fallback, opened.pins(), opened.void_reason, explicit=modules, unpin=unpin)
    except InputError:
        raise
    except DeployfwError as exc:
        if state == "write":
            raise
        opened, bases, up_to_date = None, {}, ()
        notes.append(f"state store not read ({exc}); bases from flags or CI variables only")
    else:
        detection = pins.detection
        opened.releasing = dict(pins.releasing)
        notes.extend(pins.notes)
        up_to_date = tuple((n, c) for n, c in up_to_date if n not in pins.held)
    tagger = ContentTagger(config, detection.head, repo)
    plan = make_plan(
        config,
        detection,
        session.plugins.backends,
        ctx,
        stop_after=stop_after,
        bases=bases,
        up_to_date=up_to_date,
        content_tag=tagger.tag,
        notes=tuple(notes),
    )
    plan = dataclasses.replace(
        plan,
        findings=plan.findings + tuple(pins.findings),
        warnings=(warning,) if warning else (),
        pinned=pins.held,
        releases={n: p for n, p in pins.releasing.items() if any(m.name == n for m in plan.modules)},
    )
    return Prepared(config, ci, detection, plan, ctx, opened if state == "write" else None)


def since_last_deploys(
    config: Config,
    repo: GitRepo,
    fallback: Detection,
    records: Mapping[str, DeployRecord],
    attempts: Mapping[str, DeployRecord] | None = None,
) -> tuple[Detection, dict[str, str], tuple[tuple[str, str], ...]]:
    """Re-detect every module that has a recorded deploy from that deploy's commit.

    A module with ``attempts`` but no successful deploy (its first deploy failed) is affected: the
    CI variables would measure it from the last build, which it never made it out of. Modules
    without any record keep the answer of ``fallback`` (CI variables, or everything). Modules
    sharing a last-deployed commit share one detection.
    """
    affected: dict[str, Affected] = {m.name: m for m in fallback.modules if m.name not in records}
    for name, attempt in (attempts or {}).items():
        why = f"no successful deploy yet: last attempt {attempt.outcome} (run {attempt.run_id})"
        affected[name] = Affected(name, config.modules[name].kind, (why,))
    bases: dict[str, str] = {}
    up_to_date: list[tuple[str, str]] = []
    groups: dict[str, list[str]] = {}
    for name, record in records.items():
        groups.setdefault(record.commit, []).append(name)
    for commit, names in groups.items():
        sha = resolve_commit(repo, commit)
        if sha is None:
            for name in names:
                reason = f"no base: last deployed commit {commit[:12]} is not in this clone"
                affected[name] = Affected(name, config.modules[name].kind, (reason,))
            continue
        found = {m.name: m for m in detect(config, repo, range_from(repo, sha, fallback.head)).modules}
        for name in names:
            bases[name] = sha
            if name in found:
                reasons = tuple(f"since deploy {sha[:12]}: {r}" for r in found[name].reasons)
                affected[name] = Affected(name, found[name].kind, reasons)
            else:
                up_to_date.append((name, sha))
        for name, module in found.items():  # libraries, for the plan's "libraries affected" line
            if not config.modules[name].is_service:
                affected.setdefault(name, module)
    detection = Detection(
        fallback.base,
        fallback.head,
        fallback.merge_base,
        tuple(sorted(affected.values(), key=lambda m: m.name)),
        fallback.unowned,
        fallback.changed,
    )
    return detection, bases, tuple(sorted(up_to_date))
