"""``deployfw doctor``: the live account against modules.yaml, read-only, one row per check.

preflight checks what can be known without AWS; the doctor asks AWS, and changes nothing (only
Describe/Get/List calls and IAM policy simulation). For the environment asked for (or every one)
and every service module it runs the live checks its backends contribute (:class:`ChecksLive`:
cluster, service, deployment controller, CodeDeploy group and listeners, repository, build
project, Jenkins job...) and checks that the principal running deployfw may make every call the
backends declare (:mod:`deployfw.iam.simulate`). Each failed row carries its fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from deployfw.backends import STAGE_NAMES, BackendRegistry, ChecksLive, ModuleJob, RunContext, backend_for

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.iam.needs import IamNeed
    from deployfw.iam.simulate import Simulator
    from deployfw.session import Session


@dataclass(frozen=True)
class Row:
    env: str | None
    module: str | None
    check: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Findings:
    caller: str | None
    principal: str | None
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "caller": self.caller, "principal": self.principal,
                "rows": [row.to_json() for row in self.rows]}  # fmt: skip


def examine(session: Session, *, principal: str | None = None, every_env: bool = False) -> Findings:
    """Every check for the session's config: its environment (``-e``), or each of them with ``every_env``."""
    from deployfw.aws.clients import AwsError, aws_for
    from deployfw.context import make_context
    from deployfw.iam.policies import configs_for
    from deployfw.iam.simulate import Simulator, principal_of

    config = session.load_config()
    configs = configs_for(session, config, every_env=every_env and session.env is None)
    session.connect(config)
    registry = session.plugins.backends
    ctx = make_context(config, backends=registry)
    aws = aws_for(ctx)
    rows: list[Row] = []
    try:
        caller = str(aws.call("sts", "get_caller_identity")["Arn"])
    except AwsError as exc:
        rows.append(Row(None, None, "caller", False, f"no usable AWS credentials: {exc.detail}",
                        "export AWS credentials (or AWS_PROFILE) of the principal that runs deployfw"))  # fmt: skip
        return Findings(None, None, tuple(rows))
    rows.append(Row(None, None, "caller", True, f"AWS answers as {caller}"))
    who = principal or principal_of(caller)
    simulator = Simulator(aws, who) if who else None
    account = caller.split(":")[4]
    for each in configs:
        env_ctx = make_context(each, backends=registry)
        env_ctx._resources["aws"] = aws  # one AWS boundary (and answer cache) for every environment
        rows += _live_rows(each, registry, env_ctx)
        rows += _iam_rows(each, registry, env_ctx, account, simulator, who)
    return Findings(caller, who, tuple(rows))


def _live_rows(config: Config, registry: BackendRegistry, ctx: RunContext) -> list[Row]:
    rows: list[Row] = []
    for module in sorted(config.modules.values(), key=lambda m: m.name):
        if not module.is_service:
            continue
        seen: set[int] = set()
        for stage in STAGE_NAMES:
            section = module.section(stage)
            if section is None:
                continue
            backend = _any_stage(ctx, registry, stage, section.backend)
            if not isinstance(backend, ChecksLive) or (id(backend) in seen and stage != "deploy"):
                continue
            seen.add(id(backend))
            try:
                checks = backend.live_checks(ModuleJob(ctx, module, lambda _line: None))
            except Exception as exc:  # a backend's check must not hide the others
                rows.append(Row(config.env, module.name, f"{stage}.{section.backend}", False,
                                f"the check failed: {type(exc).__name__}: {exc}"))  # fmt: skip
                continue
            rows += [Row(config.env, module.name, c.check, c.ok, c.detail, c.fix) for c in checks]
    return rows


def _iam_rows(
    config: Config,
    registry: BackendRegistry,
    ctx: RunContext,
    account: str,
    simulator: Simulator | None,
    principal: str | None,
) -> list[Row]:
    from deployfw.aws.clients import AwsError
    from deployfw.iam.collect import collect
    from deployfw.iam.needs import wanted

    if simulator is None:
        return [Row(config.env, None, "iam", True, "the account's root user may do everything (run deployfw as a "
                    "least-privilege role: `deployfw iam policy`)")]  # fmt: skip
    by_module: dict[str | None, list[IamNeed]] = {}
    for item in collect([config], registry, ctx, account=account, region=ctx.region):
        if item.need.principal == "ci" and wanted(item.need):
            by_module.setdefault(item.module, []).append(item.need)
    rows: list[Row] = []
    for module, needs in sorted(by_module.items(), key=lambda kv: kv[0] or ""):
        refused: list[tuple[IamNeed, list[Any]]] = []
        try:
            for need in needs:
                denied = simulator.refused(need)
                if denied:
                    refused.append((need, denied))
        except AwsError as exc:
            fix = (f"allow iam:SimulatePrincipalPolicy on {principal} to whoever runs `deployfw doctor`"
                   if exc.denial else None)  # fmt: skip
            rows.append(Row(config.env, module, "iam", False, f"cannot simulate {principal}'s policies: {exc.detail}",
                            fix))  # fmt: skip
            continue
        actions = sorted({a for need in needs for a in need.actions})
        if not refused:
            rows.append(Row(config.env, module, "iam", True, f"{principal} may make every call deployfw makes "
                            f"({len(actions)} actions)"))  # fmt: skip
            continue
        what = "; ".join(f"{r.action} on {r.resource}" for _, denied in refused for r in denied)
        statements = [_statement(need, denied) for need, denied in refused]
        rows.append(Row(config.env, module, "iam", False, f"{principal} may not: {what}",
                        "add to its policy: " + " ".join(json.dumps(s) for s in statements)))  # fmt: skip
    return rows


def _statement(need: IamNeed, denied: list[Any]) -> dict[str, Any]:
    """The declared statement, narrowed to what was refused."""
    actions = sorted({r.action for r in denied})
    resources = sorted({r.resource for r in denied if r.resource != "*"}) or list(need.resources)
    statement: dict[str, Any] = {"Sid": need.sid, "Effect": "Allow",
                                 "Action": actions[0] if len(actions) == 1 else actions,
                                 "Resource": resources[0] if len(resources) == 1 else resources}  # fmt: skip
    if need.conditions:
        statement["Condition"] = {op: dict(values) for op, values in need.conditions.items()}
    return statement


# ``backend_for`` is overloaded per stage literal; here the stage is a loop variable.
_any_stage: Callable[[RunContext, BackendRegistry, str, str], object] = backend_for  # type: ignore[assignment]


def text(findings: Findings) -> str:
    """One line per check (OK/FAIL, environment, module, check, detail), each failure's fix under it."""
    lines = []
    for row in findings.rows:
        where = "/".join(filter(None, (row.env or "-", row.module or "-")))
        lines.append(f"{'ok  ' if row.ok else 'FAIL'}  {where:<24} {row.check:<22} {row.detail}")
        if not row.ok and row.fix:
            lines.append(f"      fix: {row.fix}")
    failed = sum(not row.ok for row in findings.rows)
    lines.append(f"{len(findings.rows)} checks, {failed} failed" if failed else f"{len(findings.rows)} checks passed")
    return "\n".join(lines)
