"""Runs killed at random points (SIGTERM and SIGKILL), then rerun: every module deployed exactly once.

Each kill point gets its own commit (a change to every module's config, so images are
reused and an iteration takes seconds; two kill points change the image inputs and kill
while building). What "exactly once" means here, checked by ``reliability_kit.judge``:

* after the rerun, every module's last successful deploy in the state store is the
  head commit, no record is left "started", and no lock is held;
* per module, exactly one deployment of the head commit ended successfully (CodeDeploy's
  own status for blue/green, the state record for rolling); any further deployment the
  request log shows was cancelled and rolled back (SIGTERM) or failed, and has a record
  saying so;
* no two deployments of one service overlap in time (CodeDeploy create/complete times,
  and the state records' start/end times).

Kill delays are shares of a run's length as measured on this machine when the suite starts (all
lanes at once, so under the load the kill points run with) and as the reruns go on: the quota of
kills that land mid-run holds on a fast machine and on a slow or loaded one alike.

A SIGKILLed run leaves its lease live for up to 30 s, so its rerun uses ``--mode
supersede`` (taking over at once, as a newer pipeline execution would); a SIGTERMed run
releases its locks, so its rerun queues like a plain rerun.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_kit import Lane, Repo, SandboxProcess, figure, kill_figures, kill_points, open_lanes, run_kill_points

pytestmark = pytest.mark.long

KILL_POINTS = 24  # a few may finish before their kill lands; at least 20 must be killed mid-run
EXTRA_LANES = 2  # more sandboxes, each with its own repository: kill points run three at a time


def test_killed_runs_then_rerun_deploy_every_module_exactly_once(
    warmed: Repo, rel_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    started = time.monotonic()
    extra = open_lanes(tmp_path, EXTRA_LANES, log_dir=tmp_path)
    lanes = [*extra, Lane(warmed, rel_sandbox)]
    try:
        outcomes = run_kill_points(lanes, kill_points(KILL_POINTS), fresh=len(extra))
    finally:
        for lane in extra:
            lane.sandbox.stop()
    figure("kill points", **kill_figures(outcomes), lanes=len(lanes), seconds=round(time.monotonic() - started, 1),
           measured_run_s=[round(lane.runs[0], 2) for lane in lanes])  # fmt: skip
    failures = [f"{o.point}: {o.verdict.problems or 'rerun exit ' + str(o.rerun_exit)}\n{o.output}"
                for o in outcomes if not o.ok]  # fmt: skip
    assert not failures, "\n\n".join(failures)
    assert sum(1 for o in outcomes if o.fired and o.killed_exit != 0) >= 20, "at least 20 kills must land mid-run"
