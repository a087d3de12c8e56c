"""The sandbox's IAM, request by request: authentication as AWS does it, authorisation per exact
resource and condition, refusals in each service's own protocol, SimulatePrincipalPolicy with the
same evaluator, and the request log naming who called."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployfw.sandbox.aws import AwsSandbox

pytestmark = pytest.mark.sandbox
REGION = "ap-northeast-2"
ROLE = "arn:aws:iam::123456789012:role/task-role"
REPO = f"arn:aws:ecr:{REGION}:123456789012:repository/user-api"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": REPO},
        {"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition",
         "Resource": f"arn:aws:ecs:{REGION}:123456789012:task-definition/shop-user-api:*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE,
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AwsSandbox]:
    with AwsSandbox(enforce_iam=True) as box:
        yield box


@pytest.fixture(scope="module")
def ci(sandbox: AwsSandbox) -> dict[str, str]:
    iam = sandbox.client("iam")
    iam.create_user(UserName="sandbox-ci")
    iam.put_user_policy(UserName="sandbox-ci", PolicyName="p", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="sandbox-ci")["AccessKey"]
    for name in ("user-api", "order-api"):
        sandbox.client("ecr", REGION).create_repository(repositoryName=name)
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def code(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_unknown_keys_and_wrong_signatures_are_refused(sandbox: AwsSandbox, ci: dict[str, str]) -> None:
    stranger = sandbox.client("ecr", REGION, aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    assert code(lambda: stranger.describe_repositories())[0] == "UnrecognizedClientException"
    forged = sandbox.client("ecr", REGION, aws_access_key_id=ci["aws_access_key_id"], aws_secret_access_key="nope")
    assert code(lambda: forged.describe_repositories(repositoryNames=["user-api"]))[0] == "InvalidSignatureException"
    query = sandbox.client("iam", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    assert code(lambda: query.list_users())[0] == "InvalidClientTokenId"


def test_exact_resources_and_the_passrole_condition(sandbox: AwsSandbox, ci: dict[str, str]) -> None:
    ecr = sandbox.client("ecr", REGION, **ci)
    assert ecr.describe_repositories(repositoryNames=["user-api"])["repositories"][0]["repositoryName"] == "user-api"
    refused, message = code(lambda: ecr.describe_repositories(repositoryNames=["order-api"]))
    assert refused == "AccessDeniedException"
    assert message == ("User: arn:aws:iam::123456789012:user/sandbox-ci is not authorized to perform: "
                       f"ecr:DescribeRepositories on resource: {REPO.replace('user-api', 'order-api')} because no "
                       "identity-based policy allows the ecr:DescribeRepositories action")  # fmt: skip
    ecs = sandbox.client("ecs", REGION, **ci)
    taskdef = {"family": "shop-user-api", "containerDefinitions": [{"name": "a", "image": "x", "memory": 128}]}
    other_role = "arn:aws:iam::123456789012:role/admin"
    refused, message = code(lambda: ecs.register_task_definition(executionRoleArn=other_role, **taskdef))
    assert refused == "AccessDeniedException" and f"iam:PassRole on resource: {other_role}" in message
    registered = ecs.register_task_definition(executionRoleArn=ROLE, **taskdef)["taskDefinition"]
    assert registered["taskDefinitionArn"].endswith(":task-definition/shop-user-api:1")
    assert code(lambda: ecs.register_task_definition(**{**taskdef, "family": "other"}))[0] == "AccessDeniedException"


def test_the_request_log_names_the_principal_and_each_decision(sandbox: AwsSandbox, ci: dict[str, str]) -> None:
    sandbox.clear_requests()
    ecr = sandbox.client("ecr", REGION, **ci)
    ecr.describe_repositories(repositoryNames=["user-api"])
    code(lambda: ecr.describe_repositories(repositoryNames=["order-api"]))
    allowed, refused = sandbox.requests()
    assert allowed["principal"] == refused["principal"] == "arn:aws:iam::123456789012:user/sandbox-ci"
    assert allowed["iam"] == [{"action": "ecr:DescribeRepositories", "resource": REPO, "decision": "allowed"}]
    assert refused["iam"][0]["decision"] == "implicitDeny" and refused["status"] == 400


def test_simulate_principal_policy_uses_the_enforcing_evaluator(sandbox: AwsSandbox, ci: dict[str, str]) -> None:
    iam = sandbox.client("iam")
    who = "arn:aws:iam::123456789012:user/sandbox-ci"
    context = [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": ["ecs-tasks.amazonaws.com"],
                "ContextKeyType": "string"}]  # fmt: skip
    answer = iam.simulate_principal_policy(PolicySourceArn=who, ActionNames=["iam:PassRole"], ResourceArns=[ROLE],
                                           ContextEntries=context)["EvaluationResults"]  # fmt: skip
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in answer] == [("iam:PassRole", "allowed")]
    to_lambda = [{**context[0], "ContextKeyValues": ["lambda.amazonaws.com"]}]
    answer = iam.simulate_principal_policy(PolicySourceArn=who, ActionNames=["iam:PassRole"], ResourceArns=[ROLE],
                                           ContextEntries=to_lambda)  # fmt: skip
    assert answer["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    both = iam.simulate_principal_policy(PolicySourceArn=who, ActionNames=["ecr:DescribeRepositories"],
                                         ResourceArns=[REPO, REPO.replace("user-api", "order-api")])  # fmt: skip
    specific = both["EvaluationResults"][0]["ResourceSpecificResults"]
    assert [r["EvalResourceDecision"] for r in specific] == ["allowed", "implicitDeny"]
    nobody = "arn:aws:iam::123456789012:user/nobody"
    refused, _ = code(lambda: iam.simulate_principal_policy(PolicySourceArn=nobody, ActionNames=["ecr:ListImages"]))
    assert refused == "NoSuchEntity"
