"""AccessDenied from AWS becomes one line: the action, the resource, the principal and the statement to add."""

from __future__ import annotations

import json
import re

from deployfw.iam.denied import Denial, explain, parse
from deployfw.iam.needs import IamNeed, passed_to

ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
# What AWS answered in the seed write-up (account masked there), for RegisterTaskDefinition:
SEED = ("User: arn:aws:iam::123456789012:user/cicd-deploy-user is not authorized to perform: iam:PassRole on "
        f"resource: {ROLE} because no identity-based policy allows the iam:PassRole action")
NEEDS = [
    IamNeed("PassTaskRoles", ("iam:PassRole",), (ROLE,), "hand the roles to ECS",
            conditions=passed_to("ecs-tasks.amazonaws.com")),
    IamNeed("EcsRegisterTaskDefinition", ("ecs:RegisterTaskDefinition",),
            ("arn:aws:ecs:ap-northeast-2:123456789012:task-definition/shop-user-api:*",), "register"),
]


def test_the_seeds_passrole_refusal_is_parsed() -> None:
    denial = parse("AccessDeniedException", SEED, "ecs.register_task_definition", "ecs:RegisterTaskDefinition")
    assert denial == Denial("iam:PassRole", ROLE, "arn:aws:iam::123456789012:user/cicd-deploy-user",
                            "ecs.register_task_definition")
    assert denial.account == "123456789012"


def test_the_fix_is_the_declared_statement_with_its_condition() -> None:
    denial = parse("AccessDeniedException", SEED, "ecs.register_task_definition", "ecs:RegisterTaskDefinition")
    assert denial is not None
    line = explain(denial, NEEDS)
    assert "\n" not in line
    assert "arn:aws:iam::123456789012:user/cicd-deploy-user" in line and "iam:PassRole" in line
    statement = json.loads(re.search(r"(\{.*\}) \(", line).group(1))  # type: ignore[union-attr]
    assert statement == {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE,
                         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}


def test_a_family_pattern_covers_the_refused_revision() -> None:
    message = ("User: arn:aws:sts::123456789012:assumed-role/ci/run-7 is not authorized to perform: "
               "ecs:RegisterTaskDefinition on resource: arn:aws:ecs:ap-northeast-2:123456789012:task-definition/"
               "shop-user-api:4 because no identity-based policy allows the ecs:RegisterTaskDefinition action")
    denial = parse("AccessDeniedException", message, "ecs.register_task_definition", "ecs:RegisterTaskDefinition")
    assert denial is not None and denial.principal == "arn:aws:sts::123456789012:assumed-role/ci/run-7"
    assert "task-definition/shop-user-api:*" in explain(denial, NEEDS)


def test_an_undeclared_refusal_says_so_and_an_explicit_deny_is_not_patched_with_an_allow() -> None:
    message = ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecs:DeleteService on "
               "resource: arn:aws:ecs:ap-northeast-2:123456789012:service/shop/a with an explicit deny")
    denial = parse("AccessDeniedException", message, "ecs.delete_service", "ecs:DeleteService")
    assert denial is not None and denial.explicit
    assert "explicit Deny" in explain(denial, NEEDS)
    plain = Denial("ecs:DeleteService", "arn:aws:ecs:r:1:service/shop/a", None, "ecs.delete_service")
    assert "no deployfw backend declares this" in explain(plain, NEEDS)


def test_messages_without_details_fall_back_to_the_call() -> None:
    denial = parse("UnauthorizedOperation", "You are not authorized to perform this operation. Encoded "
                   "authorization failure message: abc", "ec2.describe_instances", "ec2:DescribeInstances")
    assert denial == Denial("ec2:DescribeInstances", "*", None, "ec2.describe_instances")
    assert parse("ThrottlingException", "Rate exceeded", "ecs.list_services", "ecs:ListServices") is None
