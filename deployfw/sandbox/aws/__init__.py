"""The embedded AWS sandbox: moto in server mode with deploy lifecycles that progress.

Import :class:`AwsSandbox` to serve it, :class:`ServiceInfra` and :func:`seed` to
create the infrastructure deployfw's modules deploy to. See ``server.py`` for what is
process-global.
"""

from __future__ import annotations

from deployfw.sandbox.aws.context import Timings
from deployfw.sandbox.aws.faults import FaultSet
from deployfw.sandbox.aws.server import ACCOUNT_ID, AwsSandbox

__all__ = ["ACCOUNT_ID", "AwsSandbox", "FaultSet", "ServiceInfra", "Timings", "seed"]


def __getattr__(name: str) -> object:
    # Seeding pulls in boto3; keep ``import deployfw.sandbox.aws`` light until it is used.
    if name in ("ServiceInfra", "seed"):
        from deployfw.sandbox.aws import seeding

        return getattr(seeding, name)
    raise AttributeError(name)
