"""Fixtures for the image tests: build contexts on disk and an in-process moto ECR."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under ``root``; ``*.sh`` become executable."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        if rel.endswith(".sh"):
            path.chmod(0o750)
    return root


@pytest.fixture
def tree() -> Any:
    """The :func:`write_tree` helper, as a fixture (tests/ has no packages to import from)."""
    return write_tree


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A small service directory with nested files and an executable script."""
    return write_tree(
        tmp_path / "app",
        {
            "main.py": "print('hello')\n",
            "run.sh": "#!/bin/sh\nexec python main.py\n",
            "pkg/__init__.py": "",
            "pkg/z.txt": "z",
            "pkg-data/a.txt": "a",
        },
    )


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 ECR client talking to moto in-process (no endpoint, no network)."""
    for var in list(os.environ):
        if var.startswith("AWS_ENDPOINT_URL") or var in ("AWS_PROFILE", "AWS_REGION"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ecr", region_name=REGION)
