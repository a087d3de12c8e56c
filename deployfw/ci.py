"""Which CI system started us, and what it tells us about the commits to compare.

deployfw runs unchanged under Jenkins, CodeBuild, GitHub Actions and a plain
terminal. Each CI names the previous good commit and the current one in its own
variables; this module reads them so the rest of the code never looks at the
environment directly. The context also decides the log style (no live view in
CI) and gives a link to the build for reports.
"""

from __future__ import annotations

import json
import re
import urllib.parse
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
    repository_url: str | None = None  # web address of the repository (see :func:`web_url`), for report links

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
            web_url(env.get("GIT_URL")),
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
            web_url(env.get("CODEBUILD_SOURCE_REPO_URL")),
        )
    if env.get("GITHUB_ACTIONS") == "true":
        base = _github_base(env)
        run_url: str | None = None
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        if "GITHUB_RUN_ID" in env:
            run_url = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
        repository = web_url(f"{server}/{env['GITHUB_REPOSITORY']}") if "GITHUB_REPOSITORY" in env else None
        return CIContext("github", base, env.get("GITHUB_SHA"), "GITHUB_EVENT_PATH", run_url, repository)
    if env.get("CI", "").lower() in ("true", "1", "yes"):
        # GitLab, CircleCI, Buildkite, Travis, Azure Pipelines...: no commit variables we know,
        # but a CI agent all the same (no terminal to redraw, a disk that may not outlive the build).
        return CIContext("ci", None, None, None, None)
    return CIContext("terminal", None, None, None, None)


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")


def web_url(remote: str | None) -> str | None:
    """The browsable address of a git remote, never with credentials in it.

    ``git@github.com:o/r.git`` and ``https://user:token@github.com/o/r.git`` both give
    ``https://github.com/o/r``: a report must show where the code lives, and must not
    show a token a CI system left in its clone URL. Anything else gives None.
    """
    if not remote:
        return None
    remote = remote.strip()
    scp = _SCP_LIKE.match(remote)
    if scp and "://" not in remote:
        base, path = f"https://{scp.group('host')}", scp.group("path")
    else:
        parts = urllib.parse.urlsplit(remote)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        web = parts.scheme in ("https", "http")  # keeps its scheme and port; ssh/git ones are served over https
        port = f":{parts.port}" if web and parts.port else ""
        base, path = f"{parts.scheme if web else 'https'}://{parts.hostname}{port}", parts.path
    path = path.strip("/").removesuffix(".git")
    return f"{base}/{path}" if path else None


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
