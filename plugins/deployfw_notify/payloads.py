"""Each service's request for one :class:`~deployfw_notify.messages.Message`.

The shapes follow each service's documentation:

- Slack incoming webhooks: ``text`` (the notification fallback) plus Block Kit
  ``blocks`` (a ``section`` in mrkdwn, a ``context`` line); ``&``, ``<`` and ``>``
  are escaped as Slack's mrkdwn requires.
- Microsoft Teams Workflows webhooks: a ``message`` whose one attachment is an
  Adaptive Card (``application/vnd.microsoft.card.adaptive``, ``contentUrl`` null).
- Amazon Chime incoming webhooks: ``{"Content": text}``.
- Amazon SNS Publish: an ASCII ``Subject`` under 100 characters without line
  breaks, the text as ``Message``, and the event as a message attribute so
  subscriptions can filter on it.
- A generic webhook gets deployfw's own document: the event's fields plus the text.
"""

from __future__ import annotations

from typing import Any

from deployfw_notify.messages import Message

SLACK_TEXT_LIMIT = 3000  # a section block's text
SNS_SUBJECT_LIMIT = 99


def _lines(message: Message) -> list[str]:
    facts = " · ".join(f"{name}: {value}" for name, value in message.facts)
    return [message.title, message.text, *([facts] if facts else []), *([message.link] if message.link else [])]


def plain(message: Message) -> str:
    return "\n".join(_lines(message))


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    body = f"*{_slack_escape(message.title)}*\n{_slack_escape(message.text)}"
    if len(body) > SLACK_TEXT_LIMIT:
        body = body[: SLACK_TEXT_LIMIT - 1] + "…"
    context = " · ".join(f"{name}: {_slack_escape(value)}" for name, value in message.facts)
    if message.link:
        context += f" · <{message.link}|CI build>"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context.strip(" ·")}]})
    return {"text": _slack_escape(message.title), "blocks": blocks}


def teams(message: Message) -> dict[str, Any]:
    colour = {"succeeded": "Good", "failed": "Attention", "rolled_back": "Warning"}.get(message.status, "Default")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": colour},
        {"type": "TextBlock", "text": message.text, "wrap": True},
    ]  # fmt: skip
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in message.facts]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "CI build", "url": message.link}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def chime(message: Message) -> dict[str, Any]:
    return {"Content": plain(message)}


def webhook(message: Message) -> dict[str, Any]:
    return {**message.data, "title": message.title, "text": message.text, "status": message.status}


def sns(message: Message) -> dict[str, Any]:
    """Publish's parameters (without TopicArn)."""
    subject = " ".join(message.title.encode("ascii", "replace").decode("ascii").split())
    if len(subject) > SNS_SUBJECT_LIMIT:
        subject = subject[: SNS_SUBJECT_LIMIT - 3] + "..."
    attributes = {"event": message.event, "status": message.status, "project": message.data.get("project")}
    return {
        "Subject": subject,
        "Message": plain(message),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(value)} for name, value in attributes.items() if value
        },
    }


HTTP = {"slack": slack, "teams": teams, "chime": chime, "webhook": webhook}
