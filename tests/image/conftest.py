"""Fixtures for the image tests: build contexts on disk and an ECR on an in-process sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

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
def ecr(monkeypatch: pytest.MonkeyPatch, aws_sandbox: Any) -> Iterator[Any]:
    """A boto3 ECR client on an in-process sandbox; deployfw's own clients in this process reach it too.

    moto's state is process-wide and other sandboxes of this test process may be serving from
    it, so nothing is reset: the repositories a test creates are deleted after it instead.
    """
    for var in list(os.environ):
        if var.startswith("AWS_ENDPOINT_URL") or var in ("AWS_PROFILE", "AWS_REGION"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_sandbox.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ecr", region_name=REGION)
    before = {r["repositoryName"] for r in client.describe_repositories()["repositories"]}
    yield client
    for name in {r["repositoryName"] for r in client.describe_repositories()["repositories"]} - before:
        client.delete_repository(repositoryName=name, force=True)
