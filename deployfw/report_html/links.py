"""Where a reader of the run page can click through to: commits, CI builds, AWS consoles.

A link is drawn only when the report holds what it needs and the address is known
to be right: commit and compare pages for the hosts whose URL scheme is known
(GitHub, GitLab, Bitbucket, CodeCommit), AWS console pages only for runs against
real AWS (a run against a custom endpoint - the sandbox - has ids no console knows).
Everything else stays plain text.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_CODECOMMIT = re.compile(r"^https://git-codecommit\.([a-z0-9-]+)\.amazonaws\.com/v1/repos/([^/]+)$")


@dataclass(frozen=True)
class Link:
    text: str
    href: str


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


@dataclass(frozen=True)
class Repository:
    """Commit and compare pages of a repository's web address (``repository_url`` in the report)."""

    url: str

    def _kind(self) -> str | None:
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if _CODECOMMIT.match(self.url):
            return "codecommit"
        if host == "github.com" or host.startswith("github."):
            return "github"
        if host == "gitlab.com" or host.startswith("gitlab."):
            return "gitlab"
        if host == "bitbucket.org":
            return "bitbucket"
        return None

    def home(self) -> Link:
        found = _CODECOMMIT.match(self.url)
        if found:
            region, name = found.groups()
            return Link(name, f"{_console(region)}/codesuite/codecommit/repositories/{_q(name)}/browse?region={region}")
        return Link(self.url, self.url)

    def commit(self, sha: str) -> Link | None:
        kind = self._kind()
        text = sha[:12]
        if kind == "github":
            return Link(text, f"{self.url}/commit/{sha}")
        if kind == "gitlab":
            return Link(text, f"{self.url}/-/commit/{sha}")
        if kind == "bitbucket":
            return Link(text, f"{self.url}/commits/{sha}")
        found = _CODECOMMIT.match(self.url)
        if found:
            region, name = found.groups()
            href = f"{_console(region)}/codesuite/codecommit/repositories/{_q(name)}/commit/{sha}?region={region}"
            return Link(text, href)
        return None

    def compare(self, base: str, head: str) -> Link | None:
        kind = self._kind()
        text = f"{base[:12]}..{head[:12]}"
        if kind == "github":
            return Link(text, f"{self.url}/compare/{base}...{head}")
        if kind == "gitlab":
            return Link(text, f"{self.url}/-/compare/{base}...{head}")
        return None


def build_links(build: Mapping[str, Any], region: str | None, real_aws: bool) -> list[Link]:
    """The build's own page: a Jenkins build URL, or CodeBuild's console and log pages."""
    links: list[Link] = []
    backend = build.get("backend")
    if backend == "jenkins" and isinstance(build.get("url"), str) and build["url"].startswith(("http://", "https://")):
        number = build.get("number")
        links.append(Link(f"Jenkins build #{number}" if number else "Jenkins build", build["url"]))
    build_id = build.get("build_id")
    if backend == "codebuild" and real_aws and region and isinstance(build_id, str) and ":" in build_id:
        project = build_id.split(":", 1)[0]
        href = f"{_console(region)}/codesuite/codebuild/projects/{_q(project)}/build/{_q(build_id)}/?region={region}"
        links.append(Link("CodeBuild build", href))
        logs = build.get("logs")
        if isinstance(logs, str) and logs.startswith("https://console.aws.amazon.com/"):
            links.append(Link("CloudWatch log", logs))
    return links


def deploy_links(deploy: Mapping[str, Any], region: str | None, real_aws: bool) -> list[Link]:
    """The deployment's console pages: CodeDeploy deployments (and their rollback), ECS services."""
    if not (real_aws and region):
        return []
    links: list[Link] = []
    for key, text in (("id", "CodeDeploy deployment"), ("rollback_deployment_id", "rollback deployment")):
        value = deploy.get(key)
        if isinstance(value, str) and value.startswith("d-"):
            href = f"{_console(region)}/codesuite/codedeploy/deployments/{_q(value)}?region={region}"
            links.append(Link(f"{text} {value}", href))
    cluster, service = deploy.get("cluster"), deploy.get("service")
    if isinstance(cluster, str) and isinstance(service, str):
        href = f"{_console(region)}/ecs/v2/clusters/{_q(cluster)}/services/{_q(service)}/deployments?region={region}"
        links.append(Link(f"ECS service {cluster}/{service}", href))
    return links
