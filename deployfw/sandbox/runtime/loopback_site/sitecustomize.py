"""Loaded by Python apps of sandbox tasks on the loopback network (see ../network.py).

All tasks share the host's network namespace there, each with its own 127.x.y.z address:
a bind to every interface (``0.0.0.0`` or ``""``) becomes a bind to the task's address,
so two tasks of one service can both listen on their usual port.
"""

import os
import socket
from typing import Any

_ADDRESS = os.environ.get("DEPLOYFW_TASK_ADDRESS")

if _ADDRESS:
    _bind = socket.socket.bind

    def bind(self: socket.socket, address: Any) -> None:  # any address family's form, as socket.bind takes
        if isinstance(address, tuple) and len(address) == 2 and address[0] in ("", "0.0.0.0"):
            address = (_ADDRESS, address[1])
        return _bind(self, address)

    setattr(socket.socket, "bind", bind)  # noqa: B010
