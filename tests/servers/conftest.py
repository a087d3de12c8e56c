"""Fixtures for the server-deployment tests: one in-process sandbox per test module for the platform tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def box() -> Iterator[Any]:
    """An AWS sandbox with its fleet; tests use distinct application names, so they never meet."""
    from deployfw.sandbox.aws import AwsSandbox, Timings

    with AwsSandbox(port=0, timings=Timings(deploy_step=0.0, tick=0.02)) as sandbox:
        yield sandbox
