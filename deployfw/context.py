"""How a command builds the :class:`~deployfw.backends.RunContext` its backends share.

One function, so ``run``, ``plan``, ``status``, ``rollback`` and ``state init`` agree on the
region, the endpoint and the run id: five copies of "config region, else AWS_REGION, else
AWS_DEFAULT_REGION" had started to differ in their order.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping

from deployfw.backends import BackendRegistry, RunContext
from deployfw.config import Config
from deployfw.timescale import TIME_SCALE_ENV, parse_time_scale

DEFAULT_REGION = "us-east-1"


def resolve_region(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The deploy region: modules.yaml's ``region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``."""
    env = os.environ if environ is None else environ
    return config.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint_time_scale(environ: Mapping[str, str] | None = None) -> float:
    """How fast time passes at the AWS endpoint: ``DEPLOYFW_SANDBOX_TIME_SCALE`` with ``AWS_ENDPOINT_URL`` set, else 1.

    A sandbox hands its scale to its clients with the endpoint (``deployfw sandbox`` prints both,
    ``--sandbox`` sets both). Without an endpoint the commands talk to AWS, whose clock is real,
    whatever the variable says.
    """
    env = os.environ if environ is None else environ
    text = env.get(TIME_SCALE_ENV, "").strip()
    if not env.get("AWS_ENDPOINT_URL") or not text:
        return 1.0
    return parse_time_scale(text)


def new_run_id() -> str:
    """Sortable and unique across agents: UTC time plus randomness."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def make_context(
    config: Config,
    *,
    head: str = "",
    run_id: str | None = None,
    ci_url: str | None = None,
    repository_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    backends: BackendRegistry | None = None,
) -> RunContext:
    """The context of one command; a fresh run id unless ``run_id`` names one.

    The endpoint is ``AWS_ENDPOINT_URL`` exactly as boto3 and awscli honour it: the only thing
    that differs between real AWS and the sandbox.
    """
    env = os.environ if environ is None else environ
    return RunContext(
        config=config,
        head=head,
        run_id=run_id or new_run_id(),
        region=resolve_region(config, env),
        endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        ci_url=ci_url,
        backends=backends,
        repository_url=repository_url,
        time_scale=endpoint_time_scale(env),
    )
