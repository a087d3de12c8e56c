"""The run page as HTML text: honest about what the report holds, escaped, masked, and linked only where known.

The reports are JSON files written by real runs of the example against the sandbox
(``data/``: a run where user-api's deployment rolled back, and a ``-e mixed`` run with
a failed Jenkins build); tests change a copy where a case needs a field those runs
cannot produce (a repository address from CI, real AWS, server instances).
"""

from __future__ import annotations

import copy
import html.parser
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployfw import redact
from deployfw.report_html import render
from deployfw.testing import CliResult, run_cli, terminal_env

DATA = Path(__file__).parent / "data"


@pytest.fixture
def failed() -> dict[str, Any]:
    return json.loads((DATA / "failed-run.json").read_text())


@pytest.fixture
def mixed() -> dict[str, Any]:
    return json.loads((DATA / "mixed-run.json").read_text())


class Outline(html.parser.HTMLParser):
    """Tags, attributes and text of a page, and whether anything would be fetched."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def hrefs(self) -> list[str]:
        return [str(a["href"]) for t, a in self.tags if t == "a" and not str(a["href"]).startswith("#")]


def test_page_needs_nothing_from_outside(failed: dict[str, Any]) -> None:
    outline = Outline(render(failed))
    assert [t for t, _ in outline.tags if t in ("script", "link", "img", "iframe", "object", "embed")] == []
    assert all("src" not in attrs for _, attrs in outline.tags)
    assert not any("url(" in text for text in outline.text), "no stylesheet fetches (fonts, images)"


def test_a_report_without_times_draws_no_timeline(failed: dict[str, Any]) -> None:
    old = copy.deepcopy(failed)
    for key in ("started_at", "ended_at"):
        old.pop(key)
    for module in old["modules"]:
        for key in ("started_at", "ended_at", "timeline", "after"):
            module.pop(key)
        for stage in module["stages"]:
            for key in ("started_at", "ended_at", "log_tail"):
                stage.pop(key)
    page = render(old)
    outline = Outline(page)
    assert outline.all("svg", **{"class": "bars"}) == []
    assert "no stage times" in page
    assert len(outline.all("tr", **{"data-status": "failed"})) == 1, "the table still tells the outcome"
    assert "The report holds no log lines for this failure." in page


def test_report_text_is_escaped(failed: dict[str, Any]) -> None:
    hostile = copy.deepcopy(failed)
    user_api = next(m for m in hostile["modules"] if m["name"] == "user-api")
    deploy = next(s for s in user_api["stages"] if s["stage"] == "deploy")
    deploy["error"] = "<script>alert(1)</script>"
    deploy["log_tail"] = ['"><img src=x onerror=alert(2)>']
    page = render(hostile)
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not any(t in ("script", "img") for t, _ in Outline(page).tags)


def test_registered_secrets_never_reach_the_page(failed: dict[str, Any]) -> None:
    secret = "pageSECRET-9d2f71aa"
    redact.register(secret)
    leaky = copy.deepcopy(failed)
    user_api = next(m for m in leaky["modules"] if m["name"] == "user-api")
    next(s for s in user_api["stages"] if s["stage"] == "deploy")["log_tail"].append(f"token={secret}")
    user_api["reason"] = f"changed: {secret}.txt"
    page = render(leaky)
    assert secret not in page
    assert f"token={redact.MASK}" in page


def test_no_console_links_for_a_sandbox_run_and_the_right_ones_for_aws(failed: dict[str, Any]) -> None:
    assert failed["aws_endpoint"].startswith("http://127.0.0.1:")
    assert not any("console.aws.amazon.com" in href for href in Outline(render(failed)).hrefs())
    real = copy.deepcopy(failed)
    real["aws_endpoint"] = None
    hrefs = Outline(render(real)).hrefs()
    user_api = next(m for m in real["modules"] if m["name"] == "user-api")["deploy"]
    region = real["region"]
    deployment = (
        f"https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{user_api['id']}?region={region}"
    )
    rollback = deployment.replace(user_api["id"], user_api["rollback_deployment_id"])
    assert deployment in hrefs and rollback in hrefs
    product = next(m for m in real["modules"] if m["name"] == "product-api")["deploy"]
    service = f"/ecs/v2/clusters/{product['cluster']}/services/{product['service']}/deployments?region={region}"
    assert any(href.endswith(service) for href in hrefs)
    order = next(m for m in real["modules"] if m["name"] == "order-api")["build"]
    assert order["backend"] == "codebuild"
    assert any(f"/codesuite/codebuild/projects/{order['project']}/build/" in href for href in hrefs)


@pytest.mark.parametrize(
    ("repository", "compare", "commit"),
    [
        (
            "https://github.com/o/shop",
            "https://github.com/o/shop/compare/{base}...{head}",
            "https://github.com/o/shop/commit/{head}",
        ),
        (
            "https://gitlab.com/g/shop",
            "https://gitlab.com/g/shop/-/compare/{base}...{head}",
            "https://gitlab.com/g/shop/-/commit/{head}",
        ),
        ("https://git.example.com/o/shop", None, None),
    ],
)
def test_commits_link_to_the_repository_only_where_its_pages_are_known(
    failed: dict[str, Any], repository: str, compare: str | None, commit: str | None
) -> None:
    report = copy.deepcopy(failed)
    report["repository_url"] = repository
    base, head = "b" * 40, report["head"]
    report["base"] = base
    hrefs = Outline(render(report)).hrefs()
    if compare is None:
        assert not any("/compare/" in h or "/commit/" in h for h in hrefs)
        assert repository in hrefs
    else:
        assert compare.format(base=base, head=head) in hrefs
    without_base = copy.deepcopy(report)
    without_base["base"] = None
    hrefs = Outline(render(without_base)).hrefs()
    if commit is not None:
        assert commit.format(head=head) in hrefs


def test_server_instances_are_listed(failed: dict[str, Any]) -> None:
    report = copy.deepcopy(failed)
    user_api = next(m for m in report["modules"] if m["name"] == "user-api")
    user_api["deploy"]["instances"] = [
        {"id": "idc-web-1", "status": "Succeeded", "failed_event": None},
        {"id": "idc-web-2", "status": "Failed", "failed_event": "ValidateService"},
    ]
    page = render(report)
    assert "<h3>Instances</h3>" in page
    assert "idc-web-2" in page and "ValidateService" in page


def test_mixed_run_page_names_the_jenkins_build(mixed: dict[str, Any]) -> None:
    product = next(m for m in mixed["modules"] if m["name"] == "product-api")
    assert product["build"]["backend"] == "jenkins" and product["status"] == "failed"
    outline = Outline(render(mixed))
    assert product["build"]["url"] in outline.hrefs()
    failures = [a["data-module"] for a in outline.all("article", **{"class": "failure"})]
    assert sorted(failures) == sorted(m["name"] for m in mixed["modules"] if m["status"] == "failed")


def test_report_html_command(tmp_path: Path) -> None:
    invoke: Callable[..., CliResult] = lambda *argv: run_cli(terminal_env(), tmp_path, *argv)  # noqa: E731
    done = invoke("report", "html", str(DATA / "failed-run.json"))
    assert done.code == 0, done.output
    assert done.stdout.startswith("<!DOCTYPE html>") and done.stdout.rstrip().endswith("</html>")
    assert invoke("report", "html", str(DATA / "failed-run.json"), "-o", "page/r.html").code == 0
    assert (tmp_path / "page/r.html").read_text() == done.stdout
    (tmp_path / "broken.json").write_text('{"status": "failed",\n "modules": [}\n')
    bad = invoke("report", "html", "broken.json")
    assert bad.code == 2 and bad.stdout == ""
    assert bad.stderr.startswith("deployfw: error: broken.json:2: not JSON")
    (tmp_path / "other.json").write_text('{"modules": [{"status": "ok"}]}')
    other = invoke("report", "html", "other.json")
    assert other.code == 2 and "other.json: modules.0: not a deployfw run report" in other.stderr
    assert invoke("report", "html", "missing.json").code == 2
