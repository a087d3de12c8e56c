"""Start a CodeBuild build exactly once, even when the answer to StartBuild is lost.

StartBuild is not idempotent: retrying it blindly after a timeout or a 5xx can
start a second build that pushes the same tags. So it is called without the
boundary's automatic retry, and after an *ambiguous* failure (no answer,
throttling, a server error) we first look for a build this run already started
- every build carries ``DEPLOYFW_RUN_ID`` and ``DEPLOYFW_MODULE`` in its
environment - and adopt it; only when there is none do we try again, for as
long as the AWS boundary retries any call (its deadline), never a fixed count:
under heavy throttling a fixed count gives up on calls any other operation
would still be retrying. A definite refusal (missing project, bad parameters)
fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from deployfw.aws.clients import RETRYABLE_CODES, Aws, AwsError

FIRST_PAUSE = 0.5  # seconds before the second attempt; doubled each time up to MAX_PAUSE
MAX_PAUSE = 8.0
_RECENT_BUILDS = 20  # a run's own build is among the newest few of its project


def is_ambiguous(exc: AwsError) -> bool:
    """Whether the build may have started although the call failed."""
    return exc.code is None or exc.code in RETRYABLE_CODES


def build_env_value(build: Mapping[str, Any], name: str) -> str | None:
    """The value of environment variable ``name`` in a ``BatchGetBuilds`` build."""
    for variable in (build.get("environment") or {}).get("environmentVariables") or []:
        if variable.get("name") == name:
            return variable.get("value")
    return None


def find_run_build(aws: Aws, project: str, run_id: str, module: str) -> dict[str, Any] | None:
    """The newest build of ``project`` started by this run for ``module``, if any."""
    ids = aws.call("codebuild", "list_builds_for_project", projectName=project, sortOrder="DESCENDING").get("ids")
    ids = list(ids or [])[:_RECENT_BUILDS]
    if not ids:
        return None
    for build in aws.call("codebuild", "batch_get_builds", ids=ids).get("builds") or []:
        if build_env_value(build, "DEPLOYFW_RUN_ID") == run_id and build_env_value(build, "DEPLOYFW_MODULE") == module:
            return build
    return None


def start_once(
    aws: Aws,
    params: Mapping[str, Any],
    *,
    run_id: str,
    module: str,
    log: Callable[[str], None],
    wait: Callable[[float], bool],
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """StartBuild with ``params``; adopt this run's build after an ambiguous failure.

    ``wait(seconds)`` pauses between attempts and returns True when the run was
    cancelled meanwhile (then the last error is raised). Attempts go on until
    ``aws.deadline`` seconds (by ``clock``) have passed. Returns the build.
    """
    project = params["projectName"]
    give_up = clock() + aws.deadline
    last: AwsError | None = None
    attempt = 0
    while attempt == 0 or clock() < give_up:
        if attempt:
            cancelled = wait(min(FIRST_PAUSE * 2.0 ** (attempt - 1), MAX_PAUSE))
            found = find_run_build(aws, project, run_id, module)
            if found is not None:  # adopted even when cancelled, so the caller can stop it
                log(f"adopted build {found['id']} that the failed StartBuild call had started")
                return found
            if cancelled:
                break
        attempt += 1
        try:
            return aws.call("codebuild", "start_build", deadline=0, **params)["build"]
        except AwsError as exc:
            if not is_ambiguous(exc):
                raise
            last = exc
            why = exc.code or "no response"
            log(f"StartBuild on {project} did not answer clearly ({why}); checking before retrying")
    assert last is not None
    raise last
