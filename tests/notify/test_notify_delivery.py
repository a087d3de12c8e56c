"""Sending notifications: each service's payload, order, retries, warnings, and secrets kept secret.

The :class:`~deployfw_notify.delivery.Notifier` of a real run context posts to a local
Slack-shaped receiver (HTTP on 127.0.0.1); retries sleep on a recorded fake clock.
SSM, Secrets Manager and SNS are the sandbox's, reached through deployfw's AWS boundary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_kit import TOKEN, Receiver

from deployfw import redact
from deployfw.backends import RunContext, StageResult
from deployfw.config import load_config
from deployfw.testing import SandboxProcess, copy_checkout
from deployfw_notify import messages
from deployfw_notify.delivery import MAX_ATTEMPTS, Notifier
from deployfw_notify.settings import EVENTS, Settings, Target

REPOSITORY = Path(__file__).resolve().parents[2]
REPORT = {
    "status": "failed",
    "seconds": 12.5,
    "modules": [{"name": "user-api", "status": "failed"}, {"name": "order-api", "status": "succeeded"}],
}


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    (tmp_path / "svc/api").mkdir(parents=True)
    (tmp_path / "modules.yaml").write_text("version: 1\nproject: shop\nmodules:\n  api: {path: svc/api}\n")
    config = load_config(tmp_path / "modules.yaml")
    return RunContext(config=config, head="c0ffee" * 6 + "abcd", run_id="20261201T000000Z-abc123",
                      region="ap-northeast-2", ci_url="https://ci.example.com/job/shop/7/")  # fmt: skip


def target(kind: str, events: tuple[str, ...] = EVENTS, **where: str) -> Target:
    return Target(kind, f"{kind}#1", frozenset(events), where.get("url_from"), where.get("topic_arn"))


def notifier(ctx: RunContext, *targets: Target, url: str = "", sleeps: list[float] | None = None) -> Notifier:
    record = sleeps if sleeps is not None else []
    return Notifier(ctx, Settings(targets, timeout=3), sleep=record.append, environ={"HOOK_URL": url})


def every_message(ctx: RunContext) -> list[messages.Message]:
    failed = StageResult(False, "HEALTH_CONSTRAINTS: targets failed ELB health checks; rolled back",
                         {"id": "d-ONE", "rolled_back": True, "rollback_deployment_id": "d-TWO"})  # fmt: skip
    return [
        messages.run_start(ctx, ["order-api", "user-api"]),
        messages.rolled_back(ctx, "user-api", failed),
        messages.module_failed(ctx, "user-api", failed.error),
        messages.run_end(ctx, REPORT),
    ]


def test_slack_gets_every_event_in_order_as_blocks(ctx: RunContext, receiver: Receiver) -> None:
    sender = notifier(ctx, target("slack", url_from="env:HOOK_URL"), url=receiver.url)
    for message in every_message(ctx):
        sender.post(message)
    sender.flush()
    assert [r.body["text"] for r in receiver.received] == [
        "shop: deploying 2 modules",
        "shop: user-api was rolled back",
        "shop: user-api failed",
        "shop: run failed in 12.5 s: user-api failed",
    ]
    for request in receiver.received:
        assert request.headers["Content-Type"] == "application/json"
        assert request.path == f"/services/{TOKEN}"
        section, context = request.body["blocks"]
        assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
        assert section["text"]["text"].startswith(f"*{request.body['text']}*\n")
        assert context["type"] == "context"
        assert "<https://ci.example.com/job/shop/7/|CI build>" in context["elements"][0]["text"]
        assert TOKEN not in request.raw.decode()
    assert "HEALTH_CONSTRAINTS" in receiver.received[2].body["blocks"][0]["text"]["text"]
    assert "rollback: d-TWO" in receiver.received[1].body["blocks"][1]["elements"][0]["text"]
    assert sender.sent == [("slack#1", m.event) for m in every_message(ctx)]


def test_teams_chime_and_a_plain_webhook_get_their_own_shapes(ctx: RunContext, receiver: Receiver) -> None:
    sender = notifier(ctx, *(target(k, ("run_end",), url_from="env:HOOK_URL") for k in ("teams", "chime", "webhook")),
                      url=receiver.url)  # fmt: skip
    sender.post(messages.run_end(ctx, REPORT))
    sender.flush()
    teams, chime, webhook = (r.body for r in receiver.received)
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0] == {"type": "TextBlock", "text": "shop: run failed in 12.5 s: user-api failed",
                               "weight": "Bolder", "size": "Medium", "wrap": True, "color": "Attention"}  # fmt: skip
    assert {"title": "failed", "value": "1"} in card["body"][2]["facts"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "CI build", "url": "https://ci.example.com/job/shop/7/"}
    ]
    assert set(chime) == {"Content"} and chime["Content"].startswith("shop: run failed in 12.5 s")
    assert webhook["event"] == "run_end" and webhook["status"] == "failed" and webhook["run_id"] == ctx.run_id
    assert webhook["report"] == REPORT


def test_events_a_target_did_not_ask_for_are_not_sent(ctx: RunContext, receiver: Receiver) -> None:
    sender = notifier(ctx, target("webhook", ("module_failed",), url_from="env:HOOK_URL"), url=receiver.url)
    for message in every_message(ctx):
        sender.post(message)
    sender.flush()
    assert receiver.events() == ["module_failed"]


def test_outages_and_throttling_are_retried_until_delivered(ctx: RunContext, receiver: Receiver) -> None:
    receiver.answer(503, "maintenance")
    receiver.answer(429, "rate_limited", {"Retry-After": "7"})
    sleeps: list[float] = []
    sender = notifier(ctx, target("slack", url_from="env:HOOK_URL"), url=receiver.url, sleeps=sleeps)
    sender.post(messages.run_start(ctx, ["api"]))
    sender.flush()
    assert len(receiver.received) == 3 and sender.sent == [("slack#1", "run_start")]
    assert len(sleeps) == 2 and sleeps[1] >= 7, "Retry-After is honoured"
    assert [r.raw for r in receiver.received] == [receiver.received[0].raw] * 3, "the same message each time"


def test_a_refused_message_is_one_warning_that_names_no_url(
    ctx: RunContext, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer(404, "no_service")
    sender = notifier(ctx, target("slack", url_from="env:HOOK_URL"), url=receiver.url)
    with caplog.at_level(logging.WARNING, logger="deployfw.notify"):
        sender.post(messages.run_start(ctx, ["api"]))
        sender.flush()
    assert len(receiver.received) == 1, "a client error is not retried"
    assert caplog.messages == ["deployfw notify: warning: slack#1: run_start not sent: HTTP 404 (no_service)"]
    assert sender.sent == []


def test_an_endpoint_that_never_answers_costs_bounded_retries(
    ctx: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:9/services/{TOKEN}"  # the discard port: nothing listens
    sender = notifier(ctx, target("teams", url_from="env:HOOK_URL"), url=url, sleeps=sleeps)
    with caplog.at_level(logging.WARNING, logger="deployfw.notify"):
        sender.post(messages.run_end(ctx, REPORT))
        sender.flush()
    assert len(sleeps) == MAX_ATTEMPTS - 1
    (warning,) = caplog.messages
    assert warning.startswith("deployfw notify: warning: teams#1: run_end not sent: no answer")
    assert warning.endswith("(gave up after retrying)")
    assert TOKEN not in warning and "127.0.0.1" not in warning


def test_a_missing_variable_is_a_warning(ctx: RunContext, caplog: pytest.LogCaptureFixture) -> None:
    sender = Notifier(ctx, Settings((target("chime", url_from="env:CHIME_URL"),)), environ={})
    with caplog.at_level(logging.WARNING, logger="deployfw.notify"):
        sender.post(messages.run_start(ctx, ["api"]))
        sender.flush()
    assert caplog.messages == [
        "deployfw notify: warning: chime#1: run_start not sent: environment variable CHIME_URL is not set"
    ]


def test_the_url_is_a_secret_from_the_moment_it_is_read(ctx: RunContext, receiver: Receiver) -> None:
    sender = notifier(ctx, target("webhook", ("module_failed",), url_from="env:HOOK_URL"), url=receiver.url)
    sender.post(messages.module_failed(ctx, "api", f"the build printed {receiver.url}"))
    sender.flush()
    assert redact.mask(f"x {receiver.url} y") == f"x {redact.MASK} y"
    (request,) = receiver.received
    assert request.body["error"] == f"the build printed {redact.MASK}" and TOKEN not in request.raw.decode()


# -- through the sandbox's AWS: SSM, Secrets Manager, SNS -----------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    repo = copy_checkout(REPOSITORY, tmp_path_factory.mktemp("notify") / "repo").path
    with SandboxProcess(repo, timings={"deploy_step": 0.05}) as box:
        yield box


@pytest.fixture
def aws_ctx(ctx: RunContext, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> RunContext:
    for name, value in sandbox.run_env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    ctx.endpoint_url = sandbox.endpoint
    ctx.region = sandbox.region
    return ctx


def test_webhook_urls_from_ssm_and_secrets_manager(
    aws_ctx: RunContext, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    ssm, secrets = sandbox.client("ssm"), sandbox.client("secretsmanager")
    ssm.put_parameter(Name="/deployfw/test/slack", Value=receiver.url + "/ssm", Type="SecureString", Overwrite=True)
    secrets.create_secret(Name="deployfw/test/teams", SecretString=json.dumps({"url": receiver.url + "/sm"}))
    sender = notifier(
        aws_ctx,
        target("slack", ("run_start",), url_from="ssm:/deployfw/test/slack"),
        target("teams", ("run_start",), url_from="secretsmanager:deployfw/test/teams#url"),
    )
    sender.post(messages.run_start(aws_ctx, ["api"]))
    sender.flush()
    assert sorted(r.path for r in receiver.received) == [f"/services/{TOKEN}/sm", f"/services/{TOKEN}/ssm"]
    assert redact.mask(receiver.url + "/ssm") == redact.MASK


def test_an_unreadable_parameter_is_a_warning_naming_the_parameter(
    aws_ctx: RunContext, caplog: pytest.LogCaptureFixture
) -> None:
    sender = notifier(aws_ctx, target("slack", ("run_start",), url_from="ssm:/deployfw/test/missing"))
    with caplog.at_level(logging.WARNING, logger="deployfw.notify"):
        sender.post(messages.run_start(aws_ctx, ["api"]))
        sender.flush()
    assert caplog.messages == [
        "deployfw notify: warning: slack#1: run_start not sent: cannot read the webhook URL from "
        "ssm:/deployfw/test/missing: ParameterNotFound"
    ]


def test_sns_topics_get_a_subject_the_text_and_the_event_attribute(
    aws_ctx: RunContext, sandbox: SandboxProcess, caplog: pytest.LogCaptureFixture
) -> None:
    sns, sqs = sandbox.client("sns"), sandbox.client("sqs")
    topic = sns.create_topic(Name="deployfw-test")["TopicArn"]
    queue = sqs.create_queue(QueueName="deployfw-test-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    missing = topic.replace("deployfw-test", "deployfw-nobody")
    sender = notifier(
        aws_ctx, target("sns", ("run_end",), topic_arn=topic), target("sns", ("run_end",), topic_arn=missing)
    )
    with caplog.at_level(logging.WARNING, logger="deployfw.notify"):
        sender.post(messages.run_end(aws_ctx, REPORT))
        sender.flush()
    (delivered,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    note = json.loads(delivered["Body"])
    assert note["Subject"] == "shop: run failed in 12.5 s: user-api failed"
    assert note["Message"].splitlines()[:3] == [
        "shop: run failed in 12.5 s: user-api failed", "1 failed: user-api", "1 succeeded: order-api"
    ]  # fmt: skip
    assert note["MessageAttributes"]["event"] == {"Type": "String", "Value": "run_end"}
    assert note["MessageAttributes"]["status"] == {"Type": "String", "Value": "failed"}
    (warning,) = caplog.messages
    assert warning.startswith("deployfw notify: warning: sns#1: run_end not sent: sns.publish failed:")
