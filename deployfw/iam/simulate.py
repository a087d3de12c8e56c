"""Ask IAM whether a principal may do what the backends declare: SimulatePrincipalPolicy, read-only.

One call per distinct (actions, resources, condition context); the answer per action and resource
is IAM's own (the sandbox answers with the evaluator it enforces with). Condition values the
declarations fix (``iam:PassedToService``) are passed as context, so a PassRole allowed only to
``ecs-tasks.amazonaws.com`` is judged as the real call would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deployfw.iam.needs import IamNeed


@dataclass(frozen=True)
class Refused:
    """An action on a resource the principal may not perform, and IAM's word for it."""

    action: str
    resource: str
    decision: str


def principal_of(caller_arn: str) -> str | None:
    """The IAM principal whose policies apply to a caller ARN (a role for a role session; None for root)."""
    parts = caller_arn.split(":", 5)
    if len(parts) < 6:
        return caller_arn
    account, resource = parts[4], parts[5]
    if resource == "root":
        return None
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{account}:role/{resource.split('/')[1]}"
    return caller_arn


def context_of(need: IamNeed) -> list[dict[str, Any]]:
    """The request context a declared condition implies (``StringEquals iam:PassedToService``...)."""
    entries: list[dict[str, Any]] = []
    for values in need.conditions.values():
        for key, value in values.items():
            items = [value] if isinstance(value, str) else list(value)
            entries.append({"ContextKeyName": key, "ContextKeyValues": items, "ContextKeyType": "stringList"
                            if len(items) > 1 else "string"})  # fmt: skip
    return entries


class Simulator:
    """SimulatePrincipalPolicy for one principal through the AWS boundary, answers cached."""

    def __init__(self, aws: Any, principal: str) -> None:
        self.aws = aws
        self.principal = principal
        self._cache: dict[str, list[Refused]] = {}

    def refused(self, need: IamNeed) -> list[Refused]:
        """What of ``need`` IAM would refuse the principal (empty: all of it is allowed)."""
        key = repr((sorted(need.actions), sorted(need.resources), sorted(context_of(need), key=repr)))
        if key not in self._cache:
            self._cache[key] = self._ask(need)
        return self._cache[key]

    def _ask(self, need: IamNeed) -> list[Refused]:
        params: dict[str, Any] = {"PolicySourceArn": self.principal, "ActionNames": sorted(need.actions)}
        if not need.is_wildcard:
            params["ResourceArns"] = sorted(need.resources)
        context = context_of(need)
        if context:
            params["ContextEntries"] = context
        refused: list[Refused] = []
        for result in self._results(params):
            specific = result.get("ResourceSpecificResults") or []
            if specific:
                refused += [Refused(result["EvalActionName"], r["EvalResourceName"], r["EvalResourceDecision"])
                            for r in specific if r.get("EvalResourceDecision") != "allowed"]  # fmt: skip
            elif result.get("EvalDecision") != "allowed":
                refused.append(Refused(result["EvalActionName"], result.get("EvalResourceName", "*"),
                                       result.get("EvalDecision", "implicitDeny")))  # fmt: skip
        return refused

    def _results(self, params: dict[str, Any]) -> Sequence[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        while True:
            answer = self.aws.call("iam", "simulate_principal_policy", **params)
            results += answer.get("EvaluationResults") or []
            if not answer.get("IsTruncated"):
                return results
            params = {**params, "Marker": answer["Marker"]}
