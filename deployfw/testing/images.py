"""Runnable images for tests against the sandbox: its tasks run what the task definition names.

The sandbox starts every ECS task from the image its task definition names, pulled from
the sandbox's ECR - an image that was never pushed cannot be pulled, and the deployment
fails as on AWS. A test that deploys therefore needs a real image: :func:`push_app`
builds a tiny app with deployfw's own image builder and pushes it through the ordinary
ECR API, as a build would; :func:`image_for` does the same given any boto3 client of
the sandbox. The app answers ``<version>`` on every path; its image environment can make
it exit at start (``exit_at_start``) or answer another status on ``/health``
(``health_status``)::

    from deployfw.testing.images import image_for

    image = image_for(ecs_client, "user-api", "v2")         # REPO_URI@sha256:...
    broken = image_for(ecs_client, "user-api", "v3", exit_at_start=True)
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from deployfw.image.oci import build_image
from deployfw.image.push import push_image
from deployfw.image.spec import ImageSpec

APP = """\
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
if os.environ.get("EXIT_AT_START"):
    sys.exit("exiting at start, as asked")
VERSION = os.environ.get("VERSION", "?")
HEALTH = int(os.environ.get("HEALTH_STATUS") or 200)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = HEALTH if self.path == "/health" else 200
        body = (VERSION + "\\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT") or 8080)), Handler).serve_forever()
"""


@functools.lru_cache(maxsize=1)
def _context() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sandbox-test-app-"))
    (folder / "app.py").write_text(APP)
    return folder


def push_app(
    ecr: Any, repository: str, version: str, *, exit_at_start: bool = False, health_status: int = 200, port: int = 8080
) -> str:
    """Build and push the test app with ``ecr`` (a boto3 ECR client); returns ``REPO_URI@sha256:...``."""
    from deployfw.aws.clients import Aws

    env = {"VERSION": version, "PORT": str(port)}
    if exit_at_start:
        env["EXIT_AT_START"] = "1"
    if health_status != 200:
        env["HEALTH_STATUS"] = str(health_status)
    spec = ImageSpec(entrypoint=("python3", "/srv/app/app.py"), env=env, destination="/srv/app",
                     workdir="/srv/app", ports=(str(port),))  # fmt: skip
    image = build_image(_context(), spec)
    aws = Aws(ecr.meta.region_name, endpoint_url=ecr.meta.endpoint_url, clients={"ecr": ecr})
    return push_image(image, aws, repository, [version]).image_uri


_pushed: dict[tuple[str, str, str, tuple[Any, ...]], str] = {}


def image_for(client: Any, repository: str, version: str, **options: Any) -> str:
    """The test app pushed to ``repository`` of the sandbox that ``client`` (any boto3 client) talks to."""
    import boto3

    endpoint = client.meta.endpoint_url
    key = (endpoint, repository, version, tuple(sorted(options.items())))
    if key not in _pushed:
        ecr = boto3.client("ecr", region_name=client.meta.region_name, endpoint_url=endpoint,
                           aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        _pushed[key] = push_app(ecr, repository, version, **options)
    return _pushed[key]
