"""A pytest kit for deployfw and its plugin authors.

Installed with deployfw and registered under the ``pytest11`` entry point, so a
plugin's own test suite gets these fixtures without any conftest:

- ``git_repo``: build a real git repository from a dict of files, commit more
  changes, and read SHAs (see :class:`GitRepoBuilder`); :func:`copy_checkout` commits a
  copy of a checkout's tracked files (its own example, work in progress included).
- ``aws_sandbox``: a started embedded AWS sandbox (moto server with real
  CodeDeploy/ECS/CodeBuild lifecycles) and its endpoint.
- ``jenkins_double``: a started Jenkins controller double for python-jenkins.

For end-to-end tests through the real CLI (deployfw's own suites use them too):

- :mod:`deployfw.testing.sandbox_process`: :class:`SandboxProcess`, ``deployfw sandbox``
  in its own process with its request log, faults, boto3 clients, the environment to
  point deployfw at it and the state scope runs against it use;
- :mod:`deployfw.testing.cli`: :func:`run_cli` (``deployfw ARGV`` in-process with a
  whole replaced environment) returning a :class:`CliResult`, and :func:`terminal_env`
  (this environment without CI/AWS/Jenkins/deployfw variables);
- :mod:`deployfw.testing.requestlog`: :func:`calls` and :func:`mutating`, filters over
  the sandbox's request log;
- :mod:`deployfw.testing.images`: :func:`~deployfw.testing.images.image_for`, a runnable
  image pushed to the sandbox's ECR (its tasks run real processes from pushed images).

Importing this package is cheap - pytest loads it for every run: the names above are
imported on first use, and the sandbox, boto3 and moto only by the code that starts or
talks to a sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deployfw.testing.gitrepo import GitRepoBuilder, copy_checkout

if TYPE_CHECKING:
    from deployfw.testing.cli import CliResult, run_cli, terminal_env
    from deployfw.testing.requestlog import calls, mutating
    from deployfw.testing.sandbox_process import SandboxProcess

__all__ = [
    "CliResult",
    "GitRepoBuilder",
    "SandboxProcess",
    "calls",
    "copy_checkout",
    "mutating",
    "run_cli",
    "terminal_env",
]

_LAZY = {
    "CliResult": "deployfw.testing.cli",
    "run_cli": "deployfw.testing.cli",
    "terminal_env": "deployfw.testing.cli",
    "calls": "deployfw.testing.requestlog",
    "mutating": "deployfw.testing.requestlog",
    "SandboxProcess": "deployfw.testing.sandbox_process",
}


def __getattr__(name: str) -> Any:
    """Import the end-to-end helpers on first use (PEP 562), keeping the plugin's import cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
