"""Both state stores under one parametrised fixture, so they run the same contract suite.

``sqlite`` lives in tmp_path; ``dynamodb`` talks to a moto server on a free port (one per
session, a fresh table per test) so that child processes can reach it too.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from state_helpers import open_spec
from werkzeug.serving import make_server

from deployfw.state.store import StoreBase

HERE = Path(__file__).parent
REGION = "us-east-1"
_tables = itertools.count()


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Fake credentials, no profile and no endpoint overrides, for this process and its children."""
    saved = dict(os.environ)
    for var in list(os.environ):
        if var.startswith("AWS_"):
            del os.environ[var]
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    os.environ.update(env)
    yield env
    os.environ.clear()
    os.environ.update(saved)


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _atomic(app: Callable[..., Any]) -> Callable[..., Any]:
    """Serialise requests: DynamoDB evaluates a conditional write atomically, moto's backend does not.

    Without this, two threads' conditional writes interleave inside moto (check, check, write,
    write) and the test would measure moto's race instead of the store's logic.
    """
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return [b"".join(app(environ, start_response))]

    return wrapped


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: dict[str, str]) -> Iterator[str]:
    """moto on a free loopback port, reachable from child processes."""
    app = _atomic(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture
def dynamo_spec(moto_endpoint: str) -> dict[str, Any]:
    from deployfw.state.dynamodb import create_table

    spec = {"kind": "dynamodb", "endpoint": moto_endpoint, "table": f"state-{next(_tables)}", "region": REGION}
    create_table(open_spec(spec).aws, spec["table"])  # type: ignore[attr-defined]
    return spec


@pytest.fixture(params=["sqlite", "dynamodb"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The spec of an empty store of each kind."""
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / ".deployfw" / "state.db")}
    return request.getfixturevalue("dynamo_spec")


@pytest.fixture
def open_store(spec: dict[str, Any]) -> Callable[..., StoreBase]:
    """Open (another handle on) the test's store, optionally with an injected clock and sleep."""
    return lambda **kw: open_spec(spec, **kw)


@pytest.fixture
def store(open_store: Callable[..., StoreBase]) -> StoreBase:
    return open_store()


@pytest.fixture
def child(spec: dict[str, Any], aws_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``state_helpers.py`` in a child process against the test's store; killed at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "state_helpers.py"), args[0], json.dumps(spec), *args[1:]],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **aws_env, "PYTHONPATH": str(HERE)},
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
