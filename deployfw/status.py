"""``deployfw status``: what is deployed where, from the state store and from live AWS.

The store says what deployfw *believes* it deployed (the last successful deploy of
each service module, the last attempt when it differs, a deploy still in flight,
who holds the lock); the module's deploy backend says what *runs* (its optional
``describe(job) -> dict``). Putting both side by side is the point: a service whose
live task definition is not the recorded one has drifted - someone deployed by
hand, a rollback happened outside deployfw, or a killed run's deployment is still
unaccounted for - and the next ``run`` compares from the recorded commit only.

Every module is described independently: a backend that fails or is missing gives
that module an ``error``/``unknown`` state, never a crash of the whole command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deployfw import redact
from deployfw.backends import DeployBackend, Describes, ModuleJob, RunContext, backend_for
from deployfw.config import Config, Module
from deployfw.context import make_context
from deployfw.runstate import RunState
from deployfw.session import Session
from deployfw.state import DeployRecord, LockInfo, Pin

HISTORY_LIMIT = 50


@dataclass
class Opened:
    """What a state command (status, rollback) works with: config, a run context, the store and scope."""

    session: Session
    config: Config
    ctx: RunContext
    state: RunState

    def deployer(self, module: Module) -> DeployBackend:
        assert module.deploy is not None
        return backend_for(self.ctx, self.session.plugins.backends, "deploy", module.deploy.backend)

    def job(self, module: Module, log: Callable[[str], None] = lambda _line: None) -> ModuleJob:
        return ModuleJob(self.ctx, module, log)


def open_command(session: Session, config: Config, *, head: str = "", run_id: str | None = None) -> Opened:
    """Connect (the CLI may start a sandbox), and open the store in the scope ``run`` would use.

    ``run_id`` defaults to a fresh one: a command that records something (rollback) is a run of its own.
    """
    import os

    from deployfw.ci import detect_ci

    session.connect(config)
    ctx = make_context(config, head=head, run_id=run_id, backends=session.plugins.backends)
    return Opened(session, config, ctx, RunState.for_command(session.plugins, ctx, detect_ci(os.environ)))


def _lock(info: LockInfo | None, now: float) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "run_id": info.run_id,
        "expires_at": datetime.fromtimestamp(info.expires_at, UTC).isoformat(timespec="seconds"),
        "expired": info.expired(now),
    }


def _record(record: DeployRecord | None) -> dict[str, Any] | None:
    return record.to_dict() if record is not None else None


def _pin(opened: Opened, pin: Pin | None) -> dict[str, Any] | None:
    """A rollback pin as ``status`` shows it: the pin, and why it does not hold when it does not."""
    if pin is None:
        return None
    void = opened.state.void_reason(pin)
    return {**pin.to_dict(), "reason": pin.reason(), "holds": void is None, "void": void}


def module_status(opened: Opened, module: Module, *, live: bool = True, pin: Pin | None = None) -> dict[str, Any]:
    """One module's recorded and live state, as plain data (the ``--json`` form)."""
    store, scope = opened.state.store, opened.state.scope
    history = store.history(scope, module.name, limit=HISTORY_LIMIT)
    success = next((r for r in history if r.outcome == "succeeded"), None)
    finished = next((r for r in history if r.finished), None)
    attempt = finished if finished is not None and (success is None or finished.run_id != success.run_id) else None
    started = next((r for r in history if r.outcome == "started"), None)
    lock = store.lock_info(scope, module.name)
    now = datetime.now(UTC).timestamp()
    in_flight: dict[str, Any] | None = None
    if started is not None:
        holder_alive = lock is not None and not lock.expired(now) and lock.run_id == started.run_id
        in_flight = {**started.to_dict(), "running": holder_alive}
    out: dict[str, Any] = {
        "name": module.name,
        "backend": module.deploy.backend if module.deploy else None,
        "last_success": _record(success),
        "last_attempt": _record(attempt),
        "in_flight": in_flight,
        "lock": _lock(lock, now),
        "pin": _pin(opened, pin),
        "live": None,
        "drift": None,
        "state": "never deployed" if success is None else "recorded",
    }
    if not live:
        return out
    deployer = opened.deployer(module) if module.deploy else None
    if not isinstance(deployer, Describes):
        out["state"] = "unknown"
        out["live"] = {"error": "the deploy backend cannot describe what runs"}
        return out
    try:
        out["live"] = dict(deployer.describe(opened.job(module)))
    except Exception as exc:  # one module's AWS trouble must not hide the others
        out["state"] = "unknown"
        out["live"] = {"error": redact.mask(f"{type(exc).__name__}: {exc}")}
        return out
    running = (out["live"] or {}).get("task_definition")
    if in_flight is not None or (out["live"] or {}).get("in_progress"):
        out["state"] = "deploying"
    if success is not None and success.task_definition:
        out["drift"] = running != success.task_definition
        if out["state"] != "deploying":
            out["state"] = "drift" if out["drift"] else "in sync"
    elif out["state"] != "deploying":
        out["state"] = "not deployed by deployfw" if running else "never deployed"
    return out


def status(opened: Opened, *, live: bool = True) -> dict[str, Any]:
    """Every service module of the config that has a deploy section, sorted by name (as ``detect --json``)."""
    scope = opened.state.scope
    pins = opened.state.pins()
    modules = [
        module_status(opened, module, live=live, pin=pins.get(module.name))
        for _, module in sorted(opened.config.modules.items())
        if module.is_service and module.deploy is not None
    ]
    return {
        "env": opened.config.env,
        "scope": {"account": scope.account, "region": scope.region, "env": scope.env},
        "modules": modules,
    }


# -- text ------------------------------------------------------------------------------------


def _short(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "-"


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") + " UTC" if value else "-"


def status_text(data: dict[str, Any]) -> str:
    """A table a person reads at a glance, with one indented line per thing that needs attention."""
    scope = data["scope"]
    lines = [f"scope: account {scope['account']}, region {scope['region']}, env {scope['env']}"]
    header = ("MODULE", "COMMIT", "DEPLOYED AT", "RUN", "TASK DEFINITION", "LIVE", "STATE")
    rows = [header]
    notes: dict[str, list[str]] = {}
    for module in data["modules"]:
        success = module["last_success"] or {}
        live = module["live"] or {}
        rows.append(
            (
                module["name"],
                (success.get("commit") or "-")[:12],
                _when(success.get("ended_at") or success.get("started_at")),
                success.get("run_id") or "-",
                _short(success.get("task_definition")),
                _short(live.get("task_definition")) if "error" not in live else "?",
                module["state"],
            )
        )
        notes[module["name"]] = _notes(module)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        for note in notes.get(row[0], []) if row is not header else []:
            lines.append(f"  - {note}")
    return "\n".join(lines)


def _notes(module: dict[str, Any]) -> list[str]:
    out = []
    success, attempt, flight, lock = module["last_success"], module["last_attempt"], module["in_flight"], module["lock"]
    live = module["live"] or {}
    if success and success.get("image_uri"):
        out.append(f"image {success['image_uri']}")
    if success and (success.get("extra") or {}).get("rollback_of"):
        out.append(f"a rollback of run {success['extra']['rollback_of']}")
    if attempt:
        error = f": {attempt['error']}" if attempt.get("error") else ""
        out.append(
            f"last attempt {attempt['outcome']} (run {attempt['run_id']}, commit {attempt['commit'][:12]}, "
            f"{_when(attempt.get('ended_at') or attempt.get('started_at'))}){error}"
        )
    if flight:
        pinned = module.get("pin") and module["pin"]["holds"]
        who = f"`run -m {module['name']} --unpin` or a rollback" if pinned else "the next run"
        what = "running" if flight["running"] else f"left in flight by a run that ended ({who} concludes it)"
        deployment = f" deployment {flight['deployment_id']}" if flight.get("deployment_id") else ""
        out.append(f"in flight:{deployment} of commit {flight['commit'][:12]} by run {flight['run_id']}, {what}")
    if lock and not lock["expired"]:
        out.append(f"locked by run {lock['run_id']} until {lock['expires_at']}")
    pin = module.get("pin")
    if pin and pin["holds"]:
        out.append(f"{pin['reason']} (holds commit {pin['commit'][:12]}, {_short(pin.get('task_definition'))})")
    elif pin:
        out.append(f"pin of rollback {pin['run_id']} does not hold ({pin['void']}); the next run deploys as usual")
    if "error" in live:
        out.append(f"live state unknown: {live['error']}")
    elif live.get("exists") is False:
        out.append(f"service {live.get('cluster')}/{live.get('service')} does not exist")
    elif module["drift"]:
        out.append(f"live task definition {live.get('task_definition')} is not the recorded one")
    return out


# -- state init / show -------------------------------------------------------------------------


def init_store(session: Session) -> str:
    """Create the configured store and say what exists now; idempotent ("already exists" is success).

    DynamoDB: the table (through the AWS boundary, waiting until ACTIVE), in the region of the
    ``state:`` section or the deploy region. sqlite: the file and its folder. Any store that
    offers :class:`~deployfw.state.store.Creates` is asked to create itself.
    """
    import os

    from deployfw.state import open_store
    from deployfw.state.placement import state_section
    from deployfw.state.store import Creates

    config = session.load_config()
    section, _source = state_section(config, session.plugins.backends, os.environ)
    session.connect(config)
    ctx = make_context(config, backends=session.plugins.backends)
    store = open_store(session.plugins.backends, ctx, section)
    try:
        if isinstance(store, Creates):
            return store.create()
        return f"state store ready: {store!r} (it creates nothing up front)"
    finally:
        store.close()


def history_text(records: list[DeployRecord]) -> str:
    """``state show``: one line per record, newest first."""
    if not records:
        return "no deploys recorded"
    lines = []
    for r in records:
        extra = f" rollback of {r.extra['rollback_of']}" if r.extra.get("rollback_of") else ""
        error = f"  {r.error}" if r.error else ""
        lines.append(
            f"{_when(_iso(r.started_at))}  {r.outcome:<11} {r.commit[:12]:<12}  run {r.run_id}  "
            f"{_short(r.task_definition)}{extra}{error}"
        )
    return "\n".join(lines)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
