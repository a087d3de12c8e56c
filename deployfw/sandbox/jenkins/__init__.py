"""A Jenkins controller double for tests, the sandbox and demos.

Start one with ``JenkinsDouble().start()`` (or as a context manager), add jobs that run
real commands, point python-jenkins (or deployfw's Jenkins client) at ``.url``.
"""

from __future__ import annotations

from deployfw.sandbox.jenkins.faults import Fault
from deployfw.sandbox.jenkins.requestlog import LoggedRequest
from deployfw.sandbox.jenkins.server import JenkinsDouble

__all__ = ["Fault", "JenkinsDouble", "LoggedRequest"]
