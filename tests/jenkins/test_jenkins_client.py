"""deployfw's Jenkins client against the double: the whole cycle, and every failure shape.

The double is driven through the real python-jenkins underneath the client, so these
tests also prove the client copes with python-jenkins's error-mapping quirks.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jenkins
import pytest
import requests

from deployfw import redact
from deployfw.errors import ExternalError, InputError
from deployfw.sandbox.jenkins import Fault, JenkinsDouble
from deployfw_jenkins.client import RUN_ID_PARAMETER, JenkinsClient, Queued
from deployfw_jenkins.credentials import JenkinsCredentials
from deployfw_jenkins.errors import (
    JenkinsAuthError,
    JenkinsError,
    JenkinsNotFound,
    JenkinsRefused,
    JenkinsTimeout,
    JenkinsUnavailable,
    QueueItemCancelled,
    QueueItemExpired,
)
from deployfw_jenkins.retrying import Failure, RetryPolicy, classify

PARAMS = {"MODULE": "", "COMMIT": "", RUN_ID_PARAMETER: ""}
MakeClient = Callable[..., JenkinsClient]


def script(code: str) -> list[str]:
    """A job command running Python ``code`` unbuffered."""
    return [sys.executable, "-u", "-c", code]


def run(client: JenkinsClient, job: str, params: dict[str, str]) -> tuple[int, list[str], str]:
    """Trigger, follow, stream and read the result: what the build backend will do."""
    queued = client.trigger(job, params)
    number = client.wait_for_build(queued, client.deadline(10))
    lines: list[str] = []
    assert client.stream_console(job, number, lines.append, deadline=client.deadline(10))
    outcome = client.wait_for_result(job, number, client.deadline(10))
    assert outcome.result is not None
    return number, lines, outcome.result


def exception_texts(exc: BaseException) -> str:
    """str and repr of an exception and everything it chains to."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def test_success_streams_the_console_of_a_folder_job(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job(
        "team/user-api-build",
        command=script("import os\nfor i in range(3): print('step', i, os.environ['MODULE'])"),
        parameters=PARAMS,
    )
    number, lines, result = run(client, "team/user-api-build", {"MODULE": "user-api", "COMMIT": "abc"})
    assert result == "SUCCESS"
    assert [line for line in lines if line.startswith("step")] == [f"step {i} user-api" for i in range(3)]
    assert lines[-1] == "Finished: SUCCESS"
    outcome = client.result("team/user-api-build", number)
    assert outcome.parameters["MODULE"] == "user-api" and outcome.parameters["COMMIT"] == "abc"
    assert len(outcome.parameters[RUN_ID_PARAMETER]) == 32
    assert client.console_text("team/user-api-build", number).endswith("Finished: SUCCESS\n")


def test_streaming_is_progressive(double: JenkinsDouble, client: JenkinsClient, tmp_path: Path) -> None:
    # Each tick waits until the client has passed the previous one on: the lines can only arrive one poll at a time.
    code = ("import os, time\nfor i in range(4):\n    print('tick', i)\n"
            f"    while not os.path.exists(os.path.join({str(tmp_path)!r}, f'go-{{i}}')):\n"
            "        time.sleep(0.01)\n")  # fmt: skip
    double.add_job("slowlog", command=script(code), parameters=PARAMS)
    queued = client.trigger("slowlog", {})
    number = client.wait_for_build(queued, client.deadline(10))
    seen: list[tuple[str, bool]] = []

    def emit(line: str) -> None:
        seen.append((line, double.builds("slowlog")[0].building))
        if line.startswith("tick "):
            (tmp_path / f"go-{line.split()[1]}").touch()

    assert client.stream_console("slowlog", number, emit)
    ticks = [(line, building) for line, building in seen if line.startswith("tick")]
    assert [line for line, _ in ticks] == [f"tick {i}" for i in range(4)]
    assert ticks[0][1] is True  # the first lines arrived while the build was still running
    polls = [r for r in double.requests() if r.path.endswith("/logText/progressiveText")]
    assert len(polls) >= 4 and all(r.status == 200 for r in polls)


def test_failure_result(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job("bad", command=script("import sys; print('compile error'); sys.exit(2)"), parameters=PARAMS)
    _, lines, result = run(client, "bad", {})
    assert result == "FAILURE"
    assert "compile error" in lines and lines[-1] == "Finished: FAILURE"


def test_cancel_stops_the_running_build(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job("forever", command=script("import time; print('started'); time.sleep(60)"), parameters=PARAMS)
    queued = client.trigger("forever", {})
    number = client.wait_for_build(queued, client.deadline(10))
    cancel = threading.Event()
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if line == "started":
            cancel.set()  # deployfw was interrupted (Ctrl-C / SIGTERM)

    assert client.stream_console("forever", number, emit, cancel) is False
    client.stop("forever", number)
    outcome = client.wait_for_result("forever", number, client.deadline(10))
    assert outcome.result == "ABORTED"
    assert f"Aborted by {double.user}" in client.console_text("forever", number)


def test_queue_item_cancelled_in_jenkins(make_double: Callable[..., JenkinsDouble], make_client: MakeClient) -> None:
    double = make_double(quiet_period=30.0)
    double.add_job("queued", command=script("pass"), parameters=PARAMS)
    client = make_client(double)
    queued = client.trigger("queued", {})
    threading.Timer(0.1, client.cancel_queue, args=(queued.queue_id,)).start()
    with pytest.raises(QueueItemCancelled, match=f"queue item {queued.queue_id}"):
        client.wait_for_build(queued, client.deadline(10))


def test_queue_deadline_cancels_the_item(make_double: Callable[..., JenkinsDouble], make_client: MakeClient) -> None:
    double = make_double(quiet_period=30.0)
    double.add_job("queued", command=script("pass"), parameters=PARAMS)
    client = make_client(double)
    queued = client.trigger("queued", {})
    with pytest.raises(JenkinsTimeout, match="quiet period"):
        client.wait_for_build(queued, client.deadline(0.2))
    assert jenkins.Jenkins(double.url, double.user, double.token).get_queue_info() == []
    assert double.builds("queued") == []


def test_expired_queue_item_is_found_by_run_id(
    make_double: Callable[..., JenkinsDouble], make_client: MakeClient
) -> None:
    double = make_double(queue_ttl=0.1)
    double.add_job("quick", command=script("print('done')"), parameters=PARAMS)
    client = make_client(double)
    queued = client.trigger("quick", {})
    assert double.wait_idle()
    time.sleep(0.2)  # the left queue item is forgotten
    assert client.wait_for_build(queued, client.deadline(5)) == 1
    with pytest.raises(QueueItemExpired, match="no longer knows queue item"):
        client.wait_for_build(queued.queue_id, client.deadline(5))


def test_auth_failure_is_clear_and_never_shows_the_token(double: JenkinsDouble, make_client: MakeClient) -> None:
    double.add_job("svc", command=script("pass"), parameters=PARAMS)
    wrong = "0123456789abcdef-wrong-token"
    client = make_client(double, token=wrong)
    with pytest.raises(JenkinsAuthError) as caught:
        client.trigger("svc", {})
    message = str(caught.value)
    assert "rejected the API token of user 'deployfw' (HTTP 401)" in message
    assert "JENKINS_API_TOKEN" in message
    assert isinstance(caught.value, ExternalError)
    assert wrong not in exception_texts(caught.value)
    assert not [r for r in double.requests() if r.method == "POST"]  # nothing was triggered


def test_transient_failures_are_retried_everywhere(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job("svc", command=script("print('ok')"), parameters=PARAMS)
    double.set_faults(
        "",
        Fault("status", r"/me/api/json", status=500),  # "Possibly authentication failed [500]"
        Fault("status", r"/job/svc/api/json", status=503),
        Fault("status", r"/buildWithParameters", status=502),
        Fault("status", r"/queue/item/", status=503, times=2),  # "does not exist"
        Fault("reset", r"/queue/item/"),
        Fault("empty", r"/logText/progressiveText"),
        Fault("status", r"/logText/progressiveText", status=502),
        Fault("reset", r"/svc/1/api/json"),
        Fault("status", r"/svc/1/api/json", status=503),
    )
    _, lines, result = run(client, "svc", {})
    assert result == "SUCCESS" and "ok" in lines
    assert sorted({(r.path, r.status) for r in double.requests() if r.fault})  # every fault fired
    assert all(f.fault for f in double.requests() if f.status in (0, 500, 502, 503))
    assert len(double.builds("svc")) == 1


def test_ambiguous_trigger_failure_does_not_build_twice(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job("svc", command=script("pass"), parameters=PARAMS)
    for fault in (
        Fault("status", r"/buildWithParameters", status=502, after=True),
        Fault("reset", r"/buildWithParameters", after=True),
        Fault("empty", r"/buildWithParameters", after=True),  # 200 without Location
    ):
        double.set_faults("", fault)
        before = len(double.builds("svc"))
        queued = client.trigger("svc", {"MODULE": "m"})
        number = client.wait_for_build(queued, client.deadline(10))
        assert double.wait_idle()
        assert len(double.builds("svc")) == before + 1
        assert client.result("svc", number).parameters[RUN_ID_PARAMETER] == queued.run_id
    posts = [r for r in double.requests() if r.method == "POST"]
    assert len(posts) == 3  # each retry found the first trigger instead of posting again


def test_ambiguous_failure_without_run_id_parameter_is_not_retried(
    double: JenkinsDouble, client: JenkinsClient
) -> None:
    double.add_job("legacy", command=script("pass"), parameters={"MODULE": ""})
    double.set_faults("", Fault("reset", r"/buildWithParameters", after=True))
    with pytest.raises(JenkinsError, match=f"does not define a {RUN_ID_PARAMETER}"):
        client.trigger("legacy", {"MODULE": "m"})
    assert len([r for r in double.requests() if r.method == "POST"]) == 1


def test_persistent_outage_gives_up_at_the_deadline(double: JenkinsDouble, make_client: MakeClient) -> None:
    double.add_job("svc", command=script("pass"), parameters=PARAMS)
    now = [0.0]
    client = make_client(
        double,
        retry=RetryPolicy(initial=1.0, maximum=10.0, budget=60.0),
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )
    client.connect()
    double.set_faults("", Fault("status", r"/job/svc/", status=503, times=None))
    with pytest.raises(JenkinsUnavailable, match="still failing") as caught:
        client.trigger("svc", {})
    assert 0 < now[0] <= 60.0  # slept (virtually) within the budget, no real waiting
    assert "503" in str(caught.value)


def test_crumb_handling(make_double: Callable[..., JenkinsDouble], make_client: MakeClient) -> None:
    double = make_double()
    double.add_job("svc", command=script("pass"), parameters=PARAMS)
    double.set_crumbs(issuer=True, tokens_exempt=False)  # every POST needs a crumb
    client = make_client(double)
    assert run(client, "svc", {})[2] == "SUCCESS"
    double.invalidate_crumbs()  # stale crumb: python-jenkins alone would fail from here on
    assert run(client, "svc", {})[2] == "SUCCESS"
    double.set_crumbs(issuer=False)  # CSRF protection off: a new client learns "no crumbs"
    fresh = make_client(double)
    assert run(fresh, "svc", {})[2] == "SUCCESS"
    double.set_crumbs(issuer=True, tokens_exempt=False)  # back on, after that client cached "no crumbs"
    assert run(fresh, "svc", {})[2] == "SUCCESS"
    statuses = [(r.path, r.status) for r in double.requests()]
    assert ("/crumbIssuer/api/json", 404) in statuses
    assert sum(1 for path, status in statuses if path.endswith("buildWithParameters") and status == 403) == 2


def test_refusals_are_not_retried(double: JenkinsDouble, client: JenkinsClient) -> None:
    double.add_job("off", command=script("pass"), parameters=PARAMS, disabled=True)
    double.add_job("plain", command=script("pass"))
    with pytest.raises(JenkinsNotFound, match="not found"):
        client.trigger("team/missing", {})
    with pytest.raises(JenkinsRefused, match="disabled"):
        client.trigger("off", {})
    with pytest.raises(JenkinsRefused, match="takes no parameters"):
        client.trigger("plain", {"MODULE": "m"})
    with pytest.raises(JenkinsNotFound):
        client.result("plain", 99)
    assert len([r for r in double.requests() if r.method == "POST"]) == 1  # the disabled job, once


def test_anonymous_access_denied_is_an_auth_error(double: JenkinsDouble) -> None:
    server = jenkins.Jenkins(double.url, timeout=5)  # no credentials at all
    with pytest.raises(jenkins.JenkinsException, match=r"\[403\]"):
        server.get_whoami()
    assert classify(jenkins.JenkinsException("Error in request. Possibly authentication failed [403]: x")) is (
        Failure.AUTH
    )


def test_classification_of_python_jenkins_shapes() -> None:
    def raised(outer: Exception, inner: Exception) -> Exception:
        try:
            try:
                raise inner
            except Exception:
                raise outer from None if False else outer
        except Exception as exc:
            return exc

    response = requests.Response()
    response.status_code = 503
    proxy = requests.HTTPError(response=response)
    assert classify(raised(jenkins.JenkinsException("job[a] number[1] does not exist"), proxy)) is Failure.TRANSIENT
    gone = raised(jenkins.JenkinsException("job[a] number[1] does not exist"), jenkins.NotFoundException("x"))
    assert classify(gone) is Failure.NOT_FOUND
    assert classify(jenkins.JenkinsException("Possibly authentication failed [500]: Server Error")) is (
        Failure.TRANSIENT
    )
    assert classify(jenkins.JenkinsException("Possibly authentication failed [401]: Unauthorized")) is Failure.AUTH
    crumb = jenkins.JenkinsException("Possibly authentication failed [403]: x\nNo valid crumb was included")
    assert classify(crumb) is Failure.CRUMB
    assert classify(requests.ConnectionError("reset")) is Failure.TRANSIENT
    assert classify(jenkins.TimeoutException("slow")) is Failure.TRANSIENT
    conflict = requests.Response()
    conflict.status_code = 409
    assert classify(requests.HTTPError(response=conflict)) is Failure.FATAL


def test_credentials_from_environment_and_token_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        JenkinsCredentials.from_environment({})
    text = str(missing.value)
    assert "JENKINS_URL" in text and "JENKINS_USER" in text and "JENKINS_API_TOKEN" in text

    token = "11aa22bb33cc44dd55ee66ff77889900aa"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)
    env = {"JENKINS_URL": "http://127.0.0.1:1", "JENKINS_USER": "ci", "JENKINS_API_TOKEN_FILE": str(token_file)}
    with pytest.raises(InputError, match=r"mode 0644.*chmod 600"):
        JenkinsCredentials.from_environment(env)
    token_file.chmod(0o600)
    credentials = JenkinsCredentials.from_environment(env)
    assert (credentials.url, credentials.user, credentials.token) == ("http://127.0.0.1:1/", "ci", token)
    assert token not in repr(credentials)
    assert redact.mask(f"token={token}") == "token=***"

    with pytest.raises(InputError, match="must not embed credentials"):
        JenkinsCredentials.from_environment(
            {"JENKINS_URL": "http://ci:pw-in-url@127.0.0.1/", "JENKINS_USER": "ci", "JENKINS_API_TOKEN": "abcd1234"}
        )
    from_env = JenkinsCredentials.from_environment({**env, "JENKINS_API_TOKEN": "direct-token-value"})
    assert from_env.token == "direct-token-value"


def test_token_never_appears_in_any_failure_text(double: JenkinsDouble, make_client: MakeClient) -> None:
    double.add_job("svc", command=script("pass"), parameters=PARAMS)
    client = make_client(double, retry=RetryPolicy(0.01, 0.02, 0.3))
    failures: list[BaseException] = []
    double.set_faults("", Fault("status", r"/job/svc/", status=503, times=None))
    for action in (
        lambda: client.trigger("svc", {}),
        lambda: client.result("missing", 1),
        lambda: client.wait_for_build(Queued("svc", 999, None), client.deadline(1)),
        lambda: make_client(double, token="wrong-token-value-123").connect(),
    ):
        with pytest.raises(JenkinsError) as caught:
            action()
        failures.append(caught.value)
    unreachable = make_client(double, retry=RetryPolicy(0.01, 0.02, 0.1))
    double.stop()
    with pytest.raises(JenkinsError) as down:
        unreachable.connect()
    failures.append(down.value)
    for failure in failures:
        assert double.token not in exception_texts(failure)
    assert "Connection" in str(down.value) or "connect" in str(down.value).lower()


def test_client_from_environment(double: JenkinsDouble) -> None:
    client = JenkinsClient.from_environment({**os.environ, **double.environment()}, timeout=5)
    assert client.connect()["id"] == double.user
