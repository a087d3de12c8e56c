"""Least-privilege policy documents from the backends' declarations.

Needs that share a statement id, an action set and conditions become one statement with the
union of their resources - never the union of actions across different resources, which would
grant an action on a resource nobody needs it on. Statements are sorted by id, actions and
resources within them, so the same config always prints the same policy (a diff in review shows
exactly what changed). A ``*`` resource appears only where the declaring backend said why: the
reasons are listed with the policy as its exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployfw.iam.collect import Declared
from deployfw.iam.needs import Conditions, wanted

VERSION = "2012-10-17"
# The service that assumes each principal when it is an IAM role (None: a user or any role).
TRUSTED_SERVICE: Mapping[str, str | None] = {
    "ci": None,
    "codebuild": "codebuild.amazonaws.com",
    "jenkins": None,
    "pipeline": "codepipeline.amazonaws.com",
}


@dataclass(frozen=True)
class Statement:
    """One Allow statement and why deployfw needs it."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Conditions
    wildcard: str | None
    whys: tuple[str, ...]
    modules: tuple[str, ...]
    # The environments whose modules need it (None: the config without an overlay), base first.
    envs: tuple[str | None, ...] = ()

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": list(self.actions) if len(self.actions) > 1 else self.actions[0],
            "Resource": list(self.resources) if len(self.resources) > 1 else self.resources[0],
        }
        if self.conditions:
            doc["Condition"] = {op: dict(values) for op, values in self.conditions.items()}
        return doc


@dataclass(frozen=True)
class PolicySet:
    """The identity policy of one principal, its trust policy when it is a role, and its ``*`` exceptions."""

    principal: str
    statements: tuple[Statement, ...]

    def document(self) -> dict[str, Any]:
        return {"Version": VERSION, "Statement": [s.document() for s in self.statements]}

    def trust(self) -> dict[str, Any] | None:
        service = TRUSTED_SERVICE.get(self.principal)
        if service is None:
            return None
        return {
            "Version": VERSION,
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }

    def exceptions(self) -> list[dict[str, Any]]:
        """Statements with ``Resource: "*"`` and the reason AWS allows no narrower resource."""
        return [
            {"sid": s.sid, "actions": list(s.actions), "reason": s.wildcard}
            for s in self.statements
            if s.resources == ("*",)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "for": self.principal,
            "policy": self.document(),
            "trust_policy": self.trust(),
            "exceptions": self.exceptions(),
            "statements": [
                {"sid": s.sid, "why": list(s.whys), "modules": list(s.modules), "envs": list(s.envs)}
                for s in self.statements
            ],
        }

    def without(self, sid: str) -> dict[str, Any]:
        """The policy document minus one statement (what a test removes to prove it is needed)."""
        return {"Version": VERSION, "Statement": [s.document() for s in self.statements if s.sid != sid]}


def build(declared: Sequence[Declared], principal: str, *, setup: bool = False, optional: bool = False) -> PolicySet:
    """``principal``'s policy from every declaration (``setup``: first-time creation; ``optional``: extras)."""
    groups: dict[tuple[str, tuple[str, ...], str, str | None], dict[str, Any]] = {}
    for item in declared:
        need = item.need
        if need.principal != principal or not wanted(need, setup=setup, optional=optional):
            continue
        key = (need.sid, tuple(sorted(set(need.actions))), _canonical(need.conditions), need.wildcard)
        group = groups.setdefault(
            key, {"resources": set(), "whys": [], "modules": set(), "envs": set(), "conditions": need.conditions}
        )
        group["envs"].add(item.env)
        group["resources"].update(need.resources)
        if need.why not in group["whys"]:
            group["whys"].append(need.why)
        if item.module:
            group["modules"].add(item.module)
    statements: list[Statement] = []
    used: dict[str, int] = {}
    for (sid, actions, _, wildcard), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        used[sid] = used.get(sid, 0) + 1
        name = sid if used[sid] == 1 else f"{sid}{used[sid]}"
        statements.append(
            Statement(
                name,
                actions,
                tuple(sorted(group["resources"])),
                group["conditions"],
                wildcard,
                tuple(group["whys"]),
                tuple(sorted(group["modules"])),
                tuple(sorted(group["envs"], key=lambda env: (env is not None, env or ""))),
            )
        )
    return PolicySet(principal, tuple(statements))


def _canonical(conditions: Conditions) -> str:
    return json.dumps({op: dict(v) for op, v in conditions.items()}, sort_keys=True, default=list)


def cloudformation(policies: Sequence[PolicySet], prefix: str) -> dict[str, Any]:
    """A CloudFormation template: one managed policy per principal, and a role where one is meant."""
    resources: dict[str, Any] = {}
    for policy in policies:
        name = _logical(prefix, policy.principal)
        resources[f"{name}Policy"] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": f"deployfw: what the {policy.principal} principal needs (deployfw iam policy)",
                "PolicyDocument": policy.document(),
            },
        }
        trust = policy.trust()
        if trust is not None:
            resources[f"{name}Role"] = {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": trust,
                    "ManagedPolicyArns": [{"Ref": f"{name}Policy"}],
                },
            }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def terraform(policies: Sequence[PolicySet], prefix: str) -> dict[str, Any]:
    """Terraform JSON syntax (a ``.tf.json`` file): ``aws_iam_policy`` per principal, roles where meant."""
    policy_blocks: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    attachments: dict[str, Any] = {}
    for policy in policies:
        name = f"{_snake(prefix)}_{policy.principal}"
        policy_blocks[name] = {"name": f"{prefix}-{policy.principal}", "policy": json.dumps(policy.document())}
        trust = policy.trust()
        if trust is not None:
            roles[name] = {"name": f"{prefix}-{policy.principal}", "assume_role_policy": json.dumps(trust)}
            attachments[name] = {
                "role": f"${{aws_iam_role.{name}.name}}",
                "policy_arn": f"${{aws_iam_policy.{name}.arn}}",
            }
    resource: dict[str, Any] = {"aws_iam_policy": policy_blocks}
    if roles:
        resource["aws_iam_role"] = roles
        resource["aws_iam_role_policy_attachment"] = attachments
    return {"resource": resource}


def _logical(prefix: str, principal: str) -> str:
    return "".join(part.capitalize() for part in f"{prefix}-{principal}".replace("_", "-").split("-") if part)


def _snake(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_") or "deployfw"
