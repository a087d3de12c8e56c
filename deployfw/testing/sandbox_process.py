"""``deployfw sandbox`` in a process of its own, driven over its documented endpoints.

The ``aws_sandbox`` fixture runs moto in the test process, which is fine for one backend
call at a time. End-to-end tests need the sandbox a user gets from ``deployfw sandbox`` in
another shell instead, because:

- moto keeps its state in process-wide dictionaries: two in-process sandboxes (one per test
  module, say) would share ECR images and ECS services, and "no image was pushed" would
  depend on which tests ran before;
- tests that kill ``deployfw run`` need AWS state that outlives the killed process;
- the sandbox is seeded from the repository's ``modules.yaml`` exactly as users see it.

:class:`SandboxProcess` starts ``deployfw [--config FILE] sandbox --port 0 --jenkins-port 0``
(free ports, so suites can run side by side), reads the ``KEY=value`` lines it prints, and
then talks to it the way DESIGN.md documents: the request log over
``GET``/``DELETE /_sandbox/requests``, faults over ``POST /_sandbox/faults``. It also builds
what a test needs to point at it: boto3 clients, the environment a user would export for
deployfw (:meth:`~SandboxProcess.run_env`) and the state :class:`~deployfw.state.Scope`
runs against it use (the endpoint is part of the account key, so sandbox state never mixes
with real state). A plugin author tests a backend end to end with it::

    import pytest
    from deployfw.testing.cli import run_cli
    from deployfw.testing.requestlog import calls
    from deployfw.testing.sandbox_process import SandboxProcess

    @pytest.fixture(scope="module")
    def sandbox(repo):
        with SandboxProcess(repo, timings={"deploy_step": 0.05}) as box:
            yield box

    def test_deploys(sandbox, repo):
        assert run_cli(sandbox.run_env(), repo, "run").code == 0
        assert len(calls(sandbox.requests(), "CreateDeployment")) == 1

boto3 and deployfw's state package are imported only by the methods that need them, so
importing this module costs a test run nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlparse

from deployfw.sandbox import CLIENT_VARIABLES
from deployfw.testing.cli import deployfw_command, terminal_env

__all__ = ["SANDBOX_ACCOUNT", "SandboxProcess"]

SANDBOX_ACCOUNT = "123456789012"  # the account id the sandbox answers with (moto's default)


class SandboxProcess:
    """A ``deployfw sandbox`` process seeded from one repository's config, with its control endpoints.

    ``cwd``: the repository (its ``modules.yaml`` is found as ``deployfw`` finds it);
    ``config``: another config file to seed from; ``timings``: fields of
    :class:`deployfw.sandbox.aws.context.Timings` (a mapping, or the
    ``DEPLOYFW_SANDBOX_TIMINGS`` text ``deploy_step=0.05,...``) - simulated deployments are
    slow by default, tests speed them up or slow them down to hit a moment; ``log``: a file
    for the sandbox's stderr (a temporary file when not given, quoted if the start fails);
    ``time_scale``: sandbox seconds per real second (``DEPLOYFW_SANDBOX_TIME_SCALE``; default 0,
    the instant clock, unless the test process's environment says otherwise); ``iam``:
    ``DEPLOYFW_SANDBOX_IAM`` (``enforce``: every request authorised as AWS would, :meth:`client`
    and :meth:`run_env` then use the administrator's printed keys; ``least-privilege``:
    :meth:`run_env` is user ``deployfw-ci``'s, holding exactly the generated ci policy).
    """

    def __init__(
        self,
        cwd: str | os.PathLike[str],
        *,
        config: str | os.PathLike[str] | None = None,
        timings: Mapping[str, float] | str | None = None,
        log: str | os.PathLike[str] | None = None,
        time_scale: float | None = None,
        iam: str | None = None,
    ) -> None:
        self.cwd = Path(cwd)
        self.iam = iam
        self.config = Path(config) if config is not None else None
        self.timings = timings if isinstance(timings, str) or timings is None else _timings_text(timings)
        self.log = Path(log) if log is not None else None
        self.time_scale = time_scale
        self.proc: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}
        self.endpoint = ""
        self.region = "us-east-1"
        self._stderr: IO[str] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> SandboxProcess:
        """Start the process and wait until it printed where it serves; returns ``self``."""
        if self.proc is not None:
            raise RuntimeError("this sandbox is already started")
        self._stderr = open(self.log, "w+") if self.log else tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives with the process
        argv = [*deployfw_command(), *(["--config", str(self.config)] if self.config else [])]
        extra = {"DEPLOYFW_SANDBOX_TIMINGS": self.timings} if self.timings else {}
        # The instant clock unless asked otherwise: a test is not paced by sandbox minutes.
        from deployfw.sandbox.clock import TIME_SCALE_ENV, parse_scale

        scale = self.time_scale if self.time_scale is not None else parse_scale(os.environ.get(TIME_SCALE_ENV))
        extra[TIME_SCALE_ENV] = str(scale)
        if self.iam:
            extra["DEPLOYFW_SANDBOX_IAM"] = self.iam
        self.proc = subprocess.Popen(
            [*argv, "sandbox", "--port", "0", "--jenkins-port", "0"],
            cwd=self.cwd,
            env=terminal_env(**extra),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,  # a Ctrl-C meant for pytest must not stop it under a teardown
        )
        assert self.proc.stdout is not None
        try:
            for expected in CLIENT_VARIABLES:
                key, sep, value = self.proc.stdout.readline().strip().partition("=")
                if not sep:
                    raise RuntimeError(f"deployfw sandbox ended before printing its environment{self._stderr_tail()}")
                if key != expected:
                    raise RuntimeError(f"deployfw sandbox printed {key} where {expected} was expected")
                self.env[key] = value
            self.region = self.env["AWS_DEFAULT_REGION"]
            if self.iam == "least-privilege":  # then the administrator's keys follow (lines 10-11)
                for expected in ("ADMIN_ACCESS_KEY_ID", "ADMIN_SECRET_ACCESS_KEY"):
                    key, _, value = self.proc.stdout.readline().strip().partition("=")
                    if key != expected:
                        raise RuntimeError(f"deployfw sandbox printed {key} where {expected} was expected")
                    self.env[key] = value
        except BaseException:
            self.stop()
            raise
        self.endpoint = self.env["AWS_ENDPOINT_URL"]
        return self

    def stop(self) -> None:
        """SIGTERM (the sandbox stops its servers cleanly), SIGKILL if it has not ended in 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> SandboxProcess:
        return self.start() if self.proc is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].strip()
        return f":\n{tail}" if tail else " (nothing on stderr)"

    # -- control endpoints --------------------------------------------------------------------

    def _control(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}/_sandbox/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def requests(self) -> list[dict[str, Any]]:
        """Every AWS request answered since the start (or the last :meth:`clear_requests`), oldest first."""
        return list(self._control("requests"))

    def clear_requests(self) -> None:
        """Empty the request log, so a test judges only the calls its own step made."""
        self._control("requests", method="DELETE")

    def set_faults(self, faults: str) -> None:
        """Replace the injected faults (``deploy:user-api,throttle:20``; ``""`` clears them)."""
        self._control("faults", method="POST", body={"faults": faults})

    # -- pointing at it -----------------------------------------------------------------------

    def client(self, service: str, **kwargs: Any) -> Any:
        """A plain boto3 client for this sandbox, to look at the outcome the way a user would.

        ``kwargs`` go to ``boto3.client`` (e.g. ``config=botocore.config.Config(...)``).
        """
        import boto3

        admin = self.admin_keys()
        options: dict[str, Any] = {"region_name": self.region, "endpoint_url": self.endpoint,
                                   "aws_access_key_id": admin["AWS_ACCESS_KEY_ID"],
                                   "aws_secret_access_key": admin["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
        return boto3.client(service, **{**options, **kwargs})

    def admin_keys(self) -> dict[str, str]:
        """Keys of the sandbox account's administrator (any key when IAM is not enforced)."""
        if "ADMIN_ACCESS_KEY_ID" in self.env:
            return {"AWS_ACCESS_KEY_ID": self.env["ADMIN_ACCESS_KEY_ID"],
                    "AWS_SECRET_ACCESS_KEY": self.env["ADMIN_SECRET_ACCESS_KEY"]}  # fmt: skip
        if "AWS_ACCESS_KEY_ID" in self.env:
            return {k: self.env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def run_env(self, **overrides: str) -> dict[str, str]:
        """What a terminal user pointing deployfw at this sandbox has exported, plus ``overrides``.

        A plain :func:`~deployfw.testing.cli.terminal_env` with every variable the sandbox printed
        (:data:`~deployfw.sandbox.CLIENT_VARIABLES`: endpoint, Jenkins, credentials, region, clock).
        """
        return terminal_env(**{**{name: self.env[name] for name in CLIENT_VARIABLES}, **overrides})

    def scope(self, env: str | None = None) -> Any:
        """The state :class:`~deployfw.state.Scope` runs against this sandbox use (``account@host:port``)."""
        from deployfw.state import Scope

        return Scope(f"{SANDBOX_ACCOUNT}@{urlparse(self.endpoint).netloc}", self.region, env)


def _timings_text(timings: Mapping[str, float]) -> str:
    return ",".join(f"{name}={seconds}" for name, seconds in timings.items())
