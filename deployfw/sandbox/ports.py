"""Loopback listening sockets for the sandbox's servers, bound in the caller's thread.

Binding is where a sandbox start fails in practice (another sandbox, a LocalStack, a Jenkins
already on the port). It must fail *here*, synchronously, with the port named: moto's threaded
server binds inside its own thread, where werkzeug prints "Port N is in use" and exits only
that thread, leaving the caller waiting forever for a server that never comes up. So the
sandbox binds first and hands the bound socket to the server. Light on purpose (no moto):
``deployfw sandbox`` checks its ports before importing anything heavy.
"""

from __future__ import annotations

import errno
import socket

HOST = "127.0.0.1"
_BACKLOG = 128


class PortUnavailable(OSError):
    """A sandbox endpoint could not listen on its port; ``endpoint`` says which one."""

    def __init__(self, endpoint: str, port: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.endpoint = endpoint
        self.port = port

    @property
    def reason(self) -> str:
        if self.errno == errno.EADDRINUSE:
            return "is in use"
        if self.errno == errno.EACCES:
            return "needs privileges (ports below 1024)"
        return f"cannot be used ({self.strerror})"


def listen(port: int, endpoint: str) -> socket.socket:
    """A socket listening on ``127.0.0.1:port`` (0: a free port); :class:`PortUnavailable` when it cannot."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As every server here does: a port left in TIME_WAIT by a sandbox that just stopped is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(endpoint, port, exc) from None
    return sock


def check_free(port: int, endpoint: str) -> None:
    """Raise :class:`PortUnavailable` now if ``port`` cannot be listened on (0 always can)."""
    if port:
        listen(port, endpoint).close()
