"""Fixtures for the run page tests: real runs of the example and a headless Chromium to look at their pages.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by
Playwright over the DevTools protocol and started the way a closed network needs:
no background networking, component updates, sync or QUIC, and a fresh profile.
Every page is opened with a recorder of console messages, page errors and network
requests, so a test can assert the page is self-contained, and a full-page
screenshot is saved under the test's tmp folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_kit import CHROMIUM, CLOSED_NETWORK_FLAGS, DESKTOP, REPOSITORY, Opened

from deployfw.testing import copy_checkout


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (fresh profile) for the session."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CLOSED_NETWORK_FLAGS, viewport=DESKTOP
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """``open_page(url, name, viewport=DESKTOP)``: load ``url``, record what happened, save a screenshot."""
    pages: list[Any] = []

    def load(url: str, name: str, viewport: dict[str, int] = DESKTOP) -> Opened:
        page = browser.new_page()
        pages.append(page)
        page.set_viewport_size(viewport)
        opened = Opened(page)
        page.on("console", lambda message: opened.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        page.on("request", lambda request: opened.requests.append(request.url))
        page.goto(url, wait_until="load")
        opened.screenshot = tmp_path / f"{name}.png"
        page.screenshot(path=str(opened.screenshot), full_page=True)
        return opened

    yield load
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of this checkout (the example's modules.yaml at its root)."""
    return copy_checkout(REPOSITORY, tmp_path_factory.mktemp("report") / "repo", message="example").path
