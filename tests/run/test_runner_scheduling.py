"""Scheduling across modules: dependency order between services, failures that skip only dependents.

A variant of the example where services depend on services (``deps.yaml``):
user-api depends on order-api (built by CodeBuild, so a ``build:order-api`` fault
fails it) and product-api on user-api; payment-api is independent.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_helpers import commit_all, copy_example

from deployfw.testing import CliResult, SandboxProcess, calls

SANDBOX_CONFIG = "deps.yaml"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_example(tmp_path_factory.mktemp("sched") / "repo")
    doc = yaml.safe_load((repo / "modules.yaml").read_text())
    doc["modules"]["user-api"]["depends_on"] = ["common", "order-api"]
    doc["modules"]["product-api"]["depends_on"] = ["common", "user-api"]
    del doc["modules"]["legacy-api"]  # the four ECS services are the dependency chain under test
    for env in doc.get("environments", {}).values():
        env.get("modules", {}).pop("legacy-api", None)
    (repo / "deps.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    commit_all(repo, "services that depend on services")
    return repo


def lines_of(stderr: str, module: str) -> list[int]:
    """Indexes of the event lines a module's run emitted (the plan's lines are deployfw's)."""
    return [i for i, line in enumerate(stderr.splitlines()) if line[9:].split(" ", 1)[0] == module]


def index_of(stderr: str, module: str, text: str) -> int:
    return next(i for i in lines_of(stderr, module) if text in stderr.splitlines()[i])


@pytest.fixture(scope="module")
def failed_build(
    deployfw: Callable[..., CliResult], sandbox: SandboxProcess, example: Path
) -> tuple[CliResult, dict[str, Any]]:
    sandbox.set_faults("build:order-api")
    sandbox.clear_requests()
    try:
        done = deployfw("-c", "deps.yaml", "run", "--all", "--report", "out/deps.json", "--junit", "out/deps.xml")
    finally:
        sandbox.set_faults("")
    return done, json.loads((example / "out/deps.json").read_text())


def test_build_failure_skips_its_dependents_with_the_reason(
    failed_build: tuple[CliResult, dict[str, Any]], sandbox: SandboxProcess
) -> None:
    done, report = failed_build
    assert done.code == 1, done.output
    assert report["status"] == "failed"
    modules = {m["name"]: m for m in report["modules"]}
    assert modules["order-api"]["status"] == "failed"
    assert [s["status"] for s in modules["order-api"]["stages"]] == ["failed", "skipped", "skipped"]
    assert modules["order-api"]["error"]
    assert modules["user-api"]["status"] == "skipped"
    assert modules["user-api"]["error"] == "dependency order-api failed"
    assert modules["product-api"]["status"] == "skipped"
    assert modules["product-api"]["error"] == "dependency order-api failed"  # transitive: names the root cause
    assert modules["payment-api"]["status"] == "succeeded", "an independent module is not stopped"
    for name in ("user-api", "product-api"):
        assert modules[name]["image"] is None and modules[name]["deploy"] == {}
        assert all(s["status"] == "skipped" for s in modules[name]["stages"])
    # nothing of the skipped modules reached AWS
    requests = sandbox.requests()
    assert calls(requests, "CreateRepository", repositoryName="user-api") == []
    assert calls(requests, "DescribeRepositories", repositoryNames=["user-api"]) == []
    assert calls(requests, "UpdateService", service="product-api") == []
    assert [r["params"].get("applicationName") for r in calls(requests, "CreateDeployment")] == ["shop-payment-api"]
    # the summary says why
    summary = {line.split()[0]: line for line in done.stdout.splitlines()[1:-1]}
    assert "dependency order-api failed" in summary["user-api"] and summary["user-api"].split()[1] == "skipped"


def test_junit_marks_the_failure_and_the_skips(failed_build: tuple[CliResult, dict[str, Any]], example: Path) -> None:
    root = ET.parse(example / "out/deps.xml").getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert len(cases) == 4 * 3
    failure = cases[("deployfw.order-api", "build")].find("failure")
    report = {m["name"]: m for m in failed_build[1]["modules"]}
    assert failure is not None and failure.get("message") == report["order-api"]["error"]
    skipped = cases[("deployfw.user-api", "deploy")].find("skipped")
    assert skipped is not None and skipped.get("message") == "dependency order-api failed"
    assert all(len(cases[("deployfw.payment-api", s)]) == 0 for s in ("build", "push", "deploy"))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("skipped") == "8"


def test_independent_modules_run_in_parallel(failed_build: tuple[CliResult, dict[str, Any]]) -> None:
    stderr = failed_build[0].stderr
    # payment-api (local build) deployed while order-api's CodeBuild build was still running or failing
    assert lines_of(stderr, "payment-api")[0] < index_of(stderr, "order-api", "build  | failed")


def test_dependents_start_only_after_their_dependency_deployed(
    failed_build: tuple[CliResult, dict[str, Any]], deployfw: Callable[..., CliResult], example: Path
) -> None:
    done = deployfw("-c", "deps.yaml", "run", "-m", "product-api", "-m", "user-api", "-m", "order-api",
                    "--report", "out/order.json")  # fmt: skip

    assert done.code == 0, done.output
    stderr = done.stderr
    assert index_of(stderr, "order-api", "deploy | succeeded") < lines_of(stderr, "user-api")[0]
    assert index_of(stderr, "user-api", "deploy | succeeded") < lines_of(stderr, "product-api")[0]
    report = json.loads((example / "out/order.json").read_text())
    assert [(m["name"], m["status"]) for m in report["modules"]] == [
        ("order-api", "succeeded"), ("user-api", "succeeded"), ("product-api", "succeeded"),
    ]  # fmt: skip
