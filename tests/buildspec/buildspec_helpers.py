"""Shared helpers for the buildspec tests: write, load and run a buildspec in a temp dir."""

from __future__ import annotations

import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployfw.buildspec import BuildspecResult, load_buildspec, run_buildspec


@dataclass
class Run:
    """A finished run: its result, the emitted lines and the phase callbacks."""

    result: BuildspecResult
    lines: list[str] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)

    @property
    def output(self) -> list[str]:
        """Emitted lines that came from the commands (not the runner's own markers)."""
        return [line for line in self.lines if not line.startswith("[Container]")]

    def phase_status(self) -> dict[str, str]:
        return {p.name: p.status for p in self.result.phases}


def run(
    text: str, workdir: Path, *, env: dict[str, str] | None = None, cancel: threading.Event | None = None, **kwargs: Any
) -> Run:
    """Load ``text`` (dedented) and run it in ``workdir``, collecting emitted lines."""
    spec = load_buildspec(textwrap.dedent(text), "buildspec.yml")
    lines: list[str] = []
    entered: list[str] = []
    result = run_buildspec(
        spec,
        workdir=workdir,
        env=env or {},
        emit=lines.append,
        cancel=cancel,
        phase_callback=entered.append,
        **kwargs,
    )
    return Run(result, lines, entered)
