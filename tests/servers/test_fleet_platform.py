"""The sandbox's EC2/on-premises platform, through CodeDeploy's API as AWS serves it.

Each test deploys real bundles (shell scripts run by the sandbox's agent) to registered
on-premises instances and checks what a CodeDeploy user sees: deployment status and error
codes, per-instance lifecycle events and diagnostics, and what ended up on each instance.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers_kit import SESSION, deploy, event, http_get, instances, make_group, targets, upload, wait, write_bundle

from deployfw.serverspec import IN_PLACE_EVENTS


def test_on_premises_registration_tags_and_listing(box: Any) -> None:
    codedeploy = box.client("codedeploy")
    names = make_group(box, "reg", 2)
    assert codedeploy.list_on_premises_instances(registrationStatus="Registered",
                                                 tagFilters=[{"Key": "App", "Value": "reg", "Type": "KEY_AND_VALUE"}]
                                                 )["instanceNames"] == names  # fmt: skip
    info = codedeploy.get_on_premises_instance(instanceName="reg-1")["instanceInfo"]
    assert info["tags"] == [{"Key": "App", "Value": "reg"}] and info["iamSessionArn"] == SESSION.format(name="reg-1")
    assert [i["instanceName"] for i in codedeploy.batch_get_on_premises_instances(instanceNames=names)["instanceInfos"]
            ] == names  # fmt: skip
    with pytest.raises(ClientError, match="InstanceNameAlreadyRegisteredException"):
        codedeploy.register_on_premises_instance(instanceName="reg-1", iamSessionArn=SESSION.format(name="reg-1"))
    with pytest.raises(ClientError, match="IamArnRequiredException"):
        codedeploy.register_on_premises_instance(instanceName="reg-9")
    fleet = instances(box.endpoint_url)
    assert fleet["reg-1"]["tags"] == {"App": "reg"} and fleet["reg-1"]["address"] != fleet["reg-2"]["address"]
    codedeploy.deregister_on_premises_instance(instanceName="reg-2")
    assert codedeploy.list_on_premises_instances(registrationStatus="Deregistered")["instanceNames"] == ["reg-2"]
    assert "reg-2" not in instances(box.endpoint_url)


def test_hooks_run_in_order_with_codedeploy_variables_and_files_land_in_the_instance_root(
    box: Any, tmp_path: Path
) -> None:
    names = make_group(box, "envs", 2)
    variables = "$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME $DEPLOYMENT_GROUP_ID"
    record = f'echo "{variables}" >> "$ROOT/events.log"'
    events = ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
    folder = write_bundle(tmp_path / "b", "envs", dict.fromkeys(events, record))
    deployment = deploy(box, "envs", upload(box, folder, "envs-bucket", "envs/1.zip"))
    info = wait(box, deployment)
    assert info["status"] == "Succeeded", info
    group_id = box.client("codedeploy").get_deployment_group(applicationName="envs", deploymentGroupName="envs")[
        "deploymentGroupInfo"]["deploymentGroupId"]  # fmt: skip
    fleet = instances(box.endpoint_url)
    for name in names:
        root = Path(fleet[name]["root"])
        lines = (root / "events.log").read_text().splitlines()
        assert [line.split()[0] for line in lines] == ["BeforeInstall", "AfterInstall", "ApplicationStart",
                                                       "ValidateService"]  # fmt: skip
        assert all(line.split()[1:] == [deployment, "envs", "envs", group_id] for line in lines)
        assert (root / "opt/envs/version.txt").read_text() == "envs"
        assert fleet[name]["revision"].startswith("s3://envs-bucket/envs/1.zip@")
        target = targets(box, deployment)[name]
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == list(IN_PLACE_EVENTS)
        assert all(e["status"] == "Succeeded" for e in target["lifecycleEvents"])


def test_each_instance_binds_its_usual_port_on_its_own_address(box: Any, tmp_path: Path) -> None:
    names = make_group(box, "ports", 2)
    start = ('cd "$ROOT/opt/ports" && nohup python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 </dev/null &\n'
             'echo $! > "$ROOT/app.pid"')  # fmt: skip
    check = (
        "python3 - <<'PY'\nimport os, time, urllib.request\n"
        "url = 'http://%s:8080/version.txt' % os.environ.get('DEPLOYFW_TASK_ADDRESS', '127.0.0.1')\n"
        "for _ in range(100):\n    try:\n        urllib.request.urlopen(url)\n        break\n"
        "    except OSError:\n        time.sleep(0.1)\nPY"
    )
    folder = write_bundle(tmp_path / "b", "ports", {"ApplicationStart": start, "ValidateService": check})
    info = wait(box, deploy(box, "ports", upload(box, folder, "ports-bucket", "ports/1.zip")))
    assert info["status"] == "Succeeded", info
    fleet = instances(box.endpoint_url)
    for name in names:
        assert fleet[name]["app_running"] is True
        assert http_get(fleet[name]["address"], 8080, "/version.txt") == "ports"


def test_one_at_a_time_stops_at_the_first_failure_with_health_constraints(box: Any, tmp_path: Path) -> None:
    make_group(box, "one", 3)
    folder = write_bundle(tmp_path / "b", "one", {"ValidateService": 'echo "checking"; echo "boom" >&2; exit 7'})
    deployment = deploy(box, "one", upload(box, folder, "one-bucket", "one/1.zip"))
    info = wait(box, deployment)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    found = targets(box, deployment)
    statuses = sorted(t["status"] for t in found.values())
    assert statuses == ["Failed", "Skipped", "Skipped"], statuses
    failed = next(t for t in found.values() if t["status"] == "Failed")
    diagnostics = event(failed, "ValidateService")["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed" and diagnostics["scriptName"] == "scripts/ValidateService.sh"
    assert diagnostics["message"].endswith("failed with exit code 7")
    assert "[stdout]checking" in diagnostics["logTail"] and "[stderr]boom" in diagnostics["logTail"]
    assert info["deploymentOverview"]["Failed"] == 1 and info["deploymentOverview"]["Skipped"] == 2
    assert "rollbackDeploymentId" not in (info.get("rollbackInfo") or {}), "no previous revision to roll back to"


def test_one_at_a_time_succeeds_when_only_the_last_instance_fails(box: Any, tmp_path: Path) -> None:
    names = make_group(box, "last", 3)
    # Instances deploy in name order on a fresh fleet: only the last one fails its check.
    check = f'case "$ROOT" in */{names[-1]}/root) exit 1;; esac'
    folder = write_bundle(tmp_path / "b", "last", {"ValidateService": check})
    deployment = deploy(box, "last", upload(box, folder, "last-bucket", "last/1.zip"))
    info = wait(box, deployment)
    found = targets(box, deployment)
    assert [found[n]["status"] for n in names] == ["Succeeded", "Succeeded", "Failed"]
    assert info["status"] == "Succeeded", "CodeDeploy: with OneAtATime a failure on the last instance still succeeds"


def test_all_at_once_deploys_to_every_instance_even_when_some_fail(box: Any, tmp_path: Path) -> None:
    names = make_group(box, "all", 3, config="CodeDeployDefault.AllAtOnce")
    check = f'case "$ROOT" in */{names[0]}/root) exit 1;; esac'
    folder = write_bundle(tmp_path / "b", "all", {"ValidateService": check})
    deployment = deploy(box, "all", upload(box, folder, "all-bucket", "all/1.zip"))
    info = wait(box, deployment)
    found = targets(box, deployment)
    assert [found[n]["status"] for n in names] == ["Failed", "Succeeded", "Succeeded"]
    assert info["status"] == "Succeeded", "minimum healthy hosts 0: one success is enough"


def test_half_at_a_time_on_one_instance_is_refused_as_aws_refuses_it(box: Any, tmp_path: Path) -> None:
    make_group(box, "half", 1, config="CodeDeployDefault.HalfAtATime")
    folder = write_bundle(tmp_path / "b", "half", {})
    info = wait(box, deploy(box, "half", upload(box, folder, "half-bucket", "half/1.zip")))
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS_INVALID"


def test_a_group_that_selects_no_instance_fails_with_no_instances(box: Any, tmp_path: Path) -> None:
    codedeploy = box.client("codedeploy")
    codedeploy.create_application(applicationName="none", computePlatform="Server")
    codedeploy.create_deployment_group(applicationName="none", deploymentGroupName="none",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/cd",
                                       onPremisesInstanceTagFilters=[{"Key": "App", "Value": "nobody",
                                                                      "Type": "KEY_AND_VALUE"}])  # fmt: skip
    folder = write_bundle(tmp_path / "b", "none", {})
    info = wait(box, deploy(box, "none", upload(box, folder, "none-bucket", "none/1.zip")))
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "NO_INSTANCES"


def test_application_stop_runs_the_previous_revision_and_a_failed_revision_is_rolled_back(
    box: Any, tmp_path: Path
) -> None:
    names = make_group(box, "stop", 2)
    group = {"autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}
    first = write_bundle(tmp_path / "v1", "stop", {"ApplicationStop": 'echo "stop v1" >> "$ROOT/stops.log"'},
                         files={"version.txt": "v1"})  # fmt: skip
    assert wait(box, deploy(box, "stop", upload(box, first, "stop-bucket", "stop/v1.zip"), **group))["status"] == (
        "Succeeded")  # fmt: skip
    second = write_bundle(tmp_path / "v2", "stop", {"ApplicationStop": 'echo "stop v2" >> "$ROOT/stops.log"',
                                                    "ValidateService": "echo v2 is broken; exit 3"},
                          files={"version.txt": "v2"})  # fmt: skip
    deployment = deploy(box, "stop", upload(box, second, "stop-bucket", "stop/v2.zip"), **group)
    info = wait(box, deployment)
    assert info["status"] == "Failed"
    rollback = info["rollbackInfo"]["rollbackDeploymentId"]
    assert wait(box, rollback)["status"] == "Succeeded"
    fleet = instances(box.endpoint_url)
    failed = next(n for n, t in targets(box, deployment).items() if t["status"] == "Failed")
    stops = (Path(fleet[failed]["root"]) / "stops.log").read_text().splitlines()
    # v2's ApplicationStop ran v1's script; the rollback's ran v2's (its Install had completed).
    assert stops == ["stop v1", "stop v2"], stops
    for name in names:
        assert (Path(fleet[name]["root"]) / "opt/stop/version.txt").read_text() == "v1"
        assert fleet[name]["revision"].startswith("s3://stop-bucket/stop/v1.zip@")


@pytest.mark.parametrize(("behavior", "status", "content"),
                         [("DISALLOW", "Failed", "left by hand"), ("OVERWRITE", "Succeeded", "new"),
                          ("RETAIN", "Succeeded", "left by hand")])  # fmt: skip
def test_file_exists_behavior(box: Any, tmp_path: Path, behavior: str, status: str, content: str) -> None:
    app = f"fe-{behavior.lower()}"
    names = make_group(box, app, 1)
    root = Path(instances(box.endpoint_url)[names[0]]["root"])
    (root / f"opt/{app}").mkdir(parents=True)
    (root / f"opt/{app}/config.txt").write_text("left by hand")
    folder = write_bundle(tmp_path / "b", app, {}, files={"config.txt": "new"})
    deployment = deploy(box, app, upload(box, folder, f"{app}-bucket", "b.zip"), fileExistsBehavior=behavior)
    info = wait(box, deployment)
    assert info["status"] == status, info
    assert (root / f"opt/{app}/config.txt").read_text() == content
    if behavior == "DISALLOW":
        install = event(targets(box, deployment)[names[0]], "Install")
        assert install["status"] == "Failed"
        assert "a specified file already exists at this location: /opt/fe-disallow/config.txt" in (
            install["diagnostics"]["message"])  # fmt: skip


def test_files_a_previous_deployment_installed_are_replaced_even_with_disallow(box: Any, tmp_path: Path) -> None:
    make_group(box, "again", 1)
    for version in ("1", "2"):
        folder = write_bundle(tmp_path / version, "again", {}, files={"version.txt": version})
        info = wait(box, deploy(box, "again", upload(box, folder, "again-bucket", f"{version}.zip")))
        assert info["status"] == "Succeeded", info


def test_script_timeout_and_missing_script_are_reported_with_the_agents_codes(box: Any, tmp_path: Path) -> None:
    make_group(box, "slow", 1)
    folder = write_bundle(tmp_path / "b", "slow", {"AfterInstall": "echo waiting; sleep 30"})
    (folder / "appspec.yml").write_text((folder / "appspec.yml").read_text().replace("timeout: 30", "timeout: 1"))
    started = time.monotonic()
    deployment = deploy(box, "slow", upload(box, folder, "slow-bucket", "slow.zip"))
    info = wait(box, deployment)
    assert info["status"] == "Failed" and time.monotonic() - started < 25
    diagnostics = event(next(iter(targets(box, deployment).values())), "AfterInstall")["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptTimedOut" and "failed to complete in 1 seconds" in diagnostics["message"]
    assert "[stdout]waiting" in diagnostics["logTail"]

    make_group(box, "gone", 1)
    folder = write_bundle(tmp_path / "c", "gone", {"BeforeInstall": "true"})
    (folder / "scripts/BeforeInstall.sh").unlink()
    data = io.BytesIO()  # deployfw's packer refuses a bundle without its script: zip it by hand

    with zipfile.ZipFile(data, "w") as archive:
        archive.write(folder / "appspec.yml", "appspec.yml")
        archive.write(folder / "app/version.txt", "app/version.txt")
    s3 = box.client("s3")
    s3.create_bucket(Bucket="gone-bucket")
    etag = s3.put_object(Bucket="gone-bucket", Key="gone.zip", Body=data.getvalue())["ETag"].strip('"')
    revision = {"revisionType": "S3", "s3Location": {"bucket": "gone-bucket", "key": "gone.zip", "bundleType": "zip",
                                                     "eTag": etag}}  # fmt: skip
    deployment = deploy(box, "gone", revision)
    assert wait(box, deployment)["status"] == "Failed"
    diagnostics = event(next(iter(targets(box, deployment).values())), "BeforeInstall")["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptMissing" and diagnostics["scriptName"] == "scripts/BeforeInstall.sh"


def test_a_bundle_whose_etag_changed_fails_download_bundle(box: Any, tmp_path: Path) -> None:
    make_group(box, "etag", 1)
    revision = upload(box, write_bundle(tmp_path / "a", "etag", {}), "etag-bucket", "etag.zip")
    upload(box, write_bundle(tmp_path / "b", "etag", {}, files={"version.txt": "other"}), "etag-bucket", "etag.zip")
    deployment = deploy(box, "etag", revision)
    assert wait(box, deployment)["status"] == "Failed"
    download = event(next(iter(targets(box, deployment).values())), "DownloadBundle")
    assert download["status"] == "Failed" and "Expected deployment artifact bundle etag" in (
        download["diagnostics"]["message"])  # fmt: skip


def test_stop_deployment_stops_starting_instances_and_rolls_back(box: Any, tmp_path: Path) -> None:
    make_group(box, "halt", 3)
    write = write_bundle(tmp_path / "a", "halt", {}, files={"version.txt": "a"})
    assert wait(box, deploy(box, "halt", upload(box, write, "halt-bucket", "a.zip")))["status"] == "Succeeded"
    slow = write_bundle(tmp_path / "b", "halt", {"AfterInstall": "sleep 2"}, files={"version.txt": "b"})
    deployment = deploy(box, "halt", upload(box, slow, "halt-bucket", "b.zip"))
    codedeploy = box.client("codedeploy")
    deadline = time.monotonic() + 30
    while codedeploy.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] != "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    codedeploy.stop_deployment(deploymentId=deployment, autoRollbackEnabled=True)
    info = wait(box, deployment)
    assert info["status"] == "Stopped"
    assert "Skipped" in [t["status"] for t in targets(box, deployment).values()]
    assert wait(box, info["rollbackInfo"]["rollbackDeploymentId"])["status"] == "Succeeded"
    for row in instances(box.endpoint_url).values():
        if row["name"].startswith("halt-"):
            assert (Path(row["root"]) / "opt/halt/version.txt").read_text() == "a"


def test_a_broken_application_stop_blocks_the_next_revision_unless_ignored(box: Any, tmp_path: Path) -> None:
    make_group(box, "badstop", 1)
    broken = write_bundle(tmp_path / "v1", "badstop", {"ApplicationStop": 'echo "cannot stop"; exit 9'},
                          files={"version.txt": "v1"})  # fmt: skip
    assert wait(box, deploy(box, "badstop", upload(box, broken, "badstop-bucket", "v1.zip")))["status"] == "Succeeded"
    fixed = write_bundle(tmp_path / "v2", "badstop", {"ApplicationStop": "true"}, files={"version.txt": "v2"})
    revision = upload(box, fixed, "badstop-bucket", "v2.zip")
    blocked = deploy(box, "badstop", revision)
    assert wait(box, blocked)["status"] == "Failed"
    stop = event(next(iter(targets(box, blocked).values())), "ApplicationStop")
    assert stop["status"] == "Failed" and stop["diagnostics"]["message"].endswith("failed with exit code 9")
    assert "[stdout]cannot stop" in stop["diagnostics"]["logTail"], "the previous revision's script ran"
    passed = deploy(box, "badstop", revision, ignoreApplicationStopFailures=True)
    assert wait(box, passed)["status"] == "Succeeded"
    stop = event(next(iter(targets(box, passed).values())), "ApplicationStop")
    assert stop["status"] == "Succeeded" and "ignoreApplicationStopFailures" in stop["diagnostics"]["message"]
