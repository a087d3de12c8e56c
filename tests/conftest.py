"""Suite-wide collection order: files marked ``long`` run first.

The suite runs on pytest-xdist workers, one test file per work unit (``--dist loadfile``),
handed out in collection order. A file of a minute or more handed out last keeps one worker
busy while the others have nothing left, so those files go first; every other file keeps
its place. Tests within a file keep their order (some build on each other).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: files stay whole
