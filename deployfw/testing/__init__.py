"""A pytest kit for deployfw and its plugin authors.

Installed with deployfw and registered under the ``pytest11`` entry point, so a
plugin's own test suite gets these fixtures without any conftest:

- ``git_repo``: build a real git repository from a dict of files, commit more
  changes, and read SHAs (see :class:`GitRepoBuilder`).
- ``aws_sandbox``: a started embedded AWS sandbox (moto server with real
  CodeDeploy/ECS/CodeBuild lifecycles) and its endpoint.
- ``jenkins_double``: a started Jenkins controller double for python-jenkins.

Importing this package is cheap; the sandbox is imported only by the fixtures
that start it.
"""

from __future__ import annotations

from deployfw.testing.gitrepo import GitRepoBuilder

__all__ = ["GitRepoBuilder"]
