"""The HTTP face of the double: routing, auth and crumb checks, faults, and responses.

Order of checks follows Jenkins's filter chain: injected faults (they stand for the
network and proxies in front of the controller), authentication (401), the CSRF crumb
for POSTs (403), then Overall/Read (403), then the page itself (404 for a missing job,
build or queue item at any folder depth). Every response carries Jenkins's
identification headers, because clients (and python-jenkins's ``get_version``) read them.
"""

from __future__ import annotations

import html
import json
import socket
import struct
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

from deployfw.sandbox.jenkins import api
from deployfw.sandbox.jenkins.auth import CRUMB_FIELD, AuthFailed, Identity, Security
from deployfw.sandbox.jenkins.builds import Build
from deployfw.sandbox.jenkins.faults import Decision, FaultPlan
from deployfw.sandbox.jenkins.jobs import Folder, Job
from deployfw.sandbox.jenkins.requestlog import LoggedRequest, RequestLog
from deployfw.sandbox.jenkins.state import Controller, Refused

JENKINS_VERSION = "2.462.3"
JSON_TYPE = "application/json;charset=utf-8"
TEXT_TYPE = "text/plain;charset=utf-8"
HTML_TYPE = "text/html;charset=utf-8"
_PERMALINKS = {
    "lastBuild": lambda b: True,
    "lastSuccessfulBuild": lambda b: b.result == "SUCCESS",
    "lastFailedBuild": lambda b: b.result == "FAILURE",
    "lastCompletedBuild": lambda b: not b.building,
}


@dataclass
class Site:
    """Everything a request handler needs, shared by all handler threads."""

    controller: Controller
    security: Security
    faults: FaultPlan
    log: RequestLog
    session_id: str


class _Answered(Exception):
    """Raised once a response has been sent, to unwind routing."""


class JenkinsHandler(BaseHTTPRequestHandler):
    """Serves one connection (HTTP/1.1 keep-alive, as Jetty does)."""

    protocol_version = "HTTP/1.1"
    server_version = "Jetty(10.0.20)"
    sys_version = ""
    site: Site  # set on a subclass by the server

    # -- plumbing -------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        self._method, self._path, self._query = method, split.path, split.query
        self._user = "anonymous"
        self._fault: str | None = None
        self._late: Decision | None = None
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        try:
            if self._apply_fault():
                return
            self._route()
        except _Answered:
            pass

    def _apply_fault(self) -> bool:
        decision = self.site.faults.decide(self._method, self._path)
        if decision is None:
            return False
        self._fault = decision.kind
        if decision.after and decision.kind != "delay":
            self._late = decision  # serve first, then lose the answer in _send
            return False
        return self._inflict(decision)

    def _inflict(self, decision: Decision) -> bool:
        """Answer with the fault instead of the page; False if serving should go on."""
        self._late = None
        if decision.kind == "delay":
            time.sleep(decision.delay)
            return False
        if decision.kind == "reset":
            self._record(0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return True
        if decision.kind == "empty":
            self._send(200, b"", TEXT_TYPE)
            return True
        reason = self.responses.get(decision.status, ("Error",))[0]
        page = f"<html><body><h1>{decision.status} {reason}</h1></body></html>\n"
        self._send(decision.status, page.encode(), HTML_TYPE)
        return True

    def _record(self, status: int) -> None:
        self.site.log.add(LoggedRequest(self._method, self._path, self._query, status, self._user, self._fault))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if self._late is not None:
            self._inflict(self._late)
            return
        self._record(status)
        try:
            self.send_response(status)
            self.send_header("X-Jenkins", JENKINS_VERSION)
            self.send_header("X-Jenkins-Session", self.site.session_id)
            self.send_header("X-Hudson", "1.395")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self._method != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def _json(self, data: Any, headers: dict[str, str] | None = None) -> NoReturn:
        tree = self._params().get("tree")
        if tree:
            data = api.apply_tree(data, tree)
        body = json.dumps(data, separators=(",", ":")).encode()
        self._send(200, body, JSON_TYPE, headers)
        raise _Answered

    def _error(self, status: int, message: str | None = None, headers: dict[str, str] | None = None) -> NoReturn:
        reason = self.responses.get(status, ("Error",))[0]
        message = message or reason
        page = (
            '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>\n'
            f"<title>Error {status} {html.escape(message)}</title>\n</head>\n"
            f"<body><h2>HTTP ERROR {status} {html.escape(message)}</h2>\n<table>\n"
            f"<tr><th>URI:</th><td>{html.escape(self._path)}</td></tr>\n"
            f"<tr><th>STATUS:</th><td>{status}</td></tr>\n"
            f"<tr><th>MESSAGE:</th><td>{html.escape(message)}</td></tr>\n"
            "<tr><th>SERVLET:</th><td>Stapler</td></tr>\n</table>\n</body>\n</html>\n"
        )
        self._send(status, page.encode(), HTML_TYPE, headers)
        raise _Answered

    def _page(self, title: str) -> NoReturn:
        body = f"<!DOCTYPE html><html><head><title>{html.escape(title)} [Jenkins]</title></head>"
        body += f"<body><h1>{html.escape(title)}</h1></body></html>\n"
        self._send(200, body.encode(), HTML_TYPE)
        raise _Answered

    def _params(self) -> dict[str, str]:
        params = dict(parse_qsl(self._query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if self._body and content_type.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(self._body.decode(), keep_blank_values=True))
        return params

    def _session(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get(self.site.security.cookie_name)
        return morsel.value if morsel else None

    # -- security -------------------------------------------------------------------
    def _authenticate(self) -> Identity:
        security = self.site.security
        try:
            identity = security.identify(self.headers.get("Authorization"))
        except AuthFailed as exc:
            self._error(401, str(exc), {"WWW-Authenticate": 'Basic realm="Jenkins"'})
        self._user = identity.user
        if self._method == "POST" and security.needs_crumb(identity):
            crumb = self.headers.get(CRUMB_FIELD) or self._params().get(CRUMB_FIELD)
            if not security.crumb_valid(identity, self._session(), crumb):
                self._error(403, "No valid crumb was included in the request")
        if not security.may_read(identity):
            self._error(
                403,
                "Authentication required",
                {
                    "X-You-Are-Authenticated-As": "anonymous",
                    "X-Required-Permission": "hudson.model.Hudson.Read",
                },
            )
        return identity

    # -- routing --------------------------------------------------------------------
    def _route(self) -> None:
        identity = self._authenticate()
        parts = [unquote(p) for p in self._path.strip("/").split("/") if p]
        if parts == [] or parts == ["api", "json"]:
            if parts:
                self._json(api.folder_json(self.site.controller, self.site.controller.root))
            self._page("Dashboard")
        if parts == ["crumbIssuer", "api", "json"]:
            self._crumb(identity)
        if parts == ["me", "api", "json"] or parts == ["whoAmI", "api", "json"]:
            self._whoami(identity)
        if parts and parts[0] == "queue":
            self._queue(parts[1:])
        if parts and parts[0] == "job":
            self._job(parts, identity)
        self._error(404)

    def _crumb(self, identity: Identity) -> None:
        security = self.site.security
        if not security.issuer_enabled:
            self._error(404)
        session = self._session()
        headers = {}
        if session is None:
            session = security.new_session()
            headers["Set-Cookie"] = f"{security.cookie_name}={session}; Path=/; HttpOnly"
        self._json(
            {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": security.crumb_for(identity, session),
                "crumbRequestField": CRUMB_FIELD,
            },
            headers,
        )

    def _whoami(self, identity: Identity) -> None:
        base = self.site.controller.base_url
        self._json(
            {
                "_class": "hudson.model.User",
                "absoluteUrl": f"{base}user/{identity.user}",
                "description": None,
                "fullName": identity.user,
                "id": identity.user,
                "property": [],
            }
        )

    def _queue(self, rest: list[str]) -> None:
        controller = self.site.controller
        if rest == ["api", "json"]:
            self._json(api.queue_json(controller))
        if rest == ["cancelItem"]:
            self._require_post()
            item_id = self._params().get("id", "")
            if not item_id.isdigit() or not controller.cancel(int(item_id)):
                self._error(404)
            self._send(204, b"", TEXT_TYPE)
            raise _Answered
        if len(rest) >= 2 and rest[0] == "item" and rest[1].isdigit():
            item = controller.queue_item(int(rest[1]))
            if item is None:
                self._error(404)
            if rest[2:] == ["api", "json"]:
                self._json(api.queue_item_json(controller, item))
            if rest[2:] == []:
                self._page(f"Queue item {item.id}")
        self._error(404)

    def _require_post(self) -> None:
        if self._method != "POST":
            self._error(405, "This URL requires POST", {"Allow": "POST"})

    def _job(self, parts: list[str], identity: Identity) -> None:
        names: list[str] = []
        while len(parts) >= 2 and parts[0] == "job":
            names.append(parts[1])
            parts = parts[2:]
        if len(parts) == 1 and parts[0] == "job":
            self._error(404)
        controller = self.site.controller
        item = controller.item(names)
        if item is None:
            self._error(404)
        if parts == []:
            self._page(item.full_name)
        if parts == ["api", "json"]:
            if isinstance(item, Folder):
                self._json(api.folder_json(controller, item))
            self._json(api.job_json(controller, item, deep="tree" in self._params()))
        if isinstance(item, Job):
            self._job_action(item, parts, identity)
        self._error(404)

    def _job_action(self, job: Job, parts: list[str], identity: Identity) -> None:
        controller = self.site.controller
        if parts in (["build"], ["buildWithParameters"]):
            self._require_post()
            params = {k: v for k, v in self._params().items() if k not in ("token", "delay", CRUMB_FIELD)}
            try:
                queued = controller.trigger(
                    job, params, identity.user, with_parameters=parts == ["buildWithParameters"]
                )
            except Refused as exc:
                self._error(exc.status, exc.message)
            location = f"{controller.base_url}queue/item/{queued.id}/"
            self._send(201, b"", TEXT_TYPE, {"Location": location})
            raise _Answered
        build = self._find_build(job, parts[0])
        if build is None:
            self._error(404)
        rest = parts[1:]
        if rest == []:
            self._page(f"{job.full_name} #{build.number}")
        if rest == ["api", "json"]:
            self._json(api.build_json(controller, build))
        if rest == ["consoleText"]:
            self._send(200, build.log_bytes(), TEXT_TYPE)
            raise _Answered
        if rest == ["logText", "progressiveText"]:
            start = self._params().get("start", "0")
            chunk, size, more = build.progressive(int(start) if start.isdigit() else 0)
            headers = {"X-Text-Size": str(size)}
            if more:
                headers["X-More-Data"] = "true"
            self._send(200, chunk, TEXT_TYPE, headers)
            raise _Answered
        if rest == ["stop"]:
            self._require_post()
            controller.stop_build(build, identity.user)
            self._send(302, b"", TEXT_TYPE, {"Location": build.url})
            raise _Answered
        self._error(404)

    def _find_build(self, job: Job, ref: str) -> Build | None:
        controller = self.site.controller
        if ref.isdigit():
            return controller.build(job, int(ref))
        predicate = _PERMALINKS.get(ref)
        if predicate is None:
            return None
        return next((b for b in controller.builds(job) if predicate(b)), None)
