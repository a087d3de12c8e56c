"""deployfw: deploy the changed service modules of a multi-module repository.

The package root stays import-light on purpose: ``deployfw --help`` and
``deployfw detect`` must start fast, so nothing here pulls in boto3 or jenkins.
"""

from __future__ import annotations

__version__ = "0.1.0"
