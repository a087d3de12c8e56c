"""Read an AWS request's service/operation/parameters and answer errors in its protocol.

The WSGI wrapper sits in front of moto and must speak each service's wire protocol
itself (throttling, injected 5xx, unimplemented operations): botocore only recognises
a ``ThrottlingException`` it can parse, and an HTML 500 makes it retry for minutes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

_JSON_CT = "application/x-amz-json-1.1"


@dataclass
class AwsCall:
    """What one HTTP request means in AWS terms."""

    service: str
    region: str
    operation: str
    protocol: str  # json | rest-json | query | ec2 | rest-xml
    params: dict[str, Any] = field(default_factory=dict)


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str]:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        _, _, region, service, _ = scope.split("/")
        return service.lower(), region
    except (IndexError, ValueError):
        return "unknown", "us-east-1"


def _rest_operation(service: str, environ: dict[str, Any], body: bytes) -> str:
    """Name a REST-protocol operation through botocore's model (as moto routes it)."""
    try:
        from moto.core.request import Request
        from moto.core.responses import get_service_router

        probe = dict(environ)
        import io

        probe["wsgi.input"] = io.BytesIO(body)
        model_name = {"s3": "s3"}.get(service, service)
        # moto's router reads the request's raw path, which moto's Request takes from RAW_URI
        # (the path without the query, as moto's own server routes it); S3's REST operations are
        # told apart by it (PutObject vs CreateBucket, HeadObject vs HeadBucket).
        query = environ.get("QUERY_STRING")
        probe["RAW_URI"] = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        operation, _ = get_service_router(model_name).match(Request(probe))
        return str(operation.name)
    except Exception:
        return f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"


def identify(environ: dict[str, Any], body: bytes) -> AwsCall:
    """Work out service, operation and parameters without consuming the request."""
    service, region = _credential_scope(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    content_type = environ.get("CONTENT_TYPE", "")
    if target:
        params: dict[str, Any] = {}
        try:
            loaded = json.loads(body or b"{}")
            if isinstance(loaded, dict):
                params = loaded
        except ValueError:
            pass
        return AwsCall(service, region, target.split(".")[-1], "json", params)
    if "x-www-form-urlencoded" in content_type or (
        environ.get("REQUEST_METHOD") == "GET" and "Action=" in environ.get("QUERY_STRING", "")
    ):
        raw = body.decode("utf-8", "replace") or environ.get("QUERY_STRING", "")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        action = form.pop("Action", "")
        form.pop("Version", None)
        return AwsCall(service, region, action, "ec2" if service == "ec2" else "query", form)
    protocol = "rest-xml" if service == "s3" else "rest-json"
    params = {}
    if service == "s3":
        parts = unquote(environ.get("PATH_INFO", "/")).lstrip("/").split("/", 1)
        if parts[0]:
            params["Bucket"] = parts[0]
        if len(parts) > 1 and parts[1]:
            params["Key"] = parts[1]
    return AwsCall(service, region, _rest_operation(service, environ, body), protocol, params)


def error_response(call: AwsCall, status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error answer shaped exactly as ``call``'s protocol shapes errors."""
    request_id = str(uuid.uuid4())
    if call.protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        ctype = _JSON_CT if call.protocol == "json" else "application/json"
        headers = [("Content-Type", ctype), ("x-amzn-ErrorType", code)]
    elif call.protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    elif call.protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = (
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return status, headers, body


def throttling(call: AwsCall) -> tuple[int, list[tuple[str, str]], bytes]:
    """The throttling error each protocol's real service returns."""
    message = "Rate exceeded (deployfw sandbox fault: throttle)"
    if call.protocol == "rest-xml":
        return error_response(call, 503, "SlowDown", message)
    if call.protocol == "ec2":
        return error_response(call, 503, "RequestLimitExceeded", message)
    if call.protocol == "query":
        return error_response(call, 400, "Throttling", message)
    return error_response(call, 400, "ThrottlingException", message)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
