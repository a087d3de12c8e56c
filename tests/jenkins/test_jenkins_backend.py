"""The ``jenkins`` build backend against the Jenkins double, through unmodified python-jenkins.

Each test drives the backend the way the runner does (``build(job)`` with a prepared
image reference) and checks the outcome in the double itself: which builds exist,
their results, and the requests that reached the controller.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jenkins
import pytest

from deployfw.backends import ImageRef, ModuleJob, RunContext
from deployfw.config import Config, load_config
from deployfw.events import EventLog
from deployfw.plugins import PluginManager
from deployfw.sandbox.jenkins import Fault, JenkinsDouble
from deployfw.sandbox.session import add_jenkins_job
from deployfw.seeding import JenkinsJob
from deployfw.testing import GitRepoBuilder
from deployfw_jenkins.backend import JenkinsBuild
from deployfw_jenkins.client import RUN_ID_PARAMETER, JenkinsClient
from deployfw_jenkins.jobspec import job_name, parameter_names
from deployfw_jenkins.seed import seeds

MakeClient = Callable[..., JenkinsClient]


def seed_job(double: JenkinsDouble, config: Config, module: str, endpoint_url: str) -> None:
    """What the sandbox creates for ``module``: the Jenkins plugin's own answer to the seed hook."""
    for job in seeds(config, config.modules[module]):
        assert isinstance(job, JenkinsJob)
        add_jenkins_job(double, config, job, endpoint_url)
REPO_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jenkins-api"

MODULES_YAML = """\
version: 1
project: shop
region: us-east-1
defaults:
  build: {backend: jenkins}
  registry: {backend: ecr}
  deploy: {backend: ecs-bluegreen, cluster: test-cluster, taskdef: taskdef.json, appspec: appspec.yml}
modules:
  api:
    path: services/api
    build: {backend: jenkins, folder: teams/shop, parameters: {BUILD_LABEL: nightly, IMAGE_TAG: not-the-contract}}
    registry: {repository: jenkins-api}
  flaky:
    path: services/flaky
    build: {backend: jenkins, unstable_ok: true, queue_timeout_minutes: 0.5, timeout_minutes: 1}
    registry: {repository: jenkins-flaky}
"""

PUSH_BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - echo "building $DEPLOYFW_MODULE at $IMAGE_TAG"
      - >-
        deployfw image build "$DEPLOYFW_MODULE_PATH/app" --cmd "python main.py"
        --push "$REPOSITORY_URI" --tag "$IMAGE_TAG" --tag "$IMAGE_CONTENT_TAG"
"""

REPOSITORY = Path(__file__).resolve().parents[2]
FILES = {
    "modules.yaml": MODULES_YAML,
    "taskdef.json": (REPOSITORY / "taskdef.json").read_text(encoding="utf-8"),
    "appspec.yml": (REPOSITORY / "appspec.yml").read_text(encoding="utf-8"),
    "services/api/buildspec.yml": PUSH_BUILDSPEC,
    "services/api/app/main.py": "print('api')\n",
    "services/flaky/buildspec.yml": PUSH_BUILDSPEC,
    "services/flaky/app/main.py": "print('flaky')\n",
}


def script(code: str) -> list[str]:
    """A job command running Python ``code`` unbuffered."""
    return [sys.executable, "-u", "-c", code]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> GitRepoBuilder:
    return GitRepoBuilder(tmp_path_factory.mktemp("jenkins-shop") / "shop", FILES)


@pytest.fixture(scope="module")
def config(shop: GitRepoBuilder) -> Config:
    catalog = PluginManager(entry_points=False).backends.catalog()
    return load_config(shop.path / "modules.yaml", catalog=catalog)


class Harness:
    """One backend for one double, and the jobs (ModuleJob) it builds."""

    def __init__(self, config: Config, head: str, client: JenkinsClient, *, stop_grace: float = 10.0) -> None:
        self.config = config
        self.ctx = RunContext(config=config, head=head, run_id="run-1", region="us-east-1")
        self.backend = JenkinsBuild(self.ctx, client_factory=lambda: client, stop_grace=stop_grace)
        self.stream = io.StringIO()
        self.events = EventLog(self.stream)
        self.lines: list[str] = []

    def job(self, module: str, image: ImageRef | None = None) -> ModuleJob:
        prefixed = self.events.for_module(module, "build")

        def log(line: str) -> None:
            self.lines.append(line)
            prefixed(line)

        image = image or ImageRef("jenkins-" + module, REPO_URI, "commit-tag", "content-tag")
        return ModuleJob(self.ctx, self.config.modules[module], log, image)


@pytest.fixture
def harness(config: Config, shop: GitRepoBuilder, make_client: MakeClient) -> Callable[..., Harness]:
    def make(double: JenkinsDouble, **kwargs: Any) -> Harness:
        client_kwargs = {k: kwargs.pop(k) for k in ("token", "clock") if k in kwargs}
        return Harness(config, shop.head, make_client(double, **client_kwargs), **kwargs)

    return make


def add_script_job(double: JenkinsDouble, config: Config, module: str, code: str, **kwargs: Any) -> str:
    """A job for ``module`` defining every parameter the backend sends, running ``code``."""
    name = job_name(config.modules[module])
    names = [*parameter_names(config.modules[module]), RUN_ID_PARAMETER]
    double.add_job(name, command=script(code), parameters=dict.fromkeys(names, ""), module=module, **kwargs)
    return name


def posts(double: JenkinsDouble, suffix: str) -> list[Any]:
    return [r for r in double.requests() if r.method == "POST" and r.path.endswith(suffix)]


def in_background(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- success -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_sandbox() -> Iterator[Any]:
    from deployfw.sandbox.aws import AwsSandbox

    with AwsSandbox(port=0) as box:
        yield box


def test_success_builds_with_deployfw_build_streams_prefixed_console_and_image_is_found(
    double: JenkinsDouble,
    config: Config,
    shop: GitRepoBuilder,
    harness: Callable[..., Harness],
    aws_sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deployfw.builds.content import content_tag
    from deployfw_aws.ecr import EcrRegistry

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    seed_job(double, config, "api", aws_sandbox.endpoint_url)
    h = harness(double)
    h.ctx.endpoint_url = aws_sandbox.endpoint_url
    job = h.job("api")
    registry = EcrRegistry(h.ctx)
    job.image = registry.prepare(job, content_tag(config, job.module, shop.head))

    result = h.backend.build(job)

    assert result.ok, (result.error, h.lines)
    name = "teams/shop/api-build"
    assert result.details["job"] == name and result.details["number"] == 1
    assert result.details["result"] == "SUCCESS"
    assert result.details["url"].endswith("/job/teams/job/shop/job/api-build/1/")
    # the console arrived line by line, each with the module and stage prefix
    output = h.stream.getvalue().splitlines()
    assert any(line.endswith(f"api          build  | building api at {shop.head}") for line in output), output
    assert output[-1].endswith("api          build  | Finished: SUCCESS")
    # the build pushed the content tag; the registry finds it, as the runner's push stage will
    digest = registry.find(job, job.image.content_tag)
    assert digest and digest.startswith("sha256:")
    assert registry.find(job, job.image.commit_tag) == digest
    # the contract won over the user's IMAGE_TAG; the user's other parameter and the head were passed
    (build,) = double.builds(name)
    assert build.parameters["IMAGE_TAG"] == job.image.commit_tag == shop.head
    assert build.parameters["IMAGE_CONTENT_TAG"] == job.image.content_tag
    assert build.parameters["BUILD_LABEL"] == "nightly"
    assert build.parameters["GIT_COMMIT"] == shop.head
    assert build.parameters["DEPLOYFW_MODULE"] == "api"
    assert build.parameters[RUN_ID_PARAMETER] == "run-1.api"
    assert double.token not in h.stream.getvalue()


def test_failure_is_reported_with_the_console_link(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    name = add_script_job(double, config, "api", "print('compiling'); raise SystemExit(3)")
    h = harness(double)

    result = h.backend.build(h.job("api"))

    assert not result.ok
    assert result.details["result"] == "FAILURE"
    assert "finished FAILURE" in (result.error or "") and "/job/teams/job/shop/job/api-build/1/console" in result.error
    assert "compiling" in h.lines and "ERROR: script returned exit code 3" in h.lines
    assert double.builds(name)[0].result == "FAILURE"


def test_unstable_fails_unless_unstable_ok(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    code = "print('tests: 1 flaky'); raise SystemExit(7)"
    add_script_job(double, config, "api", code, unstable_return=7)
    add_script_job(double, config, "flaky", code, unstable_return=7)
    h = harness(double)

    strict = h.backend.build(h.job("api"))
    lenient = h.backend.build(h.job("flaky"))

    assert not strict.ok and strict.details["result"] == "UNSTABLE"
    assert "unstable_ok" in (strict.error or "")
    assert lenient.ok and lenient.details["result"] == "UNSTABLE"


# -- cancel, queue, deadlines -------------------------------------------------------------------


def test_cancel_stops_the_running_jenkins_build(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    name = add_script_job(double, config, "api", "import time\nprint('working')\ntime.sleep(60)")
    h = harness(double)
    job = h.job("api")
    inner = job.log

    def log(line: str) -> None:  # deployfw is cancelled once the build is visibly running
        inner(line)
        if line == "working":
            h.ctx.cancel.set()

    job.log = log
    started = time.monotonic()

    result = h.backend.build(job)

    assert time.monotonic() - started < 15
    assert not result.ok and result.details["result"] == "ABORTED"
    assert "stopped: deployfw was cancelled" in (result.error or "")
    (build,) = double.builds(name)
    assert build.result == "ABORTED" and build.aborted_by == double.user
    assert len(posts(double, "/1/stop")) == 1


def test_queue_item_cancelled_in_jenkins_fails_the_build(
    make_double: Callable[..., JenkinsDouble], config: Config, harness: Callable[..., Harness]
) -> None:
    double = make_double(quiet_period=30)
    name = add_script_job(double, config, "api", "print('never runs')")
    h = harness(double)
    server = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)

    def cancel_in_jenkins() -> None:
        item = wait_for(server.get_queue_info)[0]
        server.cancel_queue(item["id"])

    in_background(cancel_in_jenkins)
    result = h.backend.build(h.job("api"))

    assert not result.ok
    assert "was cancelled before its build started" in (result.error or "")
    assert double.builds(name) == []


def test_cancel_while_queued_cancels_the_queue_item(
    make_double: Callable[..., JenkinsDouble], config: Config, harness: Callable[..., Harness]
) -> None:
    double = make_double(quiet_period=30)
    name = add_script_job(double, config, "api", "print('never runs')")
    h = harness(double)
    server = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)
    queued: list[int] = []

    def cancel_deployfw() -> None:
        queued.append(wait_for(server.get_queue_info)[0]["id"])
        h.ctx.cancel.set()

    in_background(cancel_deployfw)
    result = h.backend.build(h.job("api"))

    assert not result.ok and "cancelled while Jenkins queue item" in (result.error or "")
    assert server.get_queue_item(queued[0])["cancelled"] is True
    assert double.builds(name) == []


def fast_clock(factor: float = 100.0) -> Callable[[], float]:
    """A clock running ``factor`` times faster, so minute deadlines pass in a fraction of a second."""
    origin = time.monotonic()
    return lambda: origin + (time.monotonic() - origin) * factor


def test_queue_deadline_cancels_the_item(
    make_double: Callable[..., JenkinsDouble], config: Config, harness: Callable[..., Harness]
) -> None:
    double = make_double(quiet_period=60)
    name = add_script_job(double, config, "flaky", "print('never runs')")
    h = harness(double, clock=fast_clock())

    result = h.backend.build(h.job("flaky"))  # queue_timeout_minutes: 0.5

    assert not result.ok and "did not start before the deadline" in (result.error or "")
    assert double.wait_idle(2) and double.builds(name) == []
    assert len(posts(double, "/queue/cancelItem")) == 1


def test_build_deadline_stops_the_build(double: JenkinsDouble, config: Config, harness: Callable[..., Harness]) -> None:
    name = add_script_job(double, config, "flaky", "import time\nprint('working')\ntime.sleep(60)")
    h = harness(double, clock=fast_clock(), stop_grace=1000)  # grace: 10 s of real time

    result = h.backend.build(h.job("flaky"))  # timeout_minutes: 1

    assert not result.ok and "still running after 1 min" in (result.error or "")
    assert result.details["result"] == "ABORTED"
    assert double.builds(name)[0].result == "ABORTED"


# -- auth, crumbs, transient faults -----------------------------------------------------------


def test_rejected_token_fails_clearly_without_triggering_or_leaking_it(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    add_script_job(double, config, "api", "print('never runs')")
    bad = "f" * 34
    h = harness(double, token=bad)

    result = h.backend.build(h.job("api"))

    assert not result.ok
    assert "rejected the API token" in (result.error or "") and "JENKINS_API_TOKEN" in (result.error or "")
    assert result.details["result"] == "NOT_STARTED"
    assert bad not in (result.error or "") and bad not in h.stream.getvalue()
    assert [r for r in double.requests() if r.method == "POST"] == []


def test_rejected_token_fails_the_run_with_exit_1_and_no_deploy_call(
    double: JenkinsDouble, config: Config, shop: GitRepoBuilder, aws_sandbox: Any
) -> None:
    # flaky: no test pushes its image, so the run cannot reuse one and must build
    seed_job(double, config, "flaky", aws_sandbox.endpoint_url)
    bad = "e" * 34
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JENKINS_", "AWS_", "GIT_", "CODEBUILD_"))}
    env.update(
        {
            **double.environment(),
            "JENKINS_API_TOKEN": bad,
            "AWS_ENDPOINT_URL": aws_sandbox.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    env.pop("JOB_NAME", None)
    before = len(aws_requests(aws_sandbox))
    report = shop.path.parent / "auth-report.json"

    done = subprocess.run(
        [sys.executable, "-m", "deployfw", "run", "-m", "flaky", "--report", str(report)],
        cwd=shop.path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "rejected the API token of user 'deployfw' (HTTP 401)" in output
    assert "check JENKINS_USER and JENKINS_API_TOKEN" in output and bad not in output
    (module,) = json.loads(report.read_text())["modules"]
    assert module["status"] == "failed" and "rejected the API token" in module["error"]
    assert [(s["stage"], s["status"]) for s in module["stages"]] == [
        ("build", "failed"),
        ("push", "skipped"),
        ("deploy", "skipped"),
    ]
    operations = {c.get("operation") for c in aws_requests(aws_sandbox)[before:]}
    assert not operations & {"RegisterTaskDefinition", "CreateDeployment", "UpdateService"}, operations
    assert [r for r in double.requests() if r.method == "POST"] == []


def aws_requests(sandbox: Any) -> list[dict[str, Any]]:
    """The AWS sandbox's request log, read as a user would (``GET /_sandbox/requests``)."""
    with urllib.request.urlopen(f"{sandbox.endpoint_url}/_sandbox/requests", timeout=10) as answer:
        return list(json.load(answer))


def test_missing_credentials_are_a_preflight_problem_reported_once(
    config: Config, shop: GitRepoBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN", "JENKINS_API_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    ctx = RunContext(config=config, head=shop.head, run_id="run-1", region="us-east-1")
    backend = JenkinsBuild(ctx)

    problems = [str(p) for p in backend.preflight(config.modules["api"], config)]

    assert len(problems) == 3, problems
    assert all("needed by the jenkins build backend" in p for p in problems)
    assert any(p.startswith("JENKINS_API_TOKEN") for p in problems)
    assert backend.preflight(config.modules["flaky"], config) == []


def test_csrf_crumbs_are_fetched_and_refreshed(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    double.set_crumbs(tokens_exempt=False)  # token-authenticated POSTs need a crumb too
    name = add_script_job(double, config, "api", "print('ok')")
    h = harness(double)

    first = h.backend.build(h.job("api"))
    double.invalidate_crumbs()  # as a controller restart does
    h.ctx.run_id = "run-2"  # the next run, with the same client
    second = h.backend.build(h.job("api"))

    assert first.ok and second.ok, (first.error, second.error)
    assert [b.result for b in double.builds(name)] == ["SUCCESS", "SUCCESS"]
    crumb_reads = [r for r in double.requests() if r.path == "/crumbIssuer/api/json"]
    assert len(crumb_reads) == 2
    triggers = [r.status for r in posts(double, "/buildWithParameters")]
    assert triggers == [201, 403, 201]


def test_transient_faults_are_retried_and_start_one_build_only(
    double: JenkinsDouble, config: Config, harness: Callable[..., Harness]
) -> None:
    name = add_script_job(double, config, "api", "for i in range(3): print('step', i)")
    double.set_faults(
        "",
        # the trigger is accepted, then the proxy loses the answer: ambiguous, must not build twice
        Fault("status", r"/buildWithParameters$", status=502, method="POST", after=True),
        Fault("status", r"/queue/item/\d+/api/json$", status=503, times=2),
        Fault("status", r"/logText/progressiveText$", status=500, times=1),
        Fault("reset", r"/logText/progressiveText$", times=1),
        Fault("reset", r"/\d+/api/json$", times=1),
    )
    h = harness(double)

    result = h.backend.build(h.job("api"))

    assert result.ok, (result.error, h.lines)
    assert len(double.builds(name)) == 1
    assert [line for line in h.lines if line.startswith("step")] == ["step 0", "step 1", "step 2"]
    fired = [r.fault for r in double.requests() if r.fault]
    assert fired.count("status") == 4 and fired.count("reset") == 2, fired
    assert len(posts(double, "/buildWithParameters")) == 1


def test_folder_job_and_missing_job(double: JenkinsDouble, config: Config, harness: Callable[..., Harness]) -> None:
    h = harness(double)
    missing = h.backend.build(h.job("api"))
    assert not missing.ok and "not found" in (missing.error or "")

    name = add_script_job(double, config, "api", "print('in a folder')")
    found = h.backend.build(h.job("api"))

    assert name == "teams/shop/api-build"
    assert found.ok and "in a folder" in h.lines
    assert any(r.path == "/job/teams/job/shop/job/api-build/buildWithParameters" for r in double.requests())


def test_steps_describe_the_job_and_deadlines(config: Config, shop: GitRepoBuilder) -> None:
    ctx = RunContext(config=config, head=shop.head, run_id="run-1", region="us-east-1")
    steps = JenkinsBuild(ctx).steps(config.modules["flaky"], config)
    assert "flaky-build" in steps[0]
    assert "deadline 0.5 min" in steps[1] and "deadline 1 min" in steps[1]
    assert "UNSTABLE succeeds" in steps[2]


def test_plugin_registers_jenkins_without_importing_python_jenkins(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom deployfw.plugins import PluginManager\n"
        "spec = PluginManager(entry_points=False).backends.get('build', 'jenkins')\n"
        "assert spec.schema['properties']['job']\n"
        "assert 'jenkins' not in sys.modules and 'deployfw_jenkins.client' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
