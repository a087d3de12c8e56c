"""deployfw-webhook: tell a chat room, dashboard or audit log what a deploy run did.

The hooks live in :mod:`deployfw_webhook.plugin`, the module the ``webhook``
entry point names; this package only carries the version so that importing it
stays free.
"""

from __future__ import annotations

__version__ = "0.1.0"
