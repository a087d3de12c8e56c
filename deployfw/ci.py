"""Which CI system started us, and what it tells us about the commits to compare.

deployfw runs unchanged under Jenkins, CodeBuild, GitHub Actions and a plain
terminal. Each CI names the previous good commit and the current one in its own
variables; this module reads them so the rest of the code never looks at the
environment directly. The context also decides the log style (no live view in
CI) and gives a link to the build for reports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_NULL_SHA = "0" * 40


@dataclass(frozen=True)
class CIContext:
    """What the CI system says about this run."""

    name: str  # "jenkins" | "codebuild" | "github" | "ci" (another CI that sets CI=true) | "terminal"
    base: str | None
    head: str | None
    base_source: str | None  # the variable the base came from, for messages
    build_url: str | None

    @property
    def is_ci(self) -> bool:
        return self.name != "terminal"

    @property
    def title(self) -> str:
        """The CI system's name as its users write it, for messages."""
        return _TITLES.get(self.name, self.name)


_TITLES = {"jenkins": "Jenkins", "codebuild": "CodeBuild", "github": "GitHub Actions", "ci": "CI"}


def detect_ci(environ: Mapping[str, str]) -> CIContext:
    """Recognise the CI system from its variables; a terminal when none match."""
    # An all-zero SHA is how webhooks say "no previous commit" (first push of a branch):
    # treat it as unset rather than as a commit to look for (and deepen a clone for).
    env = {k: v for k, v in environ.items() if v and v != _NULL_SHA}
    if "JOB_NAME" in env and "BUILD_NUMBER" in env and "JENKINS_URL" in env:
        return CIContext(
            "jenkins",
            env.get("GIT_PREVIOUS_SUCCESSFUL_COMMIT"),
            env.get("GIT_COMMIT"),
            "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
            env.get("BUILD_URL"),
        )
    if "CODEBUILD_BUILD_ID" in env:
        build_id = env["CODEBUILD_BUILD_ID"]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        project, _, _ = build_id.partition(":")
        url = (
            env.get("CODEBUILD_PUBLIC_BUILD_URL")
            or f"https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{project}"
            f"/build/{build_id.replace(':', '%3A')}"
        )
        return CIContext(
            "codebuild",
            env.get("CODEBUILD_WEBHOOK_PREV_COMMIT"),
            env.get("CODEBUILD_RESOLVED_SOURCE_VERSION"),
            "CODEBUILD_WEBHOOK_PREV_COMMIT",
            url,
        )
    if env.get("GITHUB_ACTIONS") == "true":
        base = _github_base(env)
        run_url = None
        if "GITHUB_RUN_ID" in env:
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            run_url = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
        return CIContext("github", base, env.get("GITHUB_SHA"), "GITHUB_EVENT_PATH", run_url)
    if env.get("CI", "").lower() in ("true", "1", "yes"):
        # GitLab, CircleCI, Buildkite, Travis, Azure Pipelines...: no commit variables we know,
        # but a CI agent all the same (no terminal to redraw, a disk that may not outlive the build).
        return CIContext("ci", None, None, None, None)
    return CIContext("terminal", None, None, None, None)


def _github_base(env: Mapping[str, str]) -> str | None:
    """Push events carry ``before``; pull requests carry ``pull_request.base.sha``."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = (event.get("pull_request") or {}).get("base", {}).get("sha") or event.get("before")
    return base if isinstance(base, str) and base != _NULL_SHA else None
