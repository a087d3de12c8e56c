"""Registers the ``notify`` section and sends a message at each moment users asked to hear about.

Hooks, in the order a run calls them:

- ``deployfw_register_backends``: own the top-level ``notify:`` section (its schema
  validates it with file, line and key; ``environments.ENV.notify`` overrides it);
- ``deployfw_run_start``: read the section and send ``run_start``;
- ``deployfw_stage_end``: a deploy that rolled back sends ``rolled_back``;
- ``deployfw_module_end``: a failed module sends ``module_failed``;
- ``deployfw_run_end``: send ``run_end`` and wait for the queue to empty.

Nothing here raises into the run: a notification that cannot be sent is a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployfw.hookspecs import hookimpl
from deployfw_notify.settings import NOTIFY_SCHEMA

if TYPE_CHECKING:
    from deployfw.backends import BackendRegistry, RunContext, StageResult
    from deployfw.config import Module
    from deployfw_notify.delivery import Notifier

SECTION = "notify"
_NONE = "none"  # the resource value of a run that has no notify section


@hookimpl
def deployfw_register_backends(registry: BackendRegistry) -> None:
    registry.add_section(
        SECTION,
        schema=NOTIFY_SCHEMA,
        description="Messages about runs: Slack, Microsoft Teams, Amazon Chime, SNS topics and JSON webhooks.",
    )
    registry.add_iam_needs("deployfw_notify.iam:needs")  # sns:Publish, the URLs kept in SSM / Secrets Manager


def notifier(ctx: RunContext) -> Notifier | None:
    """The run's notifier, made on first use; None when the config has no targets."""

    def make() -> Any:
        from deployfw_notify.delivery import Notifier
        from deployfw_notify.settings import settings_of

        settings = settings_of(ctx.config.sections.get(SECTION))
        return Notifier(ctx, settings) if settings else _NONE

    found = ctx.resource("notify", make)
    return None if found == _NONE else found


def _post(ctx: RunContext, build: Any, *args: Any) -> None:
    try:
        target = notifier(ctx)
        if target is not None:
            target.post(build(ctx, *args))
    except Exception as exc:  # never into the run
        from deployfw_notify.delivery import warn

        warn(f"could not queue a message: {type(exc).__name__}: {exc}")


@hookimpl
def deployfw_run_start(ctx: RunContext, modules: list[str]) -> None:
    from deployfw_notify import messages

    _post(ctx, messages.run_start, list(modules))


@hookimpl
def deployfw_stage_end(ctx: RunContext, module: Module, stage: str, result: StageResult) -> None:
    if stage == "deploy" and result.details.get("rolled_back"):
        from deployfw_notify import messages

        _post(ctx, messages.rolled_back, module.name, result)


@hookimpl
def deployfw_module_end(ctx: RunContext, module: Module, status: str, error: str | None) -> None:
    if status == "failed":
        from deployfw_notify import messages

        _post(ctx, messages.module_failed, module.name, error)


@hookimpl
def deployfw_run_end(ctx: RunContext, report: dict[str, Any]) -> None:
    from deployfw_notify import messages

    _post(ctx, messages.run_end, report)
    try:
        target = notifier(ctx)
        if target is not None:
            target.flush()
    except Exception as exc:
        from deployfw_notify.delivery import warn

        warn(f"could not finish sending: {type(exc).__name__}: {exc}")
