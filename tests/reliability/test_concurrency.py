"""Two concurrent runs in each execution mode never overlap deployments of one service.

Overlap is judged from the outside: CodeDeploy's create/complete times per deployment
group and the state store's start/end times per module, across both runs. Per mode:
``fail`` - the second run exits 3 with one message and no deploy record; ``queue`` - the
second (a newer commit) waits and then deploys, both exit 0; ``supersede`` - the second
(a newer commit) takes over while the first is deploying, the first stops at a safe
point, and every module ends deployed exactly once at the newer commit.
"""

from __future__ import annotations

import pytest
from reliability_kit import Repo, SandboxProcess, concurrent_pair, figure


@pytest.mark.parametrize("mode", ["fail", "queue", "supersede"])
def test_two_concurrent_runs_never_overlap_deployments(mode: str, warmed: Repo, rel_sandbox: SandboxProcess) -> None:
    outcome = concurrent_pair(warmed, rel_sandbox, mode)
    figure(
        "concurrent runs",
        **{f"{mode}_exits": f"{outcome.first_exit}/{outcome.second_exit}", f"{mode}_deployments": outcome.deployments,
           f"{mode}_stopped_at_safe_point": outcome.stopped,
           f"{mode}_overlaps_or_problems": len(outcome.problems)},
    )  # fmt: skip
    assert outcome.problems == [], "\n".join(outcome.problems) + "\n" + outcome.output
