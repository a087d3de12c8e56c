"""CodeBuild: real phases, a real buildspec run on the repository, logs, overrides, stop."""

from __future__ import annotations

from typing import Any

INLINE = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello $GREETING\n      - cat marker.txt\n"


def _finished(cb: Any, wait: Any, build_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        (build,) = cb.batch_get_builds(ids=[build_id])["builds"]
        return build if build["buildComplete"] else None

    return wait(done, timeout=20)


def _log_lines(logs: Any, build: dict[str, Any]) -> list[str]:
    events = logs.get_log_events(logGroupName=build["logs"]["groupName"], logStreamName=build["logs"]["streamName"])[
        "events"
    ]
    return [e["message"] for e in events]


def test_build_runs_buildspec_at_source_version_and_logs(aws_repo, aws_client, aws_wait, no_faults):
    cb, logs = aws_client("codebuild"), aws_client("logs")
    _, first_sha = aws_repo
    started = cb.start_build(
        projectName="user-api-build",
        sourceVersion=first_sha,
        buildspecOverride=INLINE,
        environmentVariablesOverride=[{"name": "GREETING", "value": "sandbox", "type": "PLAINTEXT"}],
    )["build"]
    assert started["buildStatus"] == "IN_PROGRESS"
    build = _finished(cb, aws_wait, started["id"])
    assert build["buildStatus"] == "SUCCEEDED"
    assert build["resolvedSourceVersion"] == first_sha
    phases = [p["phaseType"] for p in build["phases"]]
    assert phases == [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "PRE_BUILD",
        "BUILD",
        "POST_BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ]
    assert build["logs"]["groupName"] == "/aws/codebuild/user-api-build"
    lines = _log_lines(logs, build)
    assert "hello sandbox" in lines
    assert "first" in lines  # marker.txt as of the requested commit, not HEAD


def test_repository_buildspec_and_failure(aws_client, aws_wait, no_faults):
    cb, logs = aws_client("codebuild"), aws_client("logs")
    ok = _finished(cb, aws_wait, cb.start_build(projectName="order-api-build")["build"]["id"])
    assert ok["buildStatus"] == "SUCCEEDED"
    assert any(line.startswith("from-repo") for line in _log_lines(logs, ok))
    failing = "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n"
    bad = _finished(
        cb, aws_wait, cb.start_build(projectName="order-api-build", buildspecOverride=failing)["build"]["id"]
    )
    assert bad["buildStatus"] == "FAILED"
    assert {p["phaseType"]: p.get("phaseStatus") for p in bad["phases"]}["BUILD"] == "FAILED"


def test_build_fault_fails_next_build_only(aws_sandbox, aws_client, aws_wait, no_faults):
    cb = aws_client("codebuild")
    aws_sandbox.set_faults("build:fail-api")
    results = []
    for _ in range(2):
        started = cb.start_build(projectName="fail-api-build", buildspecOverride=INLINE)["build"]
        results.append(_finished(cb, aws_wait, started["id"]))
    first, second = results
    assert (first["buildStatus"], second["buildStatus"]) == ("FAILED", "SUCCEEDED")


def test_stop_build(aws_client, aws_wait, no_faults):
    cb = aws_client("codebuild")
    slow = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30\n"
    build_id = cb.start_build(projectName="stop-api-build", buildspecOverride=slow)["build"]["id"]
    aws_wait(lambda: cb.batch_get_builds(ids=[build_id])["builds"][0]["currentPhase"] == "BUILD")
    cb.stop_build(id=build_id)
    build = _finished(cb, aws_wait, build_id)
    assert build["buildStatus"] == "STOPPED"


def test_default_runner_is_deployfw_buildspec(aws_sandbox, aws_client, aws_wait, no_faults):
    cb, logs = aws_client("codebuild"), aws_client("logs")
    stub = aws_sandbox.ctx.build_runner
    aws_sandbox.ctx.build_runner = None
    try:
        build = _finished(
            cb,
            aws_wait,
            cb.start_build(
                projectName="cli-api-build",
                buildspecOverride=INLINE,
                environmentVariablesOverride=[{"name": "GREETING", "value": "real-runner"}],
            )["build"]["id"],
        )
    finally:
        aws_sandbox.ctx.build_runner = stub
    assert build["buildStatus"] == "SUCCEEDED"
    assert any("hello real-runner" in line for line in _log_lines(logs, build))


def test_a_parameter_store_variable_resolves_and_a_missing_one_fails_the_build_before_any_command(
    aws_client, aws_wait, no_faults
):
    """As CodeBuild: the value comes from SSM; a parameter SSM does not hold fails DOWNLOAD_SOURCE."""
    cb, logs, ssm = aws_client("codebuild"), aws_client("logs"), aws_client("ssm")
    spec = 'version: 0.2\nphases:\n  build:\n    commands:\n      - test "$GREETING" = from-ssm\n'

    def build(reference: str) -> dict[str, Any]:
        variables = [{"name": "GREETING", "value": reference, "type": "PARAMETER_STORE"}]
        started = cb.start_build(projectName="order-api-build", buildspecOverride=spec,
                                 environmentVariablesOverride=variables)["build"]  # fmt: skip
        return _finished(cb, aws_wait, started["id"])

    ssm.put_parameter(Name="/sandbox-test/greeting", Value="from-ssm", Type="String", Overwrite=True)
    try:
        assert build("/sandbox-test/greeting")["buildStatus"] == "SUCCEEDED"
    finally:
        ssm.delete_parameter(Name="/sandbox-test/greeting")

    failed = build("/sandbox-test/greeting")
    assert failed["buildStatus"] == "FAILED"
    phases = {p["phaseType"]: p for p in failed["phases"]}
    assert "BUILD" not in phases
    message = "parameter does not exist: /sandbox-test/greeting"
    assert phases["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    assert phases["DOWNLOAD_SOURCE"]["contexts"] == [{"statusCode": "Decrypted Variables Error", "message": message}]
    assert f"[Container] Phase context status code: Decrypted Variables Error Message: {message}" in _log_lines(
        logs, failed
    )
