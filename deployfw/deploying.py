"""The one deploy sequence behind ``run`` and ``rollback``.

For one module, with its lock held:

1. conclude what a killed or superseded run left in flight - find the deployment it created
   but did not live to record (``Recovers.locate``), follow it to its end (``Recovers.recover``),
   and record how it ended - so a deployment is never started twice nor overlapped by ours;
2. record the deploy as started, *before* the deployment exists (a run killed from here on
   leaves a record its successor concludes), with the deployer reporting the deployment id
   through ``job.progress`` as soon as AWS answers;
3. call the deployer (``deploy`` for ``run``, ``redeploy`` for ``rollback``);
4. record the end from the typed :class:`~deployfw.backends.DeployOutcome`.

``run`` and ``rollback`` used to carry two copies of this, which differed after a killed run:
one found and awaited the left-over deployment, the other marked it abandoned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deployfw import redact
from deployfw.backends import DeployBackend, DeployOutcome, ModuleJob, Recovers
from deployfw.runstate import RunState
from deployfw.state import Superseded


def conclude_in_flight(state: RunState, deployer: DeployBackend, job: ModuleJob, log: Callable[[str], None]) -> None:
    """Conclude every deploy of ``job.module`` that a run which no longer holds its lock left started."""
    name = job.module.name
    recovers = deployer if isinstance(deployer, Recovers) else None
    while (stale := state.in_flight(name)) is not None:
        if not stale.deployment_id and recovers is not None:
            # Killed between creating the deployment and recording its id: find it by the run's marks.
            found = recovers.locate(job, stale.run_id, stale.task_definition)
            if found:
                log(f"run {stale.run_id} created deployment {found} but did not live to record it")
                stale = stale.replace(deployment_id=found)
        if stale.deployment_id and recovers is not None:
            log(f"run {stale.run_id} left deployment {stale.deployment_id} in flight; concluding it")
            outcome = recovers.recover(job, stale.deployment_id)
            recorded, error = outcome.recorded, outcome.error
        else:
            recorded, error = "abandoned", "the run that started it ended before a deployment existed"
            if stale.deployment_id:
                error = f"deployment {stale.deployment_id} cannot be observed by {type(deployer).__name__}"
        log(f"run {stale.run_id}: {recorded}" + (f" ({error})" if error else ""))
        state.conclude(stale, recorded, error)


def recorded_deploy(
    state: RunState | None,
    job: ModuleJob,
    call: Callable[[], DeployOutcome],
    *,
    backend: str,
    commit: str,
    image_uri: str | None,
    digest: str | None,
    task_definition: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> DeployOutcome:
    """Record the deploy started, make it through ``call``, record how it ended; the outcome.

    Without a state store (a run with state switched off) only ``call`` happens. An exception
    from ``call`` is recorded as a failure and re-raised - except :class:`Superseded`: a newer run
    took the module over and concludes this deployment itself, from the "started" record.
    """
    if state is None:
        return call()
    name = job.module.name
    state.started(
        name,
        commit,
        image_uri=image_uri,
        digest=digest,
        backend=backend,
        task_definition=task_definition,
        extra=extra,
    )
    job.progress = state.progress(name)
    try:
        outcome = call()
    except Superseded:
        raise
    except BaseException as exc:
        state.ended(name, DeployOutcome(False, redact.mask(str(exc))))
        raise
    state.ended(name, outcome)
    return outcome
