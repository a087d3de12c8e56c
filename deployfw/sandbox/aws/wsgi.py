"""The WSGI layer in front of moto: control endpoints, faults, request log, clean errors.

Everything a client sends passes through :class:`SandboxApp` before moto sees it, which
is the one place that can (a) answer ``/_sandbox/*`` without ever faulting it, (b) fault
AWS calls in their own protocol, (c) turn moto's "not implemented" crash into a fast
4xx that botocore does not retry, and (d) serialise moto access behind the sandbox lock
because our lifecycle code mutates state that request threads read.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.model import OperationNotFoundError

from deployfw.errors import InputError
from deployfw.sandbox.aws import protocol
from deployfw.sandbox.aws.context import SandboxContext
from deployfw.sandbox.aws.faults import FaultSet
from deployfw.sandbox.aws.requestlog import RequestLog

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CONTROL_PREFIX = "/_sandbox/"


class SandboxApp:
    """Wraps moto's WSGI application for one sandbox."""

    def __init__(self, inner: WsgiApp, ctx: SandboxContext, request_log: RequestLog, views: Any = None) -> None:
        self._inner = inner
        self._ctx = ctx
        self._log = request_log
        self._views = views  # the AwsSandbox: tasks and listeners

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
        if path.startswith("/moto-api"):
            with self._ctx.lock:
                return list(self._inner(environ, start_response))
        return self._aws(environ, start_response)

    # -- AWS calls -------------------------------------------------------------------

    def _aws(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.time()
        body = _read_body(environ)
        call = protocol.identify(environ, body)
        fault = self._ctx.faults.draw(self._ctx.rng)
        verdict = None
        iam = self._ctx.iam
        if fault == "throttle":
            status, headers, payload = protocol.throttling(call)
        elif fault == "error":
            code = self._ctx.rng.choice((500, 503))
            name = "InternalFailure" if code == 500 else "ServiceUnavailable"
            status, headers, payload = protocol.error_response(
                call, code, name, f"deployfw sandbox fault: error ({code})"
            )
        else:
            # IAM (deployfw.sandbox.aws.authz): refused here, before moto, exactly as AWS refuses.
            verdict = iam.authorize(environ, call, body) if iam is not None and iam.enforcing else None
            if verdict is not None and verdict.refusal is not None:
                status, headers, payload = verdict.refusal
            elif iam is not None and iam.simulates(call):
                status, headers, payload = iam.simulate(call)
            else:
                status, headers, payload = self._call_moto(environ, call)
        self._log.record(
            service=call.service,
            operation=call.operation,
            status=status,
            region=call.region,
            params=call.params,
            started=started,
            fault=fault,
            principal=verdict.principal if verdict is not None else None,
            iam=verdict.log() if verdict is not None else None,
        )
        start_response(f"{status} {_reason(status)}", headers)
        return [payload]

    def _call_moto(self, environ: dict[str, Any], call: protocol.AwsCall) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = headers
            return lambda data: None

        try:
            with self._ctx.lock:
                chunks = self._inner(environ, capture)
                try:
                    payload = b"".join(chunks)
                finally:
                    close = getattr(chunks, "close", None)
                    if close:
                        close()
        except OperationNotFoundError:
            # What AWS answers for an operation the service does not have: a 400 botocore does not retry.
            code = "InvalidAction" if call.protocol in ("query", "ec2") else "UnknownOperationException"
            return protocol.error_response(call, 400, code, f"Unknown operation {call.operation!r} for {call.service}")
        except NotImplementedError as exc:
            return protocol.error_response(
                call,
                400,
                "InvalidAction",
                f"deployfw sandbox: {call.service}:{call.operation} is not implemented ({exc})",
            )
        except Exception as exc:  # moto crashed: answer like AWS would, not with HTML
            log.exception("moto failed on %s:%s", call.service, call.operation)
            return protocol.error_response(
                call, 500, "InternalFailure", f"deployfw sandbox: {type(exc).__name__}: {exc}"
            )
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(payload))))
        return captured["status"], headers, payload

    # -- control endpoints -----------------------------------------------------------

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], name: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        name = name.strip("/")
        if name == "requests" and method == "GET":
            return _json(start_response, 200, self._log.entries())
        if name == "requests" and method == "DELETE":
            self._log.clear()
            return _json(start_response, 200, {"cleared": True})
        if name == "faults" and method == "GET":
            return _json(start_response, 200, {"faults": str(self._ctx.faults)})
        if name == "faults" and method == "POST":
            try:
                doc = json.loads(_read_body(environ) or b"{}")
                text = doc.get("faults", "") if isinstance(doc, dict) else None
                if not isinstance(text, str):
                    raise InputError('expected a JSON object {"faults": "<comma list>"}')
                self._ctx.faults.replace(FaultSet.parse(text))
            except (ValueError, InputError) as exc:
                return _json(start_response, 400, {"error": str(exc)})
            return _json(start_response, 200, {"faults": str(self._ctx.faults)})
        if name == "seed" and method == "POST":
            if self._ctx.reseed is None:
                return _json(start_response, 409, {"error": "this sandbox was started without a config to seed from"})
            try:
                seeded = self._ctx.reseed()
            except Exception as exc:  # a config that no longer loads: the caller restarts instead
                return _json(start_response, 400, {"error": f"{type(exc).__name__}: {exc}"})
            return _json(start_response, 200, {"seeded": seeded})
        if name == "health":
            self._log.touch()  # `--sandbox` asks before reusing a background sandbox: no idle exit just after
            return _json(start_response, 200, {"status": "ok"})
        if name == "tasks" and method == "GET" and self._views is not None:
            return _json(start_response, 200, self._views.tasks())
        if name == "instances" and method == "GET" and self._views is not None:
            return _json(start_response, 200, self._views.instances())
        if name == "hooks" and method == "GET" and self._views is not None:
            return _json(start_response, 200, self._views.hooks())
        if name == "listeners" and method == "GET" and self._views is not None:
            return _json(start_response, 200, self._views.listener_urls())
        if name == "clock" and method == "GET":
            return _json(start_response, 200, {"time_scale": self._ctx.clock.scale})
        return _json(start_response, 404, {"error": f"unknown control endpoint {name!r}"})


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length > 0:
        body = stream.read(length)
    elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _json(start_response: Callable[..., Any], status: int, doc: Any) -> list[bytes]:
    payload = json.dumps(doc, default=str).encode()
    start_response(
        f"{status} {_reason(status)}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
