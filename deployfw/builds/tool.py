"""The running deployfw, made reachable from every build it starts.

Buildspecs call deployfw themselves (``deployfw image build ... --push``). Whether the word
``deployfw`` resolves depends on the caller's PATH, and the callers that matter most do not
activate anything: the shipped Jenkinsfile runs ``.venv/bin/deployfw``, cron jobs and CI scripts
call it by its full path. So every build deployfw runs (the ``local`` backend, ``deployfw build``,
the sandbox's CodeBuild and Jenkins stand-ins) gets:

* ``DEPLOYFW``: the executable of the deployfw that started the build (``"$DEPLOYFW" image build``
  always means *this* deployfw);
* ``PATH`` with that executable's folder and this interpreter's ``bin`` folder first, so a plain
  ``deployfw`` (and ``python3``, ``pip``) resolve to the same installation.

When no ``deployfw`` script exists (run as ``python -m deployfw`` from a source tree), a
two-line shim that runs this interpreter with ``-m deployfw`` is written once per process.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

EXECUTABLE_VARIABLE = "DEPLOYFW"
_NAME = "deployfw"
_lock = threading.Lock()
_shim: Path | None = None


def executable() -> str:
    """The path of the deployfw command this process runs as (or a shim for it)."""
    launched = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if launched is not None and launched.name == _NAME and _is_executable(launched):
        return str(launched.absolute())
    sibling = Path(sys.executable).with_name(_NAME)  # the venv's bin folder: not resolved, on purpose
    if _is_executable(sibling):
        return str(sibling)
    return str(_make_shim())


def tool_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``DEPLOYFW`` and a ``PATH`` that finds this deployfw first (from ``environ``'s PATH, default ours)."""
    env = os.environ if environ is None else environ
    exe = executable()
    first = list(dict.fromkeys([str(Path(exe).parent), str(Path(sys.executable).parent)]))
    rest = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p not in first]
    return {EXECUTABLE_VARIABLE: exe, "PATH": os.pathsep.join(first + rest)}


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _make_shim() -> Path:
    """``deployfw`` in a private folder: ``exec <this python> -P -m deployfw "$@"`` (removed at exit)."""
    global _shim
    with _lock:
        if _shim is None or not _shim.exists():
            folder = Path(tempfile.mkdtemp(prefix="deployfw-bin-"))
            atexit.register(shutil.rmtree, folder, True)
            shim = folder / _NAME
            # -P: the build's working directory must not shadow the installed package.
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -P -m deployfw "$@"\n', encoding="utf-8")
            shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            _shim = shim
        return _shim
