"""deployfw's Jenkins integration: the Jenkins client boundary and (later) the ``jenkins`` build backend.

Importing this package is free: python-jenkins is only imported by
:mod:`deployfw_jenkins.client`, so ``deployfw --help`` never pays for it.
"""

from __future__ import annotations
