"""Fixtures of the notification tests: a local Slack-shaped receiver per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notify_kit import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver().start()
    yield box
    box.stop()
