"""The IAM evaluator the sandbox enforces and simulates with, against IAM's documented rules."""

from __future__ import annotations

from deployfw.iam.evaluate import Source, evaluate, resource_matches

REPO = "arn:aws:ecr:ap-northeast-2:123456789012:repository/user-api"
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"


def policy(*statements: dict) -> list[Source]:
    return [Source("p", {"Version": "2012-10-17", "Statement": list(statements)})]


def allow(action: object, resource: object, **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_exact_resource_allows_that_resource_only() -> None:
    sources = policy(allow("ecr:PutImage", REPO))
    assert evaluate(sources, "ecr:PutImage", REPO).decision == "allowed"
    assert evaluate(sources, "ecr:PutImage", REPO.replace("user-api", "order-api")).decision == "implicitDeny"
    assert evaluate(sources, "ecr:BatchGetImage", REPO).decision == "implicitDeny"


def test_actions_match_case_insensitively_with_wildcards() -> None:
    sources = policy(allow(["ECR:put*", "ecs:Describe?ervices"], "*"))
    assert evaluate(sources, "ecr:PutImage", REPO).allowed
    assert evaluate(sources, "ecs:DescribeServices", "x").allowed
    assert not evaluate(sources, "ecr:BatchGetImage", REPO).allowed


def test_explicit_deny_wins_over_any_allow() -> None:
    sources = policy(allow("*", "*"), {"Effect": "Deny", "Action": "ecr:PutImage", "Resource": REPO})
    result = evaluate(sources, "ecr:PutImage", REPO)
    assert result.decision == "explicitDeny" and result.matched[0].index == 1


def test_a_wildcard_never_spans_arn_segments() -> None:
    service = "arn:aws:ecs:eu-west-1:123456789012:service/shop/a"
    assert resource_matches("arn:aws:ecs:*:123456789012:service/shop/*", service)
    # "*" in the resource part may cover "/" and ":" (a task definition family and revision)
    assert resource_matches("arn:aws:ecs:r:1:task-definition/shop-a:*", "arn:aws:ecs:r:1:task-definition/shop-a:12")
    # but a region or account wildcard stays in its segment
    assert not resource_matches("arn:aws:ecs:*:service/shop/a", "arn:aws:ecs:r:123456789012:service/shop/a")
    assert not resource_matches("arn:aws:ecs:*", "arn:aws:ecs:r:123456789012:service/shop/a")
    assert not resource_matches("arn:aws:ecs:r:1:task-definition/shop-a:*", "arn:aws:ecs:r:1:task-definition/shop-ab:1")


def test_passrole_condition_on_the_service_the_role_is_passed_to() -> None:
    only_ecs = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    sources = policy(allow("iam:PassRole", ROLE, Condition=only_ecs))
    ecs = {"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}
    lambda_ = {"iam:PassedToService": ["lambda.amazonaws.com"]}
    assert evaluate(sources, "iam:PassRole", ROLE, ecs).allowed
    assert evaluate(sources, "iam:PassRole", ROLE, lambda_).decision == "implicitDeny"
    missing = evaluate(sources, "iam:PassRole", ROLE, {})
    assert missing.decision == "implicitDeny" and missing.missing_context == ("iam:PassedToService",)


def test_negated_ifexists_and_null_conditions() -> None:
    not_region = policy(allow("ecs:*", "*", Condition={"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}))
    assert evaluate(not_region, "ecs:ListServices", "*", {"aws:RequestedRegion": ["eu-west-1"]}).allowed
    assert not evaluate(not_region, "ecs:ListServices", "*", {"aws:RequestedRegion": ["us-east-1"]}).allowed
    assert evaluate(not_region, "ecs:ListServices", "*", {}).allowed  # absent key satisfies a negated operator
    if_exists = policy(allow("ecs:*", "*", Condition={"StringEqualsIfExists": {"ecs:cluster": "shop"}}))
    assert evaluate(if_exists, "ecs:ListServices", "*", {}).allowed
    assert not evaluate(if_exists, "ecs:ListServices", "*", {"ecs:cluster": ["other"]}).allowed
    null = policy(allow("ecs:*", "*", Condition={"Null": {"aws:TokenIssueTime": "true"}}))
    assert evaluate(null, "ecs:ListServices", "*", {}).allowed
    assert not evaluate(null, "ecs:ListServices", "*", {"aws:TokenIssueTime": ["now"]}).allowed


def test_an_unknown_condition_operator_never_grants() -> None:
    sources = policy(allow("ecs:*", "*", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}))
    assert not evaluate(sources, "ecs:ListServices", "*", {"aws:CurrentTime": ["2026-01-01"]}).allowed


def test_not_action_and_not_resource() -> None:
    sources = policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": REPO})
    assert evaluate(sources, "ecs:ListServices", "*").allowed
    assert not evaluate(sources, "iam:PassRole", ROLE).allowed
    assert not evaluate(sources, "ecr:PutImage", REPO).allowed
