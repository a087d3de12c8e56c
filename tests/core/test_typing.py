"""The code type-checks: mypy, run as the project configures it, finds nothing.

The configuration is the one in pyproject.toml (``[tool.mypy]``: the ``deployfw`` and
``plugins`` trees, with every ``deployfw`` function required to be fully annotated), so
this is exactly what ``mypy`` with no arguments reports at the repository root. mypy's
incremental cache (``.mypy_cache`` there, as for a developer) makes later runs cheap.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_reports_no_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # mypy reads pyproject.toml and resolves its file list from the working directory
    stdout, stderr, status = api.run([])
    assert status == 0, f"mypy exited {status}:\n{stdout}{stderr}"
    assert "Success: no issues found" in stdout, stdout
