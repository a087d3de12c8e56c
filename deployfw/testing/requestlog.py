"""Filters over the AWS sandbox's request log (``GET /_sandbox/requests``).

The log is how a test judges what deployfw *did* rather than what it printed: every AWS
call the sandbox answered, in order, as a dict with at least ``service``, ``operation``,
``status`` and ``params`` (the operation's key parameters - names of groups, services,
task definitions). Two questions come up in almost every end-to-end test, for deployfw
and for a plugin's backend alike:

- "was this call made, with these parameters, and how often?" - :func:`calls`;
- "did a read-only command (``plan``, ``--dry-run``, a rejected input) change anything?"
  - :func:`mutating`, which must then be empty.

Entries come from :meth:`deployfw.testing.sandbox_process.SandboxProcess.requests` (or the
in-process ``aws_sandbox`` fixture's ``requests()``)::

    sandbox.clear_requests()
    run_cli(sandbox.run_env(), repo, "plan")
    assert mutating(sandbox.requests()) == []
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MUTATING_PREFIXES", "calls", "mutating"]

# Every AWS API that changes something starts with one of these verbs.
MUTATING_PREFIXES = (
    "Create", "Delete", "Put", "Register", "Deregister", "Update", "Start", "Stop", "Tag", "Untag",
    "Initiate", "Upload", "Complete", "BatchDelete", "Modify", "Set", "Continue",
)  # fmt: skip


def calls(requests: Iterable[Mapping[str, Any]], operation: str, **params: Any) -> list[Mapping[str, Any]]:
    """Requests of one operation whose logged key parameters include ``params`` (equal values)."""
    return [
        r for r in requests
        if r["operation"] == operation and all(r.get("params", {}).get(k) == v for k, v in params.items())
    ]  # fmt: skip


def mutating(requests: Iterable[Mapping[str, Any]]) -> list[str]:
    """``service:Operation`` of every request that changes something (whatever its answer), in log order."""
    return [f"{r['service']}:{r['operation']}" for r in requests if str(r["operation"]).startswith(MUTATING_PREFIXES)]
