"""ELBv2 backend: target health from real health checks, and AWS's ARN and listing shapes.

moto reports every registered target ``healthy``, names network load balancers
``loadbalancer/app/...`` and lists a load balancer once per listener in a target
group's ``LoadBalancerArns``. Here DescribeTargetHealth reads :mod:`.health` (the
probes the sandbox really makes), NLBs are ``loadbalancer/net/...`` (and their
listeners ``listener/net/...``), and a target group names each load balancer once.
"""

from __future__ import annotations

from typing import Any

from moto.elbv2 import urls as moto_urls
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeLoadBalancer

from deployfw.sandbox.aws import context
from deployfw.sandbox.aws.urls import url_module


class SandboxElbv2Backend(ELBv2Backend):
    @property
    def _url_module(self) -> Any:
        return url_module(moto_urls)

    def create_load_balancer(self, *args: Any, **kwargs: Any) -> FakeLoadBalancer:
        balancer = super().create_load_balancer(*args, **kwargs)
        if getattr(balancer, "type", "application") == "network" and ":loadbalancer/app/" in balancer.arn:
            old = balancer.arn
            balancer.arn = old.replace(":loadbalancer/app/", ":loadbalancer/net/")
            self.load_balancers[balancer.arn] = self.load_balancers.pop(old)
            tags = self.tagging_service.list_tags_for_resource(old).get("Tags", [])
            self.tagging_service.delete_all_tags_for_resource(old)
            if tags:
                self.tagging_service.tag_resource(balancer.arn, tags)
        return balancer

    def create_listener(self, *args: Any, **kwargs: Any) -> Any:
        listener = super().create_listener(*args, **kwargs)
        self._dedupe()
        return listener

    def modify_listener(self, *args: Any, **kwargs: Any) -> Any:
        listener = super().modify_listener(*args, **kwargs)
        self._dedupe()
        return listener

    def _dedupe(self) -> None:
        for group in self.target_groups.values():
            group.load_balancer_arns[:] = list(dict.fromkeys(group.load_balancer_arns))

    def describe_target_health(self, target_group_arn: str, targets: list[dict[str, Any]]) -> list[FakeHealthStatus]:
        answers = super().describe_target_health(target_group_arn, targets)
        health = context.current().health
        if health is None:
            return answers
        for answer in answers:
            if answer.status != "healthy":  # moto's verdict for unregistered targets stands
                continue
            state = health.state((target_group_arn, str(answer.instance_id), int(answer.port)))
            if state is None:
                answer.status, answer.reason, answer.description = (
                    "initial",
                    "Elb.RegistrationInProgress",
                    ("Target registration is in progress"),
                )
            else:
                answer.status, answer.reason, answer.description = state.state, state.reason, state.description
        return answers
