"""The ``notify:`` section: its schema, and the targets a run sends to.

Webhook URLs carry their own credentials (Slack's, Teams', Chime's token is in the
URL), so the config never holds one: ``url_from`` names where it is kept - an
environment variable, an SSM parameter or a Secrets Manager secret - and the URL is
read at run time, registered as a secret and never written anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENTS = ("run_start", "run_end", "module_failed", "rolled_back")
WEBHOOK_KINDS = ("slack", "teams", "chime", "webhook")
DEFAULT_TIMEOUT = 5.0  # seconds for one HTTP request

_EVENTS_SCHEMA = {
    "type": "array",
    "items": {"enum": list(EVENTS)},
    "description": "Events sent to this target (default: all of run_start, run_end, module_failed, rolled_back).",
}
_NAME_SCHEMA = {"type": "string", "minLength": 1, "description": "A name for this target in warnings."}
_URL_FROM = {
    "type": "string",
    "pattern": r"^(env:[A-Za-z_][A-Za-z0-9_]*|ssm:\S+|secretsmanager:[^#\s]+(#\S+)?)$",
    "description": "Where the webhook URL is kept (it is a secret): env:VARIABLE, ssm:PARAMETER_NAME "
    "(SecureString is decrypted) or secretsmanager:SECRET_ID, with #KEY for a JSON secret.",
}
_WEBHOOK_TARGET = {
    "type": "object",
    "required": ["url_from"],
    "additionalProperties": False,
    "properties": {"url_from": _URL_FROM, "events": _EVENTS_SCHEMA, "name": _NAME_SCHEMA},
}
_SNS_TARGET = {
    "type": "object",
    "required": ["topic_arn"],
    "additionalProperties": False,
    "properties": {
        "topic_arn": {
            "type": "string",
            "pattern": r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$",
            "description": "The SNS topic to publish to (it must exist).",
        },
        "events": _EVENTS_SCHEMA,
        "name": _NAME_SCHEMA,
    },
}
_DESCRIPTIONS = {
    "slack": "Slack incoming webhooks (https://hooks.slack.com/services/...).",
    "teams": 'Microsoft Teams Workflows webhooks ("Post to a channel when a webhook request is received").',
    "chime": "Amazon Chime incoming webhooks (https://hooks.chime.aws/incomingwebhooks/...).",
    "webhook": "Any HTTP endpoint taking a JSON POST: deployfw's own event document.",
}
NOTIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "events": _EVENTS_SCHEMA,
        "timeout_seconds": {"type": "number", "minimum": 1, "description": "Per HTTP request (default 5)."},
        **{
            kind: {"type": "array", "items": _WEBHOOK_TARGET, "description": description}
            for kind, description in _DESCRIPTIONS.items()
        },
        "sns": {"type": "array", "items": _SNS_TARGET, "description": "Amazon SNS topics (Publish)."},
    },
}


@dataclass(frozen=True)
class Target:
    """One destination: a kind (slack, teams, chime, webhook, sns) and where its address is."""

    kind: str
    label: str  # "slack#1" or "slack 'deploys'": names the target in warnings, never its URL
    events: frozenset[str]
    url_from: str | None = None
    topic_arn: str | None = None


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...]
    timeout: float = DEFAULT_TIMEOUT


def settings_of(section: Mapping[str, Any] | None) -> Settings | None:
    """The validated ``notify`` section as targets; None when there is nothing to send."""
    if not section:
        return None
    default_events = frozenset(section.get("events", EVENTS))  # [] silences them
    targets: list[Target] = []
    for kind in (*WEBHOOK_KINDS, "sns"):
        for index, raw in enumerate(section.get(kind) or [], start=1):
            label = f"{kind} {raw['name']!r}" if raw.get("name") else f"{kind}#{index}"
            events = frozenset(raw["events"]) if "events" in raw else default_events
            targets.append(Target(kind, label, events, raw.get("url_from"), raw.get("topic_arn")))
    if not targets:
        return None
    return Settings(tuple(targets), float(section.get("timeout_seconds") or DEFAULT_TIMEOUT))
