"""The Jenkins double, driven by unmodified python-jenkins and raw HTTP.

Each test pins one controller behaviour deployfw's client relies on (see
shared/research/jenkins-double.md), so a client that passes here meets the same
shapes, refusals and quirks on a real controller.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import jenkins
import pytest
import requests

from deployfw.errors import InputError
from deployfw.sandbox.jenkins import Fault, JenkinsDouble

JSON = "application/json;charset=utf-8"


def script(code: str) -> list[str]:
    """A job command running Python ``code`` unbuffered."""
    return [sys.executable, "-u", "-c", code]


def wait_started(server: jenkins.Jenkins, queue_id: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = server.get_queue_item(queue_id)
        if item.get("executable"):
            return int(item["executable"]["number"])
        time.sleep(0.01)
    raise AssertionError(f"queue item {queue_id} never started")


def wait_done(server: jenkins.Jenkins, job: str, number: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = server.get_build_info(job, number)
        if not info["building"]:
            return info
        time.sleep(0.01)
    raise AssertionError(f"{job} #{number} never finished")


def auth(double: JenkinsDouble) -> tuple[str, str]:
    return (double.user, double.token)


def test_queue_build_console_result_cycle_in_a_folder(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job(
        "team/apps/svc",
        command=script(
            "import os; print('module', os.environ['MODULE'], os.environ['TAG']);"
            "print('job', os.environ['JOB_NAME'], os.environ['BUILD_NUMBER'])"
        ),
        parameters={"MODULE": "", "TAG": "latest"},
    )
    assert server.get_whoami()["id"] == double.user
    assert server.job_exists("team/apps/svc")
    assert not server.job_exists("team/apps/other")

    queue_id = server.build_job("team/apps/svc", {"MODULE": "user-api", "UNDEFINED": "dropped"})
    waiting = server.get_queue_item(queue_id)
    assert waiting["_class"] == "hudson.model.Queue$WaitingItem"
    assert isinstance(waiting["why"], str) and "executable" not in waiting

    number = wait_started(server, queue_id)
    left = server.get_queue_item(queue_id)
    assert left["_class"] == "hudson.model.Queue$LeftItem"
    assert left["why"] is None and left["cancelled"] is False
    assert left["executable"] == {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": number,
        "url": f"{double.url}job/team/job/apps/job/svc/{number}/",
    }

    info = wait_done(server, "team/apps/svc", number)
    assert info["_class"] == "org.jenkinsci.plugins.workflow.job.WorkflowRun"
    assert (info["result"], info["building"], info["inProgress"]) == ("SUCCESS", False, False)
    assert info["id"] == str(number) and info["number"] == number and info["queueId"] == queue_id
    assert info["duration"] > 0 and info["estimatedDuration"] == -1
    assert isinstance(info["timestamp"], int) and info["url"].endswith(f"/job/svc/{number}/")
    params = {p["name"]: p["value"] for a in info["actions"] for p in a.get("parameters", [])}
    assert params == {"MODULE": "user-api", "TAG": "latest"}  # only defined ones; defaults fill gaps

    console = server.get_build_console_output("team/apps/svc", number)
    assert "module user-api latest\n" in console
    assert f"job team/apps/svc {number}\n" in console
    assert console.endswith("Finished: SUCCESS\n")


def test_failing_command_fails_the_build(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("broken", command=script("import sys; print('boom'); sys.exit(3)"))
    number = wait_started(server, server.build_job("broken"))
    info = wait_done(server, "broken", number)
    assert info["result"] == "FAILURE"
    console = server.get_build_console_output("broken", number)
    assert "boom\n" in console and "exit code 3" in console
    assert console.endswith("Finished: FAILURE\n")


def test_stop_aborts_a_running_build_and_kills_its_process(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("slow", command=script("import time; print('working'); time.sleep(60)"))
    number = wait_started(server, server.build_job("slow"))
    get_stop = requests.get(f"{double.url}job/slow/{number}/stop", auth=auth(double), timeout=5)
    assert get_stop.status_code == 405

    raw = requests.post(f"{double.url}job/slow/{number}/stop", auth=auth(double), timeout=5, allow_redirects=False)
    assert raw.status_code == 302 and raw.headers["Location"] == f"{double.url}job/slow/{number}/"
    server.stop_build("slow", number)  # python-jenkins follows the redirect; stopping twice is harmless
    info = wait_done(server, "slow", number)
    assert info["result"] == "ABORTED"  # a minute's sleep run to its end would be SUCCESS
    console = server.get_build_console_output("slow", number)
    assert f"Aborted by {double.user}\n" in console and console.endswith("Finished: ABORTED\n")


def test_queue_cancel_and_queue_item_ttl(make_double: Any) -> None:
    double = make_double(quiet_period=30.0, queue_ttl=0.3)
    double.add_job("later", command=script("print('never')"))
    server = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)
    queue_id = server.build_job("later")
    assert "quiet period" in server.get_queue_item(queue_id)["why"]
    assert [i["id"] for i in server.get_queue_info()] == [queue_id]

    server.cancel_queue(queue_id)
    item = server.get_queue_item(queue_id)
    assert item["cancelled"] is True and item["executable"] is None and item["why"] is None
    assert server.get_queue_info() == []
    assert double.builds("later") == []

    time.sleep(0.4)
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_queue_item(queue_id)
    missing = requests.post(f"{double.url}queue/cancelItem?id=999", auth=auth(double), timeout=5)
    assert missing.status_code == 404


def test_identical_waiting_triggers_fold_into_one_item(make_double: Any) -> None:
    double = make_double(quiet_period=30.0)
    double.add_job("p", command=script("pass"), parameters={"A": ""})
    server = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)
    first = server.build_job("p", {"A": "1"})
    assert server.build_job("p", {"A": "1"}) == first
    assert server.build_job("p", {"A": "2"}) != first


def test_trigger_answers_201_with_absolute_queue_location(double: JenkinsDouble) -> None:
    double.add_job("p", command=script("pass"), parameters={"A": "x"})
    answer = requests.post(f"{double.url}job/p/buildWithParameters?A=1", auth=auth(double), timeout=5)
    assert answer.status_code == 201
    assert answer.headers["Location"] == f"{double.url}queue/item/1/"


def test_trigger_refusals(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("plain", command=script("pass"))
    double.add_job("off", command=script("pass"), parameters={"A": ""}, disabled=True)
    with pytest.raises(jenkins.JenkinsException, match=r"(?s)\[500\].*not parameterized"):
        server.build_job("plain", {"A": "1"})
    with pytest.raises(requests.HTTPError) as refused:
        server.build_job("off", {"A": "1"})
    assert refused.value.response.status_code == 409
    with pytest.raises(jenkins.NotFoundException):
        server.build_job("nope/deeper", {"A": "1"})


def test_missing_items_are_404_html_at_any_depth(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("a/b/c", command=script("pass"))
    for path in (
        "job/x/api/json",
        "job/a/job/x/api/json",
        "job/a/job/b/job/x/api/json",
        "job/a/job/b/job/c/7/api/json",
        "job/a/job/b/job/c/7/consoleText",
        "job/a/job/b/job/c/lastBuild/api/json",
        "queue/item/42/api/json",
    ):
        answer = requests.get(double.url + path, auth=auth(double), timeout=5)
        assert answer.status_code == 404, path
        assert answer.headers["Content-Type"].startswith("text/html")
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_build_info("a/b/c", 7)
    assert server.get_job_info("a/b")["_class"] == "com.cloudbees.hudson.plugins.folder.Folder"
    assert server.get_job_info("a/b/c")["fullName"] == "a/b/c"


def test_every_response_identifies_jenkins(double: JenkinsDouble) -> None:
    for status, answer in (
        (200, requests.get(f"{double.url}api/json", auth=auth(double), timeout=5)),
        (404, requests.get(f"{double.url}job/none/api/json", auth=auth(double), timeout=5)),
        (401, requests.get(f"{double.url}api/json", auth=("deployfw", "wrong"), timeout=5)),
        (403, requests.get(f"{double.url}api/json", timeout=5)),
    ):
        assert answer.status_code == status
        assert answer.headers["X-Jenkins"] and answer.headers["X-Hudson"] == "1.395"
        assert answer.headers["X-Jenkins-Session"]
    ok = requests.get(f"{double.url}me/api/json", auth=auth(double), timeout=5)
    assert ok.headers["Content-Type"] == JSON


def test_auth_failures(double: JenkinsDouble) -> None:
    bad = requests.get(f"{double.url}me/api/json", auth=(double.user, "not-the-token"), timeout=5)
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == 'Basic realm="Jenkins"'
    anonymous = requests.get(f"{double.url}me/api/json", timeout=5)
    assert anonymous.status_code == 403

    wrong = jenkins.Jenkins(double.url, username=double.user, password="not-the-token", timeout=5)
    with pytest.raises(jenkins.JenkinsException, match=r"\[401\]"):
        wrong.get_whoami()
    # The documented pitfall: get_version() goes out anonymously before auth is resolved.
    fresh = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)
    with pytest.raises(jenkins.BadHTTPException):
        fresh.get_version()
    fresh.get_whoami()
    assert fresh.get_version() == "2.462.3"


def test_crumbs_with_password_auth_and_token_exemption(make_double: Any) -> None:
    double = make_double(password="s3cret-password")
    double.add_job("p", command=script("pass"), parameters={"A": ""})
    url = f"{double.url}job/p/buildWithParameters?A=1"

    crumbless = requests.post(url, auth=(double.user, "s3cret-password"), timeout=5)
    assert crumbless.status_code == 403
    assert "No valid crumb was included in the request" in crumbless.text
    assert requests.post(url + "1", auth=auth(double), timeout=5).status_code == 201  # token: exempt

    session = requests.Session()
    session.auth = (double.user, "s3cret-password")
    issued = session.get(f"{double.url}crumbIssuer/api/json", timeout=5)
    crumb = issued.json()
    assert crumb["_class"] == "hudson.security.csrf.DefaultCrumbIssuer"
    assert crumb["crumbRequestField"] == "Jenkins-Crumb"
    assert any(c.name.startswith("JSESSIONID.") for c in session.cookies)
    headers = {"Jenkins-Crumb": crumb["crumb"]}
    assert session.post(url + "2", headers=headers, timeout=5).status_code == 201
    other = requests.post(url + "3", headers=headers, auth=(double.user, "s3cret-password"), timeout=5)
    assert other.status_code == 403  # the crumb is bound to its web session

    # python-jenkins fetches the crumb lazily and sends it.
    by_password = jenkins.Jenkins(double.url, username=double.user, password="s3cret-password", timeout=5)
    assert by_password.build_job("p", {"A": "4"}) > 0

    double.invalidate_crumbs()  # e.g. a controller restart: python-jenkins never re-fetches
    with pytest.raises(jenkins.JenkinsException, match="No valid crumb"):
        by_password.build_job("p", {"A": "5"})

    double.set_crumbs(issuer=False)  # CSRF protection off: 404 there, no check on POSTs
    assert requests.get(f"{double.url}crumbIssuer/api/json", auth=auth(double), timeout=5).status_code == 404
    assert by_password.build_job("p", {"A": "6"}) > 0

    double.set_crumbs(issuer=True, tokens_exempt=False)  # an older controller: tokens need crumbs too
    assert requests.post(url + "7", auth=auth(double), timeout=5).status_code == 403
    by_token = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=5)
    assert by_token.build_job("p", {"A": "8"}) > 0


def test_progressive_text_while_running_and_after(
    double: JenkinsDouble, server: jenkins.Jenkins, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"  # the build holds its second half until the test has read the first
    double.add_job(
        "stream",
        command=script(
            "import os, sys, time\n"
            "sys.stdout.write('one\\ntw'); sys.stdout.flush()\n"
            f"while not os.path.exists({str(go_on)!r}): time.sleep(0.01)\n"
            "sys.stdout.write('o\\nthree')\n"
        ),
    )
    number = wait_started(server, server.build_job("stream"))
    progressive = f"{double.url}job/stream/{number}/logText/progressiveText"
    deadline = time.monotonic() + 120  # a hang guard
    while time.monotonic() < deadline:
        running = requests.get(progressive, params={"start": 0}, auth=auth(double), timeout=5)
        if b"one\n" in running.content:
            break
        time.sleep(0.01)
    assert running.status_code == 200 and running.headers["X-More-Data"] == "true"
    assert running.content.endswith(b"one\n")  # the half line "tw" is held back
    offset = int(running.headers["X-Text-Size"])
    assert offset == len(running.content)

    go_on.touch()
    wait_done(server, "stream", number)
    rest = requests.get(progressive, params={"start": offset}, auth=auth(double), timeout=5)
    assert "X-More-Data" not in rest.headers
    assert rest.content == b"two\nthree\nFinished: SUCCESS\n"
    assert int(rest.headers["X-Text-Size"]) == offset + len(rest.content)
    whole = server.get_build_console_output("stream", number).encode()
    assert whole == running.content + rest.content


def test_build_fault_for_a_module_fails_its_next_build_once(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("svc", command=script("print('built')"), module="user-api")
    double.set_faults("build:user-api,deploy:other,throttle:5")
    first = wait_done(server, "svc", wait_started(server, server.build_job("svc")))
    second = wait_done(server, "svc", wait_started(server, server.build_job("svc")))
    assert (first["result"], second["result"]) == ("FAILURE", "SUCCESS")
    with pytest.raises(InputError, match="bad fault"):
        double.set_faults("explode:now")


def test_error_percent_answers_500_or_503(double: JenkinsDouble) -> None:
    double.set_faults("error:100")
    statuses = {requests.get(f"{double.url}api/json", auth=auth(double), timeout=5).status_code for _ in range(20)}
    assert statuses <= {500, 503} and statuses
    double.set_faults()
    assert requests.get(f"{double.url}api/json", auth=auth(double), timeout=5).status_code == 200


def test_surgical_faults_as_python_jenkins_sees_them(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("svc", command=script("print('ok')"))
    number = wait_started(server, server.build_job("svc"))
    wait_done(server, "svc", number)

    double.set_faults("", Fault("status", r"/svc/\d+/api/json$", status=502))
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):  # the 502 quirk
        server.get_build_info("svc", number)
    double.set_faults("", Fault("status", r"/svc/\d+/api/json$", status=500))
    with pytest.raises(jenkins.JenkinsException, match=r"Possibly authentication failed \[500\]"):
        server.get_build_info("svc", number)
    double.set_faults("", Fault("reset", r"/svc/\d+/api/json$"))
    with pytest.raises(requests.ConnectionError):
        server.get_build_info("svc", number)
    double.set_faults("", Fault("empty", r"/queue/item/"))
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_queue_item(1)
    double.set_faults("", Fault("delay", r"/svc/\d+/api/json$", delay=0.5))
    impatient = jenkins.Jenkins(double.url, username=double.user, password=double.token, timeout=0.2)
    impatient.get_whoami()
    with pytest.raises(jenkins.TimeoutException):
        impatient.get_build_info("svc", number)
    assert server.get_build_info("svc", number)["result"] == "SUCCESS"  # each rule hit once

    faults = [(r.path, r.status, r.fault) for r in double.requests() if r.fault]
    assert (f"/job/svc/{number}/api/json", 502, "status") in faults
    assert (f"/job/svc/{number}/api/json", 0, "reset") in faults


def test_after_fault_serves_the_request_then_loses_the_answer(double: JenkinsDouble, server: jenkins.Jenkins) -> None:
    double.add_job("svc", command=script("pass"), parameters={"A": ""})
    double.set_faults("", Fault("status", "buildWithParameters", status=502, after=True))
    with pytest.raises(requests.HTTPError):
        server.build_job("svc", {"A": "1"})
    double.wait_idle()
    assert len(double.builds("svc")) == 1  # the trigger took effect though the client saw a 502
