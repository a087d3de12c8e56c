"""The services the sandbox contract tests seed (shared by conftest and the seeding test)."""

from __future__ import annotations

from deployfw.sandbox.aws import ServiceInfra

AWS_INFRA = [
    ServiceInfra("user-api", "test-cluster", "user-api"),
    ServiceInfra("fail-api", "test-cluster", "fail-api"),
    ServiceInfra("stop-api", "test-cluster", "stop-api"),
    ServiceInfra(
        "canary-svc",
        "test-cluster",
        "canary-svc",
        deployment_config="CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    ),
    ServiceInfra("cli-api", "test-cluster", "cli-api"),
    ServiceInfra("nlb-api", "test-cluster", "nlb-api", deploy_kind="nlb"),
    ServiceInfra("order-api", "test-cluster", "order-api", deploy_kind="rolling"),
    ServiceInfra("broken-api", "test-cluster", "broken-api", deploy_kind="rolling"),
    ServiceInfra("tool-api", "test-cluster", "tool-api", deploy_kind="rolling"),
    # ECS-native blue/green, linear and canary (test_ecs_native.py)
    ServiceInfra("native-alb", "test-cluster", "native-alb", deploy_kind="native"),
    ServiceInfra("native-nlb", "test-cluster", "native-nlb", deploy_kind="native", load_balancer="network"),
    ServiceInfra("switch-api", "test-cluster", "switch-api"),  # CODE_DEPLOY, switched in place to ECS
]
