"""Queue items: the ticket a trigger returns, before (and for a while after) a build exists.

Jenkins answers a trigger with a queue item, not a build. The item waits (quiet period,
then for an executor) with a human-readable ``why``; when it leaves the queue it becomes
a ``LeftItem`` naming its ``executable`` build, or is cancelled. Left items are only
remembered for a while (about five minutes on a real controller), after which asking
for them answers 404: clients must poll promptly, and the double copies that.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployfw.sandbox.jenkins.builds import Build
from deployfw.sandbox.jenkins.jobs import Job

WAITING = "hudson.model.Queue$WaitingItem"
BUILDABLE = "hudson.model.Queue$BuildableItem"
LEFT = "hudson.model.Queue$LeftItem"


@dataclass
class QueueItem:
    """One queued trigger of ``job`` with its resolved parameters."""

    id: int
    job: Job
    parameters: dict[str, str]
    user: str
    in_queue_since: float  # controller clock, seconds
    buildable_at: float
    in_queue_since_ms: int
    build: Build | None = None
    cancelled: bool = False
    left_at: float | None = None

    @property
    def waiting(self) -> bool:
        """True while the item is still in the queue (not built, not cancelled)."""
        return self.left_at is None

    def why(self, now: float, executors_free: bool) -> str | None:
        """Jenkins's explanation of why the item is still waiting (``None`` once left)."""
        if not self.waiting:
            return None
        if now < self.buildable_at:
            return f"In the quiet period. Expires in {max(0.0, self.buildable_at - now):.1f} sec"
        if not executors_free:
            return "Waiting for next available executor"
        return "Waiting for next available executor on 'built-in'"

    def class_name(self, now: float) -> str:
        """The ``_class`` Jenkins reports for the item's current state."""
        if not self.waiting:
            return LEFT
        return WAITING if now < self.buildable_at else BUILDABLE

    def params_text(self) -> str:
        """The queue API's ``params`` string: ``"\\nNAME=value"`` per parameter."""
        return "".join(f"\n{k}={v}" for k, v in self.parameters.items())
