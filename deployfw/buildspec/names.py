"""Expand ``artifacts.name``, which CodeBuild evaluates with the shell.

CodeBuild documents the name as shell command language
(``myname-$(date +%Y-%m-%d)``, ``$CODEBUILD_BUILD_NUMBER``). The name goes
into an unquoted here-document in a script file, which applies parameter,
command and arithmetic expansion but no word splitting or globbing, and is
never part of a command line.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from deployfw.buildspec.session import ShellState

_TIMEOUT_SECONDS = 30


def expand_name(name: str, *, shell: str, state: ShellState) -> str:
    """Return ``name`` after shell expansion in the build's final environment."""
    delimiter = "__DEPLOYFW_ARTIFACT_NAME__"
    while delimiter in name:
        delimiter += "_"
    script = f"cat <<{delimiter}\n{name}\n{delimiter}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
        handle.write(script)
    path = Path(handle.name)
    try:
        completed = subprocess.run(
            [shell, str(path)],
            cwd=state.cwd if state.cwd.is_dir() else None,
            env=state.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        path.unlink(missing_ok=True)
    if completed.returncode != 0:
        return name
    return completed.stdout.decode("utf-8", "replace").rstrip("\n") or name
