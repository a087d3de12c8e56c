"""Generated Gradle and Maven repositories on disk for the build-graph readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    """``tree({"settings.gradle": "...", "a/build.gradle": "..."})`` writes the files and returns the folder."""

    def write(files: Mapping[str, str]) -> Path:
        for rel, text in files.items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return tmp_path

    return write
