"""``deployfw rollback``: redeploy a recorded earlier task definition of one module, no rebuild.

Why through the state store and the deploy backend, and not "UpdateService to the
previous revision": the store knows which task definitions were *successfully*
deployed (a revision that was registered and then rolled back is not a target), and
the backend deploys the same way ``run`` does - a CodeDeploy blue/green deployment
with its appspec and auto-rollback, or a rolling update with the circuit breaker -
so a rollback is as safe and as observable as a deploy.

The sequence mirrors one module of ``run``: check the input (exit 2, nothing
touched), take the module's lock (exit 3 in fail mode), conclude a deploy a killed
run left in flight, record the rollback as a deploy of the target record's commit
under this command's run id with ``extra={"rollback_of": RUN, "rollback_to": RUN}``,
redeploy, record the outcome. A rollback that was itself rolled back is a failure.

A rollback **pins** the module to the revision it put back (:mod:`deployfw.pins`): in a monorepo
the next ``run`` comes from any commit, and without the pin a teammate's change to another service
would redeploy the revision just rolled back. The pin is written before the deployment is created
(so a rollback killed mid-way still holds; ``run`` treats the pin as void when the rollback's own
record says it failed) and removed again when the rollback fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployfw.backends import DeployOutcome, Redeploys
from deployfw.config import Config, Module
from deployfw.deploying import conclude_in_flight, recorded_deploy
from deployfw.errors import InputError
from deployfw.gitrepo import GitRepo
from deployfw.pins import pin_since
from deployfw.session import Session
from deployfw.state import DeployRecord, KeepsPins, Pin, StateStore, Superseded
from deployfw.state.model import now_utc
from deployfw.state.store import MIN_COMMIT_PREFIX
from deployfw.status import HISTORY_LIMIT, Opened, open_command


@dataclass
class RollbackResult:
    module: str
    run_id: str
    target: DeployRecord
    current: DeployRecord | None
    outcome: DeployOutcome
    pin: Pin | None = None

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def summary(self) -> str:
        to = f"commit {self.target.commit[:12]} (run {self.target.run_id}, {_short(self.target.task_definition)})"
        if not self.ok:
            return f"{self.module}: rollback to {to} failed: {self.outcome.error or 'unknown error'}"
        if self.pin is None:
            return f"{self.module}: rolled back to {to}; not pinned: the next run that affects it deploys head"
        return (
            f"{self.module}: rolled back to {to}; pinned: runs skip it until its own inputs change after "
            f"{self.pin.since[:12]} (`deployfw unpin {self.module}` to release)"
        )


def _short(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "-"


def check_module(config: Config, name: str) -> Module:
    """The module to roll back: a known service module with a deploy section (else exit 2, nothing touched)."""
    module = config.modules.get(name)
    if module is None:
        valid = ", ".join(sorted(n for n, m in config.modules.items() if m.is_service)) or "none"
        raise InputError(f"unknown module {name!r}; service modules: {valid}")
    if not module.is_service or module.deploy is None:
        raise InputError(f"module {name!r} is a {module.kind} without a deploy section; nothing to roll back")
    return module


def choose_target(
    store: StateStore, opened: Opened, module: str, to: str | None
) -> tuple[DeployRecord, DeployRecord | None]:
    """``(target, current)``: the recorded successful deploy to return to, and the one in service now.

    ``--to`` names a run id or a commit prefix (ambiguous prefixes are bad input). Without it,
    the newest successful deploy before the current one whose task definition differs from the
    current one's and that was not itself rolled back from - so a second ``rollback`` goes
    further back instead of returning to the revision the first one left.
    """
    scope = opened.state.scope
    history = store.history(scope, module, limit=HISTORY_LIMIT)
    successes = [r for r in history if r.outcome == "succeeded"]
    current = successes[0] if successes else None
    if to:
        target = store.find(scope, module, to, outcome="succeeded")
        if target is None:
            hint = (
                f" (a commit prefix needs at least {MIN_COMMIT_PREFIX} characters)"
                if len(to) < MIN_COMMIT_PREFIX
                else ""
            )
            raise InputError(f"no successful deploy of {module} in {scope} matches run id or commit {to!r}{hint}")
    else:
        undone = {str(r.extra["rollback_of"]) for r in successes if r.extra.get("rollback_of")}
        current_td = current.task_definition if current else None
        candidates = [
            r for r in successes[1:] if r.task_definition and r.task_definition != current_td and r.run_id not in undone
        ]
        if not candidates:
            found = "no successful deploy" if current is None else "no earlier successful deploy of another revision"
            raise InputError(f"nothing to roll back to: {found} of {module} is recorded in {scope}")
        target = candidates[0]
    if not target.task_definition:
        raise InputError(
            f"the deploy of {module} by run {target.run_id} recorded no task definition; cannot redeploy it"
        )
    return target, current


def rollback(
    session: Session,
    name: str,
    *,
    to: str | None,
    mode: str | None,
    lock_timeout: float,
    log: Callable[[str, str], None],
    cancel_handlers: Callable[[Any], None] | None = None,
) -> RollbackResult:
    """Roll ``name`` back; InputError (2) for bad input, LockHeldError (3) when locked, else a result."""
    config = session.load_config()
    module = check_module(config, name)
    opened = open_command(session, config)
    deployer = opened.deployer(module)
    if not isinstance(deployer, Redeploys):
        assert module.deploy is not None
        raise InputError(f"deploy backend {module.deploy.backend!r} of {name} cannot redeploy a recorded deploy")
    state, store = opened.state, opened.state.store
    target, current = choose_target(store, opened, name, to)
    opened.ctx.head = target.commit
    if cancel_handlers is not None:
        cancel_handlers(opened.ctx.cancel)
    execution_mode = mode or module.execution_mode or config.execution_mode
    if state.placement is not None and state.placement.warning:
        log("state", state.placement.warning)
    state.acquire_all({name: execution_mode}, wait_seconds=lock_timeout)
    try:
        job = opened.job(module, lambda line: log("recover", line))
        conclude_in_flight(state, deployer, job, job.log)
        log("rollback", f"to commit {target.commit[:12]} of run {target.run_id}: {target.task_definition}")
        pin = _pin(opened, target, current, log)
        try:
            outcome = _redeploy(opened, module, deployer, target, current, log)
        except Superseded:
            raise  # a newer run took the module over: it decides, the pin stays as evidence
        except BaseException:
            _unpin(opened, pin)
            raise
        if not outcome.ok:
            _unpin(opened, pin)
            pin = None
        return RollbackResult(name, opened.ctx.run_id, target, current, outcome, pin)
    finally:
        state.release_all()


def _pin(
    opened: Opened, target: DeployRecord, current: DeployRecord | None, log: Callable[[str, str], None]
) -> Pin | None:
    """Pin the module to ``target`` before its deployment is created (see the module docstring)."""
    store, scope = opened.state.store, opened.state.scope
    if not isinstance(store, KeepsPins):
        log("pin", f"the state store {store!r} keeps no pins: the next run that affects {target.module} deploys head")
        return None
    latest = store.history(scope, target.module, limit=1)
    earlier = store.get_pin(scope, target.module)  # a second rollback keeps the first one's measure
    try:
        repo: GitRepo | None = GitRepo(opened.config.root)
    except InputError:
        repo = None
    candidates = [
        current.commit if current else target.commit,
        earlier.since if earlier else None,
        latest[0].commit if latest else None,
        repo.resolve("HEAD") if repo is not None else None,
    ]
    since = pin_since(repo, candidates)
    pin = Pin(
        scope,
        target.module,
        opened.ctx.run_id,
        target.commit,
        since,
        now_utc(time.time()),
        task_definition=target.task_definition,
        image_uri=target.image_uri,
        rollback_of=current.run_id if current else None,
    )
    store.set_pin(pin)
    log("pin", f"{target.module} {pin.reason()}; changes are measured from {since[:12]}")
    return pin


def _unpin(opened: Opened, pin: Pin | None) -> None:
    store = opened.state.store
    if pin is not None and isinstance(store, KeepsPins):
        store.release_pin(opened.state.scope, pin.module, pin.run_id)


def _redeploy(
    opened: Opened,
    module: Module,
    deployer: Redeploys,
    target: DeployRecord,
    current: DeployRecord | None,
    log: Callable[[str, str], None],
) -> DeployOutcome:
    """The deploy sequence ``run`` uses, recorded as a deploy of the target's commit under this command's run."""
    assert module.deploy is not None
    extra = {"rollback_to": target.run_id}
    if current is not None:
        extra["rollback_of"] = current.run_id
    job = opened.job(module, lambda line: log("deploy", line))
    return recorded_deploy(
        opened.state,
        job,
        lambda: deployer.redeploy(job, target),
        backend=module.deploy.backend,
        commit=target.commit,
        image_uri=target.image_uri,
        digest=target.image_digest,
        task_definition=target.task_definition,
        extra=extra,
    )


def unpin(session: Session, name: str) -> Pin | None:
    """Release ``name``'s rollback pin (``deployfw unpin``); the released pin, or None when there was none.

    No lock: releasing is one conditional write, and a run that planned around the pin reads it again
    before deploying nothing - it simply holds the module this once.
    """
    config = session.load_config()
    check_module(config, name)
    opened = open_command(session, config)
    store = opened.state.store
    if not isinstance(store, KeepsPins):
        raise InputError(f"the state store {store!r} keeps no pins")
    return store.release_pin(opened.state.scope, name)
