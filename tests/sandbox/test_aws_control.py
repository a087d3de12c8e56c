"""Control endpoints, fault injection, request log, and unimplemented operations."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from deployfw.errors import InputError
from deployfw.sandbox.aws import FaultSet


def _http(url: str, data: dict | None = None) -> tuple[int, object]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fault_syntax():
    faults = FaultSet.parse("deploy:user-api, build:x,throttle:20,error:10")
    assert (faults.deploy, faults.build, faults.throttle, faults.error) == ({"user-api"}, {"x"}, 20, 10)
    assert str(FaultSet.parse("")) == ""
    with pytest.raises(InputError):
        FaultSet.parse("throttle:150")
    with pytest.raises(InputError):
        FaultSet.parse("explode:now")


def test_throttle_all_calls_but_never_the_control_endpoint(aws_sandbox, aws_client, no_faults):
    logs = aws_client("logs")
    status, doc = _http(aws_sandbox.endpoint_url + "/_sandbox/faults", {"faults": "throttle:100"})
    assert status == 200 and doc == {"faults": "throttle:100"}
    with pytest.raises(ClientError) as throttled:
        logs.describe_log_groups()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as query_throttled:
        aws_client("elbv2").describe_load_balancers()
    assert query_throttled.value.response["Error"]["Code"] == "Throttling"
    status, entries = _http(aws_sandbox.endpoint_url + "/_sandbox/requests")
    assert status == 200 and entries[-1]["fault"] == "throttle"
    status, doc = _http(aws_sandbox.endpoint_url + "/_sandbox/faults", {"faults": ""})
    assert status == 200 and doc == {"faults": ""}
    logs.describe_log_groups()


def test_error_fault_answers_5xx(aws_sandbox, aws_client, no_faults):
    aws_sandbox.set_faults("error:100")
    with pytest.raises(ClientError) as failed:
        aws_client("ecs").list_clusters()
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)


def test_bad_fault_post_is_a_400(aws_sandbox):
    status, doc = _http(aws_sandbox.endpoint_url + "/_sandbox/faults", {"faults": "throttle:x"})
    assert status == 400 and "percent" in doc["error"]


def test_request_log_records_operations_without_secrets(aws_sandbox, aws_client, no_faults):
    aws_sandbox.clear_requests()
    ssm = aws_client("ssm")
    ssm.put_parameter(Name="/app/db-password", Value="hunter2-secret", Type="SecureString", Overwrite=True)
    aws_client("ecs").describe_services(cluster="test-cluster", services=["user-api"])
    entries = aws_sandbox.requests()
    ops = [(e["service"], e["operation"], e["status"]) for e in entries]
    assert ("ssm", "PutParameter", 200) in ops
    assert ("ecs", "DescribeServices", 200) in ops
    put = next(e for e in entries if e["operation"] == "PutParameter")
    assert put["params"]["Name"] == "/app/db-password"
    assert "hunter2-secret" not in json.dumps(entries)
    assert all(isinstance(e["time"], float) for e in entries)


def test_missing_operation_answers_fast_4xx(aws_client):
    with pytest.raises(ClientError) as missing:
        aws_client("codedeploy").list_git_hub_account_token_names()
    assert missing.value.response["ResponseMetadata"].get("RetryAttempts", 0) == 0  # answered, not retried
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert missing.value.response["Error"]["Code"] == "InvalidAction"
