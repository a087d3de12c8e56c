"""Notifications from a real run: ``deployfw run --sandbox --html r.html`` with user-api's deployment failing.

The example's modules.yaml gains a ``notify`` section sending to a local Slack-shaped
receiver whose URL (with its token) comes from an environment variable. The receiver
must get the start, the rollback, the failure and the end - in that order, with
nothing secret in them - and the run page must show the failure, its log tail and the
rollback. A receiver that refuses every message changes nothing but a warning.
"""

from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path

import pytest
from notify_kit import TOKEN, Receiver

from deployfw.testing import copy_checkout, terminal_env
from deployfw.testing.cli import deployfw_command

REPOSITORY = Path(__file__).resolve().parents[2]
NOTIFY = """
notify:
  slack:
    - url_from: env:DEPLOYFW_TEST_SLACK_URL
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    builder = copy_checkout(REPOSITORY, tmp_path_factory.mktemp("notify-run") / "repo", message="example")
    config = builder.path / "modules.yaml"
    config.write_text(config.read_text() + NOTIFY)
    builder.commit(message="notify deploys on Slack")
    return builder.path


def run(repo: Path, receiver: Receiver, name: str, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    page = repo / f"{name}.html"
    command = [*deployfw_command(), "run", "--sandbox", "--all", "--html", str(page), "--report", f"{name}.json"]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600,
                          env=terminal_env(DEPLOYFW_TEST_SLACK_URL=receiver.url, **env))  # fmt: skip
    return done, page


def test_a_failing_module_is_announced_and_its_page_shows_failure_tail_and_rollback(
    example: Path, receiver: Receiver
) -> None:
    done, page = run(example, receiver, "failed", DEPLOYFW_SANDBOX_FAULTS="deploy:user-api")
    assert done.returncode == 1, done.stderr[-3000:]
    texts = [r.body["text"] for r in receiver.received]
    assert texts == [
        "shop: deploying 4 modules",
        "shop: user-api was rolled back",
        "shop: user-api failed",
        texts[-1],
    ]
    assert texts[-1].startswith("shop: run failed in ") and texts[-1].endswith(": user-api failed")
    failure = receiver.received[2].body["blocks"][0]["text"]["text"]
    assert "HEALTH_CONSTRAINTS" in failure
    for request in receiver.received:
        assert TOKEN not in request.raw.decode() and "sandbox-secret" not in request.raw.decode()
    report = json.loads((example / "failed.json").read_text())
    for written in (done.stdout, done.stderr, page.read_text(), json.dumps(report)):
        assert TOKEN not in written
    # the page: the failure, its log tail and the rollback
    user_api = next(m for m in report["modules"] if m["name"] == "user-api")
    deploy = next(s for s in user_api["stages"] if s["stage"] == "deploy")
    text = html.unescape(page.read_text())
    assert deploy["error"] in text and deploy["log_tail"][-1] in text
    assert f"Rolled back by deployment {user_api['deploy']['rollback_deployment_id']}." in text


def test_a_receiver_that_refuses_everything_costs_a_warning_not_the_deploy(example: Path, receiver: Receiver) -> None:
    for _ in range(4):
        receiver.answer(403, "invalid_token")
    done, _ = run(example, receiver, "refused")
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("deployfw notify: warning:")]
    assert warnings == [
        "deployfw notify: warning: slack#1: run_start not sent: HTTP 403 (invalid_token)",
        "deployfw notify: warning: slack#1: run_end not sent: HTTP 403 (invalid_token)",
    ]
    assert len(receiver.received) == 2 and TOKEN not in done.stderr
