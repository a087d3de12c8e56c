"""``deployfw status``, ``deployfw rollback`` and ``deployfw state init`` against a sandbox after real runs.

One module-scoped history: a run of every module, then a change to user-api and a
second run that deploys only user-api. Status reads it back (and notices drift made
by hand); rollback then returns user-api to the first deploy's task definition and
forward again by commit prefix. Tests run in file order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from statecli_helpers import change, git, primary_task_definition

from deployfw.state.sqlite import SqliteStore
from deployfw.testing import CliResult, SandboxProcess

SERVICES = ["order-api", "payment-api", "product-api", "user-api"]


@dataclass
class History:
    first_commit: str
    second_commit: str
    first_run: str
    second_run: str
    first_td: str
    second_td: str


def status_json(deployfw: Callable[..., CliResult], *argv: str) -> dict[str, Any]:
    result = deployfw("status", "--json", *argv)
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def records(deployfw: Callable[..., CliResult], module: str) -> list[dict[str, Any]]:
    result = deployfw("state", "show", module, "--json")
    assert result.code == 0, result.output
    return list(json.loads(result.stdout))


@pytest.fixture(scope="module")
def history(deployfw: Callable[..., CliResult], example: Path) -> History:
    first = deployfw("run", "--all")
    assert first.code == 0, first.output
    first_commit = git(example, "rev-parse", "HEAD").strip()
    [one] = records(deployfw, "user-api")
    second_commit = change(example, "user-api", "version 2")
    second = deployfw("run")
    assert second.code == 0, second.output
    latest, previous = records(deployfw, "user-api")[:2]
    assert previous["run_id"] == one["run_id"] and latest["commit"] == second_commit
    assert latest["task_definition"] != one["task_definition"]
    return History(first_commit, second_commit, one["run_id"], latest["run_id"], one["task_definition"],
                   latest["task_definition"])  # fmt: skip


def test_status_json_shows_recorded_and_live_state_in_sync(
    history: History, deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    data = status_json(deployfw)

    assert data["scope"]["account"] == f"123456789012@{sandbox.endpoint.removeprefix('http://')}"
    modules = {m["name"]: m for m in data["modules"]}
    assert list(modules) == SERVICES
    for name, module in modules.items():
        success = module["last_success"]
        assert success["outcome"] == "succeeded" and success["task_definition"], name
        assert module["live"]["task_definition"] == success["task_definition"], name
        assert module["live"]["image"] == success["image_uri"] and "@sha256:" in success["image_uri"], name
        assert module["drift"] is False and module["state"] == "in sync", name
        assert module["in_flight"] is None and module["last_attempt"] is None and module["lock"] is None, name
    assert modules["user-api"]["last_success"]["commit"] == history.second_commit
    assert modules["user-api"]["last_success"]["run_id"] == history.second_run
    assert modules["order-api"]["last_success"]["commit"] == history.first_commit
    assert modules["product-api"]["live"]["rollout_state"] == "COMPLETED"


def test_status_text_reports_drift_made_outside_deployfw(history: History, deployfw: Callable[..., CliResult],
                                                          sandbox: SandboxProcess) -> None:  # fmt: skip
    ecs = sandbox.client("ecs")
    recorded = status_json(deployfw)["modules"][2]["last_success"]["task_definition"]  # product-api
    taskdef = ecs.describe_task_definition(taskDefinition=recorded)["taskDefinition"]
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory",
            "executionRoleArn")  # fmt: skip
    by_hand = ecs.register_task_definition(**{k: taskdef[k] for k in keep if k in taskdef})["taskDefinition"]
    ecs.update_service(cluster="shop", service="product-api", taskDefinition=by_hand["taskDefinitionArn"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # let the hand-made rollout finish, so the state is drift, not deploying
        found = ecs.describe_services(cluster="shop", services=["product-api"])["services"][0]
        if [d.get("rolloutState") for d in found["deployments"]] == ["COMPLETED"]:
            break
        time.sleep(0.1)

    result = deployfw("status")

    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["MODULE", "COMMIT", "DEPLOYED", "AT", "RUN", "TASK", "DEFINITION", "LIVE", "STATE"]
    rows = {line.split()[0]: line for line in lines[2:] if not line.startswith(" ")}
    assert sorted(rows) == SERVICES
    assert rows["product-api"].rstrip().endswith("drift")
    assert by_hand["taskDefinitionArn"].rsplit("/", 1)[-1] in rows["product-api"]
    assert rows["user-api"].rstrip().endswith("in sync") and history.second_commit[:12] in rows["user-api"]
    assert f"live task definition {by_hand['taskDefinitionArn']} is not the recorded one" in result.stdout
    assert "sandbox-secret" not in result.output
    ecs.update_service(cluster="shop", service="product-api", taskDefinition=recorded)  # back as recorded


def test_rollback_redeploys_the_previous_successful_deploy(
    history: History, deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    assert primary_task_definition(sandbox, "user-api") == history.second_td
    sandbox.clear_requests()

    result = deployfw("rollback", "user-api")

    assert result.code == 0, result.output
    assert f"user-api: rolled back to commit {history.first_commit[:12]}" in result.stdout
    assert primary_task_definition(sandbox, "user-api") == history.first_td
    operations = [r["operation"] for r in sandbox.requests()]
    assert operations.count("CreateDeployment") == 1 and "RegisterTaskDefinition" not in operations
    latest = records(deployfw, "user-api")[0]
    assert latest["outcome"] == "succeeded" and latest["commit"] == history.first_commit
    assert latest["task_definition"] == history.first_td
    assert latest["extra"] == {"rollback_of": history.second_run, "rollback_to": history.first_run}
    assert latest["run_id"] not in (history.first_run, history.second_run) and latest["deployment_id"]
    module = {m["name"]: m for m in status_json(deployfw)["modules"]}["user-api"]
    assert module["state"] == "in sync" and module["live"]["task_definition"] == history.first_td


def test_rollback_again_has_nothing_older_to_return_to(history: History, deployfw: Callable[..., CliResult]) -> None:
    result = deployfw("rollback", "user-api")  # only the deploy the first rollback undid is left

    assert result.code == 2, result.output
    assert "nothing to roll back to" in result.stderr


def test_rollback_to_a_commit_prefix(
    history: History, deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    result = deployfw("rollback", "user-api", "--to", history.second_commit[:8])

    assert result.code == 0, result.output
    assert primary_task_definition(sandbox, "user-api") == history.second_td
    assert records(deployfw, "user-api")[0]["commit"] == history.second_commit


def test_rollback_bad_input_exits_2_and_changes_nothing(
    history: History, deployfw: Callable[..., CliResult], sandbox: SandboxProcess
) -> None:
    sandbox.clear_requests()

    nothing = deployfw("-e", "prod", "rollback", "user-api")  # no deploy recorded in env prod
    unknown = deployfw("rollback", "no-such-api")
    library = deployfw("rollback", "common")
    no_match = deployfw("rollback", "user-api", "--to", "f" * 12)

    assert (nothing.code, unknown.code, library.code, no_match.code) == (2, 2, 2, 2)
    assert "nothing to roll back to: no successful deploy of user-api" in nothing.stderr
    assert "unknown module 'no-such-api'" in unknown.stderr
    assert "no successful deploy of user-api" in no_match.stderr
    changed = [r["operation"] for r in sandbox.requests() if not r["operation"].startswith(("Describe", "Get", "List"))]
    assert changed == [], changed


def test_rollback_while_another_run_holds_the_lock_exits_3(
    history: History, deployfw: Callable[..., CliResult], sandbox: SandboxProcess, example: Path
) -> None:
    store = SqliteStore(example / ".deployfw" / "state.db")
    with store.acquire(sandbox.scope(), "user-api", "other-run", mode="fail", lease_seconds=60):
        result = deployfw("rollback", "user-api", "--to", history.first_run, "--mode", "fail")

    assert result.code == 3, result.output
    assert "locked by run other-run" in result.stderr
    assert records(deployfw, "user-api")[0]["commit"] == history.second_commit  # nothing recorded


def test_state_init_creates_the_dynamodb_table_once(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, example: Path
) -> None:
    config = example / "modules.yaml"
    (example / "dynamo.yaml").write_text(config.read_text() + "\nstate: {backend: dynamodb, table: statecli-deploys}\n")

    first = deployfw("-c", "dynamo.yaml", "state", "init")
    again = deployfw("-c", "dynamo.yaml", "state", "init")

    assert first.code == 0 and again.code == 0, first.output + again.output
    assert first.stdout.strip() == "created DynamoDB table statecli-deploys in ap-northeast-2"
    assert again.stdout.strip() == "DynamoDB table statecli-deploys in ap-northeast-2 already exists"
    table = sandbox.client("dynamodb").describe_table(TableName="statecli-deploys")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    status = deployfw("-c", "dynamo.yaml", "status", "--json", "--no-live")  # the new, empty store is usable
    assert status.code == 0 and all(m["last_success"] is None for m in json.loads(status.stdout)["modules"])


def test_state_init_for_sqlite_says_where_the_file_is(deployfw: Callable[..., CliResult], example: Path) -> None:
    result = deployfw("state", "init")

    assert result.code == 0, result.output
    assert result.stdout.strip() == f"sqlite state store: {example / '.deployfw' / 'state.db'}"
    assert (example / ".deployfw" / "state.db").is_file()
