"""What a module's ``build: {backend: jenkins}`` section asks for: job, parameters, deadlines.

Kept apart from the backend (and free of python-jenkins) because the sandbox
seeds its Jenkins jobs from the same answers: the job name and the parameter
names a seeded job must define are exactly what the backend will send.
"""

from __future__ import annotations

from deployfw.backends import ModuleJob
from deployfw.builds.contract import (
    CONTRACT_VARIABLES,
    BuildInputs,
    account_from_uri,
    build_option,
    contract_env,
    with_endpoint,
)
from deployfw.config import Module

DEFAULT_QUEUE_TIMEOUT_MINUTES = 30.0
COMMIT_PARAMETER = "GIT_COMMIT"
ENDPOINT_PARAMETER = "AWS_ENDPOINT_URL"


def job_name(module: Module) -> str:
    """``folder/job``: option ``job`` (default ``MODULE-build``) inside option ``folder``."""
    job = str(build_option(module, "job") or f"{module.name}-build")
    folder = build_option(module, "folder")
    return f"{str(folder).strip('/')}/{job}" if folder else job


def user_parameters(module: Module) -> dict[str, str]:
    """The module's extra ``parameters`` option, as strings."""
    extra = build_option(module, "parameters") or {}
    return {str(k): str(v) for k, v in dict(extra).items()}  # type: ignore[call-overload]


def parameter_names(module: Module) -> list[str]:
    """Every parameter the backend may send: what a job for this module should define."""
    names = [*CONTRACT_VARIABLES, COMMIT_PARAMETER, ENDPOINT_PARAMETER, *user_parameters(module)]
    return list(dict.fromkeys(names))


def job_parameters(job: ModuleJob) -> dict[str, str]:
    """The trigger's parameters: user parameters under the build contract and the head commit.

    The contract wins: a user parameter named ``IMAGE_TAG`` would push the image under
    a tag the registry never looks for.
    """
    assert job.image is not None
    ctx = job.ctx
    inputs = BuildInputs(job.image, account_from_uri(job.image.repository_uri), ctx.region, ctx.run_id)
    params = user_parameters(job.module)
    params.update(with_endpoint(contract_env(job.module, inputs), ctx.endpoint_url))
    params[COMMIT_PARAMETER] = ctx.head
    return params


def queue_timeout_seconds(module: Module) -> float:
    """How long the build may wait in the queue (option ``queue_timeout_minutes``, default 30)."""
    minutes = build_option(module, "queue_timeout_minutes", DEFAULT_QUEUE_TIMEOUT_MINUTES)
    return float(minutes) * 60.0  # type: ignore[arg-type]


def unstable_ok(module: Module) -> bool:
    """Whether an UNSTABLE build counts as a success (option ``unstable_ok``, default false)."""
    return bool(build_option(module, "unstable_ok", False))
