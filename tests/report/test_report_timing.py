"""What the runner writes into the report for the page: times, marks and a failed stage's log tail.

A real :class:`~deployfw.runner.Runner` runs one module through stand-in backends
(registered in a real :class:`~deployfw.backends.BackendRegistry`) that log, mark and
fail on cue, on a clock the test controls.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from deployfw import redact
from deployfw.backends import BackendRegistry, DeployOutcome, ImageRef, ModuleJob, RunContext, StageResult
from deployfw.config import load_config
from deployfw.events import EventLog
from deployfw.plan import ModulePlan, Plan, StagePlan
from deployfw.report import LOG_TAIL_LINES, LOG_TAIL_WIDTH, utc_stamp
from deployfw.report_html.timeline import parse_time
from deployfw.runner import Runner

SECRET = "tailSECRET-4be1c0ffee"
CONFIG = """\
version: 1
modules:
  api:
    path: svc/api
    build: {backend: stand-in}
    registry: {backend: stand-in}
    deploy: {backend: stand-in}
"""


class Clock:
    """Wall clock for the report; every reading moves it on by one second."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class StandIn:
    """Build, registry and deploy backend at once; ``deploy_ok`` decides the deploy (None: it crashes)."""

    def __init__(self, deploy_ok: bool | None) -> None:
        self.deploy_ok = deploy_ok
        self.pushed: str | None = None

    def steps(self, module: Any, config: Any) -> list[str]:
        return []

    def preflight(self, module: Any, config: Any) -> list[Any]:
        return []

    def prepare(self, job: ModuleJob, content_tag: str) -> ImageRef:
        return ImageRef("api", "123456789012.dkr.ecr.us-east-1.amazonaws.com/api", "commit-tag", content_tag)

    def find(self, job: ModuleJob, tag: str) -> str | None:
        return self.pushed

    def promote(self, job: ModuleJob, digest: str, tags: Any) -> None:
        pass

    def build(self, job: ModuleJob) -> StageResult:
        job.mark("waited", seconds=0.5, reason="a build slot")
        self.pushed = "sha256:" + "0" * 64
        return StageResult(True)

    def deploy(self, job: ModuleJob) -> DeployOutcome:
        for index in range(100):
            job.log(f"line {index}")
        job.log("x" * 1000)
        job.log(f"the key was {SECRET}")
        job.mark("traffic", percent=10, split="blue 90% / green 10%")
        job.mark("rolled_back", deployment="d-ROLLBACK")
        if self.deploy_ok is None:
            raise KeyError("taskSets")  # a backend bug
        if self.deploy_ok:
            return DeployOutcome(True, deployment_id="d-1")
        return DeployOutcome(False, f"health checks failed ({SECRET})", deployment_id="d-1", rolled_back=True)


class NoHooks:
    def __getattr__(self, name: str) -> Any:
        return lambda **_: None


def run(tmp_path: Path, *, deploy_ok: bool | None) -> dict[str, Any]:
    (tmp_path / "svc/api").mkdir(parents=True)
    (tmp_path / "modules.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "modules.yaml")
    backend = StandIn(deploy_ok)
    registry = BackendRegistry()
    registry.add_build("stand-in", lambda ctx: backend)
    registry.add_registry("stand-in", lambda ctx: backend)
    registry.add_deploy("stand-in", lambda ctx: backend)
    ctx = RunContext(config=config, head="a" * 40, run_id="run-1", region="us-east-1",
                     endpoint_url="http://127.0.0.1:1", repository_url="https://github.com/o/r")  # fmt: skip
    sections = {"build": "build", "push": "registry", "deploy": "deploy"}
    stages = tuple(StagePlan(s, sections[s], "stand-in", "test", ()) for s in ("build", "push", "deploy"))
    backends = dict.fromkeys(("build", "registry", "deploy"), "stand-in")
    module = ModulePlan("api", ("selected",), (), stages, content_tag="content-1", backends=backends)
    plan = Plan(None, None, "a" * 40, (module,), ())
    runner = Runner(plan, registry, ctx, NoHooks(), EventLog(io.StringIO()))
    runner.wall = Clock()
    return runner.run().masked_json()


def test_every_stage_and_the_run_carry_utc_times_in_order(tmp_path: Path) -> None:
    report = run(tmp_path, deploy_ok=True)
    module = report["modules"][0]
    times = [report["started_at"], module["started_at"]]
    for stage in module["stages"]:
        times += [stage["started_at"], stage["ended_at"]]
    times += [module["ended_at"], report["ended_at"]]
    assert all(t.endswith("Z") and "T" in t for t in times), times
    parsed = [parse_time(t) for t in times]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed), "each reading of the clock is later"
    assert report["region"] == "us-east-1" and report["aws_endpoint"] == "http://127.0.0.1:1"
    assert report["repository_url"] == "https://github.com/o/r"
    assert all(stage["log_tail"] is None for stage in module["stages"]), "only failed stages carry a tail"


def test_marks_land_on_the_timeline_with_their_stage_and_time(tmp_path: Path) -> None:
    module = run(tmp_path, deploy_ok=True)["modules"][0]
    assert [(m["stage"], m["kind"]) for m in module["timeline"]] == [
        ("build", "waited"),
        ("deploy", "traffic"),
        ("deploy", "rolled_back"),
    ]
    assert module["timeline"][1] | {"at": None} == {
        "at": None, "stage": "deploy", "kind": "traffic", "percent": 10, "split": "blue 90% / green 10%"
    }  # fmt: skip
    windows = {s["stage"]: (parse_time(s["started_at"]), parse_time(s["ended_at"])) for s in module["stages"]}
    for mark in module["timeline"]:
        start, end = windows[mark["stage"]]
        assert start <= parse_time(mark["at"]) <= end, mark


def test_a_failed_stage_keeps_its_last_lines_bounded_and_masked(tmp_path: Path) -> None:
    redact.register(SECRET)
    report = run(tmp_path, deploy_ok=False)
    module = report["modules"][0]
    deploy = next(s for s in module["stages"] if s["stage"] == "deploy")
    assert module["status"] == "failed" and deploy["status"] == "failed"
    tail = deploy["log_tail"]
    assert len(tail) == LOG_TAIL_LINES
    assert tail[:2] == ["line 62", "line 63"] and tail[-3] == "line 99"
    assert len(tail[-2]) == LOG_TAIL_WIDTH and tail[-2].endswith("…")
    assert tail[-1] == f"the key was {redact.MASK}"
    assert SECRET not in str(report) and deploy["error"] == f"health checks failed ({redact.MASK})"
    build = next(s for s in module["stages"] if s["stage"] == "build")
    assert build["log_tail"] is None


def test_a_backend_crash_leaves_its_stage_failed_with_its_tail(tmp_path: Path) -> None:
    redact.register(SECRET)
    module = run(tmp_path, deploy_ok=None)["modules"][0]
    assert module["status"] == "failed" and module["error"] == "KeyError: 'taskSets'"
    assert [(s["stage"], s["status"]) for s in module["stages"]] == [
        ("build", "succeeded"), ("push", "succeeded"), ("deploy", "failed")
    ]  # fmt: skip
    deploy = module["stages"][2]
    assert deploy["error"] == "KeyError: 'taskSets'" and deploy["started_at"] and deploy["ended_at"]
    assert deploy["log_tail"][-1] == f"the key was {redact.MASK}"


@pytest.mark.parametrize(
    ("remote", "web"),
    [
        ("git@github.com:o/r.git", "https://github.com/o/r"),
        ("https://ci:t0ken@github.com/o/r.git", "https://github.com/o/r"),
        ("ssh://git@gitlab.example.com:2222/g/p.git", "https://gitlab.example.com/g/p"),
        ("http://gitlab.local:8080/g/p", "http://gitlab.local:8080/g/p"),
        (
            "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/shop",
            "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/shop",
        ),
        ("file:///srv/git/shop.git", None),
        ("/srv/git/shop.git", None),
        ("", None),
    ],
)
def test_repository_address_from_ci_never_keeps_credentials(remote: str, web: str | None) -> None:
    from deployfw.ci import detect_ci, web_url

    assert web_url(remote) == web
    jenkins = {"JOB_NAME": "j", "BUILD_NUMBER": "1", "JENKINS_URL": "https://ci/", "GIT_URL": remote}
    assert detect_ci(jenkins).repository_url == web


def test_utc_stamp_is_iso_with_milliseconds() -> None:
    assert utc_stamp(0.25) == "1970-01-01T00:00:00.250Z"
