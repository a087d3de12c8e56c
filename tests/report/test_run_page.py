"""The run page of real runs of the example, as headless Chromium shows it.

Three runs, each ``deployfw run --sandbox ... --html`` in its own process: one that
succeeds (exactly the README's ``deployfw run --sandbox --html r.html``), one where
user-api's deployment fails its health checks and rolls back, and a mixed one (the
``mixed`` environment: Jenkins and CodeBuild builds) where product-api's Jenkins build
fails and order-api's deployment rolls back while the others succeed. Each page is
checked in the DOM the browser built, against the JSON report of the same run.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_kit import PHONE, SERVICES, Opened, Run, run_example

from deployfw.report_html.timeline import parse_time

JENKINS_CSP = "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self';"


@pytest.fixture(scope="module")
def succeeded(example: Path) -> Run:
    run = run_example(example, "succeeded", select_all=False)
    assert run.code == 0, run.output[-4000:]
    return run


@pytest.fixture(scope="module")
def failed(example: Path) -> Run:
    run = run_example(example, "failed", DEPLOYFW_SANDBOX_FAULTS="deploy:user-api")
    assert run.code == 1, run.output[-4000:]
    return run


@pytest.fixture(scope="module")
def mixed(example: Path) -> Run:
    run = run_example(example, "mixed", "-e", "mixed", DEPLOYFW_SANDBOX_FAULTS="build:product-api,deploy:order-api")
    assert run.code == 1, run.output[-4000:]
    return run


def assert_self_contained(opened: Opened, url: str) -> None:
    assert opened.console_errors() == [], opened.console
    assert opened.requests == [url], "the page must fetch nothing but itself"


def rows(opened: Opened) -> dict[str, str]:
    """module -> data-status of the module table's rows, in page order."""
    found = opened.page.locator("table.modules tbody tr.module")
    return {found.nth(i).get_attribute("data-module"): found.nth(i).get_attribute("data-status")
            for i in range(found.count())}  # fmt: skip


def lane(opened: Opened, module: str) -> Any:
    return opened.page.locator(f"ol.lanes li.lane[data-module='{module}']")


def contrast(opened: Opened, selector: str) -> float:
    """WCAG contrast ratio of the first match's text colour against the page background."""
    return float(
        opened.page.evaluate(
            """(selector) => {
                const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
                const lum = ([r, g, b]) => {
                    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
                };
                const el = document.querySelector(selector);
                let bg = 'rgb(255, 255, 255)';
                for (let n = el; n; n = n.parentElement) {
                    const c = getComputedStyle(n).backgroundColor;
                    if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') { bg = c; break; }
                }
                const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(bg))];
                return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            }""",
            selector,
        )
    )


# -- the succeeded run: the README's command ------------------------------------------------------


def test_succeeded_page_has_one_row_per_module_and_fetches_nothing(
    succeeded: Run, open_page: Callable[..., Opened]
) -> None:
    url = succeeded.html.as_uri()
    opened = open_page(url, "succeeded-1280")
    assert_self_contained(opened, url)
    assert rows(opened) == dict.fromkeys(SERVICES, "succeeded")
    page = opened.page
    assert page.locator("#outcome").inner_text() == "succeeded"
    assert page.title().startswith(f"deployfw run {succeeded.report['run_id']}: succeeded")
    assert page.locator("#failures article").count() == 0
    for name in SERVICES:
        stages = lane(opened, name).locator("svg.bars rect.stage")
        assert stages.count() == 3, name  # build, push, deploy: all ran
        assert lane(opened, name).locator("rect.stage.failed").count() == 0
    assert opened.screenshot is not None and opened.screenshot.stat().st_size > 10_000


def test_stage_bars_sit_where_the_report_times_say(succeeded: Run, open_page: Callable[..., Opened]) -> None:
    report = succeeded.report
    start = parse_time(report["started_at"])
    end = parse_time(report["ended_at"])
    assert start is not None and end is not None and end > start
    opened = open_page(succeeded.html.as_uri(), "succeeded-geometry")
    for module in report["modules"]:
        bars = lane(opened, module["name"]).locator("svg.bars rect.stage")
        for index, stage in enumerate(module["stages"]):
            began, ended = parse_time(stage["started_at"]), parse_time(stage["ended_at"])
            assert began is not None and ended is not None and start <= began <= ended <= end, stage
            x = float(bars.nth(index).get_attribute("x").rstrip("%"))
            assert x == pytest.approx((began - start) / (end - start) * 100, abs=0.01), (module["name"], stage)
            assert stage["stage"] in (bars.nth(index).get_attribute("class") or "")


def test_traffic_steps_of_a_linear_deployment_are_drawn(succeeded: Run, open_page: Callable[..., Opened]) -> None:
    marks = [m for m in succeeded.module("order-api")["timeline"] if m["kind"] == "traffic"]
    percents = [m["percent"] for m in marks]
    assert len(percents) >= 2 and percents == sorted(percents) and percents[-1] > percents[0], marks
    assert all(m["stage"] == "deploy" for m in marks)
    opened = open_page(succeeded.html.as_uri(), "succeeded-traffic")
    band = lane(opened, "order-api").locator("rect.traffic")
    assert band.count() == len(marks)
    heights = [float(band.nth(i).get_attribute("height")) for i in range(band.count())]
    assert heights == sorted(heights) and heights[-1] > heights[0]
    # rolling and all-at-once deployments shift no traffic in steps: nothing is drawn for them
    assert lane(opened, "product-api").locator("rect.traffic").count() == 0


def test_page_reads_on_a_phone(succeeded: Run, open_page: Callable[..., Opened]) -> None:
    url = succeeded.html.as_uri()
    opened = open_page(url, "succeeded-phone", PHONE)
    assert_self_contained(opened, url)
    width = opened.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
    for name in SERVICES:
        assert opened.page.locator(f"tr.module[data-module='{name}']").is_visible()
        assert lane(opened, name).locator("svg.bars").bounding_box()["width"] > 200


def test_page_is_accessible_markup_with_readable_contrast(succeeded: Run, open_page: Callable[..., Opened]) -> None:
    opened = open_page(succeeded.html.as_uri(), "succeeded-a11y")
    page = opened.page
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main").count() == 1 and page.locator("h1").count() == 1
    assert page.locator("table.modules th[scope=row]").count() == len(SERVICES)
    for index in range(page.locator("svg.bars").count()):
        label = page.locator("svg.bars").nth(index).get_attribute("aria-label") or ""
        assert "build succeeded" in label and "deploy succeeded" in label, label
    for selector in ("tr.module .status.succeeded", "#outcome", "caption", ".facts dt", "footer p", "a"):
        assert contrast(opened, selector) >= 4.5, selector


# -- the failed, rolled-back run ----------------------------------------------------------------


def test_failed_page_shows_the_failure_its_log_tail_and_the_rollback(
    failed: Run, open_page: Callable[..., Opened]
) -> None:
    user_api = failed.module("user-api")
    deploy_stage = next(s for s in user_api["stages"] if s["stage"] == "deploy")
    assert user_api["status"] == "failed" and user_api["deploy"]["rolled_back"] is True
    assert deploy_stage["status"] == "failed" and 0 < len(deploy_stage["log_tail"]) <= 40
    url = failed.html.as_uri()
    opened = open_page(url, "failed-1280")
    assert_self_contained(opened, url)
    assert rows(opened) == {**dict.fromkeys(SERVICES, "succeeded"), "user-api": "failed"}
    assert opened.page.locator("#outcome").inner_text() == "failed"
    articles = opened.page.locator("#failures article.failure")
    assert articles.count() == 1
    failure = articles.first
    assert failure.get_attribute("data-module") == "user-api"
    assert failure.locator("h3").inner_text() == "user-api: the deploy stage failed"
    assert failure.locator(".error").inner_text() == deploy_stage["error"]
    assert "HEALTH_CONSTRAINTS" in deploy_stage["error"]
    tail = failure.locator("pre.log-tail")
    assert tail.is_visible()
    assert tail.inner_text().splitlines() == deploy_stage["log_tail"]
    rollback = failure.locator(".rollback").inner_text()
    assert rollback == f"Rollback: Rolled back by deployment {user_api['deploy']['rollback_deployment_id']}."
    assert lane(opened, "user-api").locator("rect.stage.deploy.failed").count() == 1
    assert lane(opened, "user-api").locator("g.mark.rolled_back").count() == 1
    assert opened.page.locator("tr.module[data-module='user-api'] .status").inner_text() == "failed - rolled back"


def test_failed_page_under_jenkins_default_csp_still_shows_everything(
    failed: Run, open_page: Callable[..., Opened]
) -> None:
    """Jenkins serves published files with a CSP that blocks inline CSS and scripts: the content must survive."""
    with _serve(failed.html, JENKINS_CSP) as url:
        opened = open_page(url, "failed-jenkins-csp")
    page = opened.page
    assert all(request.startswith(url.rsplit("/", 1)[0]) for request in opened.requests), opened.requests
    # the policy was applied: the inline stylesheet did not load ...
    assert page.evaluate("() => getComputedStyle(document.querySelector('h1 .status')).backgroundColor") in (
        "rgba(0, 0, 0, 0)",
        "transparent",
    )
    assert all("Content Security Policy" in text for text in opened.console_errors()), (opened.console, opened.requests)
    # ... and the content is all there, the lanes in colour
    assert page.locator("table.modules tbody tr.module").count() == len(SERVICES)
    assert page.locator("tr.module[data-module='user-api']").is_visible()
    failure = page.locator("#failures article[data-module='user-api']")
    assert failure.locator(".error").is_visible() and "HEALTH_CONSTRAINTS" in failure.locator(".error").inner_text()
    assert failure.locator("pre.log-tail").is_visible()
    assert page.locator("svg.bars rect.stage").count() == 3 * len(SERVICES)
    fill = page.evaluate("() => getComputedStyle(document.querySelector('rect.stage.failed')).fill")
    assert fill == "rgb(207, 34, 46)"


# -- the mixed run --------------------------------------------------------------------------------


def test_mixed_page_shows_each_outcome_as_the_report_does(mixed: Run, open_page: Callable[..., Opened]) -> None:
    statuses = {m["name"]: m["status"] for m in mixed.report["modules"]}
    assert statuses == {"order-api": "failed", "payment-api": "succeeded", "product-api": "failed",
                        "user-api": "succeeded"}  # fmt: skip
    url = mixed.html.as_uri()
    opened = open_page(url, "mixed-1280")
    assert_self_contained(opened, url)
    assert rows(opened) == statuses
    assert opened.page.locator("#env").inner_text() == "mixed"
    failures = opened.page.locator("#failures article.failure")
    assert sorted(failures.nth(i).get_attribute("data-module") for i in range(failures.count())) == [
        "order-api",
        "product-api",
    ]
    build_failure = opened.page.locator("#failures article[data-module='product-api']")
    assert build_failure.locator("h3").inner_text() == "product-api: the build stage failed"
    assert "Nothing was deployed" in build_failure.locator(".rollback").inner_text()
    assert build_failure.locator("pre.log-tail").inner_text().strip()
    product = lane(opened, "product-api")
    assert product.locator("rect.stage.build.failed").count() == 1
    assert product.locator("rect.stage.deploy").count() == 0, "a stage that never ran is not drawn"
    rolled = opened.page.locator("#failures article[data-module='order-api'] .rollback").inner_text()
    assert rolled.startswith("Rollback: Rolled back by deployment d-")
    # Jenkins builds link to their build; nothing links to the AWS console for a sandbox run
    user_build = mixed.module("user-api")["build"]
    assert user_build["backend"] == "jenkins"
    assert opened.page.locator(f"#module-user-api a[href='{user_build['url']}']").count() == 1
    assert opened.page.locator("a[href*='console.aws.amazon.com']").count() == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    csp = ""

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # browsers ask every server for one; Jenkins has one
            self.send_response(204)
            self.end_headers()
            return
        if self.path != "/report.html":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(html: Path, csp: str) -> Iterator[str]:
    """Serve ``html`` at http://127.0.0.1:PORT/report.html with ``csp``, as Jenkins' HTML Publisher would."""
    handler = type("Handler", (_Handler,), {"body": html.read_bytes(), "csp": csp})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report.html"
    finally:
        server.shutdown()
        server.server_close()
