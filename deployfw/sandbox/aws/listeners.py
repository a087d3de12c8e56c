"""Load-balancer listeners as real loopback ports that forward to healthy targets by weight.

Every listener of every load balancer gets a port on 127.0.0.1 (the listener's own port
number - 80, 8080 - is what the API reports; the loopback port is what
``GET /_sandbox/listeners`` lists as ``url``). A connection picks a target group by the
listener's current forward weights (what CodeDeploy's traffic shifts change), then a
target of it round-robin among the ``healthy`` ones - or among all registered targets
when none is healthy, as ELB fails open. ALB listeners (HTTP/HTTPS) forward HTTP
requests; NLB listeners (TCP/TLS) forward the byte stream. With no target at all an
ALB answers 503 and an NLB closes the connection.

The routing table is rebuilt from moto's listeners and the health checks every
:data:`~deployfw.sandbox.clock.MIN_POLL` and swapped in whole, so a request never
waits for the sandbox lock.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import random
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws import elb
from deployfw.sandbox.clock import MIN_POLL

if TYPE_CHECKING:
    from deployfw.sandbox.aws.context import SandboxContext

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


@dataclass(frozen=True)
class Route:
    """Where one listener sends traffic now: [(target group ARN, weight, [(host, port)])]."""

    groups: tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...] = ()

    def pick(self, rng: random.Random, counter: itertools.count[int]) -> tuple[str, int] | None:
        live = [(arn, w, targets) for arn, w, targets in self.groups if w > 0 and targets]
        if not live:
            return None
        total = sum(w for _, w, _ in live)
        draw = rng.uniform(0, total)
        for _, weight, targets in live:
            draw -= weight
            if draw <= 0:
                return targets[next(counter) % len(targets)]
        return live[-1][2][0]


@dataclass
class Proxy:
    listener_arn: str
    load_balancer_arn: str
    load_balancer: str
    protocol: str
    listener_port: int
    server: socketserver.BaseServer
    thread: threading.Thread
    route: Route = field(default_factory=Route)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]

    @property
    def url(self) -> str:
        scheme = "http" if self.protocol in ("HTTP", "HTTPS") else "tcp"
        return f"{scheme}://127.0.0.1:{self.port}"


class ListenerProxies:
    """All listener ports of one sandbox; see the module docstring."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.proxies: dict[str, Proxy] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random(ctx.seed)
        self._counter = itertools.count()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sandbox-listeners", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        closing = [threading.Thread(target=_close, args=(p,), daemon=True) for p in self.proxies.values()]
        for thread in closing:  # each server takes up to a poll interval to notice: close them together
            thread.start()
        for thread in closing:
            thread.join(timeout=5)
        self.proxies.clear()

    def _loop(self) -> None:
        while not self._stop.wait(MIN_POLL):
            try:
                self.sync()
            except Exception as exc:  # keep forwarding; a broken listener must not stop the others
                import sys

                sys.stderr.write(f"deployfw sandbox listeners: {type(exc).__name__}: {exc}\n")

    def pick(self, proxy: Proxy) -> tuple[str, int] | None:
        """A target for one request, from the listener's route as it is now.

        A load balancer stops sending new requests to a target the moment it is deregistered; the
        periodic :meth:`sync` alone would keep a stopped task in the route until its next pass - on
        the instant test clock a drained task gets SIGTERM at once, and a request in that gap got 502.
        """
        fresh = self._route_now(proxy.listener_arn)
        if fresh is not None:
            proxy.route = fresh
        return proxy.route.pick(self._rng, self._counter)

    def _route_now(self, listener_arn: str) -> Route | None:
        with self.ctx.lock:
            for backend in elb.elbv2_backends_of():
                listener = elb.find_listener(backend, listener_arn)
                if listener is not None:
                    return self._route(backend, listener)
        return None

    def sync(self) -> None:
        """Open ports for new listeners, close those of deleted ones, refresh every route."""
        wanted: dict[str, tuple[Any, Any, Route]] = {}
        with self.ctx.lock:
            for backend in elb.elbv2_backends_of():
                for balancer in backend.load_balancers.values():
                    for arn, listener in balancer.listeners.items():
                        wanted[arn] = (balancer, listener, self._route(backend, listener))
        for arn in list(self.proxies):
            if arn not in wanted:
                _close(self.proxies.pop(arn))
        for arn, (balancer, listener, route) in wanted.items():
            proxy = self.proxies.get(arn)
            if proxy is None:
                proxy = self._open(arn, balancer, listener)
                self.proxies[arn] = proxy
            proxy.route = route

    def _route(self, backend: Any, listener: Any) -> Route:
        health = self.ctx.health
        groups = []
        for group_arn, weight in elb.weights(listener).items():
            group = backend.target_groups.get(group_arn)
            if group is None:
                continue
            registered = [(str(t["Id"]), int(t.get("Port") or group.port or 80)) for t in group.targets.values()]
            healthy = [t for t in registered if health is not None and health.healthy((group_arn, t[0], t[1]))]
            groups.append((group_arn, weight, tuple(healthy or registered)))
        return Route(tuple(groups))

    def _open(self, arn: str, balancer: Any, listener: Any) -> Proxy:
        protocol = str(listener.protocol or "HTTP").upper()
        holder: dict[str, Proxy] = {}
        server: socketserver.BaseServer
        if protocol in ("HTTP", "HTTPS"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self, holder))
        else:
            server = _TcpServer(("127.0.0.1", 0), _tcp_handler(self, holder))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  name=f"sandbox-listener-{listener.port}", daemon=True)  # fmt: skip
        proxy = Proxy(arn, str(balancer.arn), str(balancer.name), protocol, int(listener.port), server, thread)
        holder["proxy"] = proxy
        thread.start()
        return proxy

    def listing(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/listeners``: ``[{"load_balancer", "port", "url", "forwards"}]``."""
        rows = []
        for proxy in sorted(self.proxies.values(), key=lambda p: (p.load_balancer, p.listener_port)):
            rows.append({
                "load_balancer": proxy.load_balancer,
                "load_balancer_arn": proxy.load_balancer_arn,
                "listener_arn": proxy.listener_arn,
                "protocol": proxy.protocol,
                "port": proxy.listener_port,
                "url": proxy.url,
                "forwards": [
                    {"target_group": arn, "weight": weight, "targets": [f"{h}:{p}" for h, p in targets]}
                    for arn, weight, targets in proxy.route.groups
                ],
            })  # fmt: skip
        return rows


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _close(proxy: Proxy) -> None:
    with contextlib.suppress(Exception):
        proxy.server.shutdown()
        proxy.server.server_close()


def _http_handler(owner: ListenerProxies, holder: dict[str, Proxy]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            proxy = holder["proxy"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            target = owner.pick(proxy)
            if target is None:
                self._answer(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>\n")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            headers["X-Forwarded-Port"] = str(proxy.listener_port)
            headers["X-Forwarded-Proto"] = "http"
            connection = http.client.HTTPConnection(target[0], target[1], timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            except OSError:
                self._answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n")
                return
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _tcp_handler(owner: ListenerProxies, holder: dict[str, Proxy]) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            target = owner.pick(holder["proxy"])
            if target is None:
                return
            try:
                upstream = socket.create_connection(target, timeout=10)
            except OSError:
                return
            upstream.settimeout(None)
            client: socket.socket = self.request
            pump = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            pump.start()
            _pipe(client, upstream)
            pump.join(timeout=60)

    return Handler


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
