"""The sandbox account's principals: who holds an access key, and which policies they hold.

moto keeps IAM users, roles, their access keys and STS sessions; this module reads them (under
the sandbox lock, like any request) and creates the principals the sandbox itself needs: an
administrator whose credentials ``deployfw sandbox --enforce-iam`` prints, the user Jenkins jobs
run as, and sessions of the role a CodeBuild project names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deployfw.iam.evaluate import Source

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Keys:
    """An access key pair (and session token for a role session)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


def _iam(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def ensure_user(account: str, name: str, policy: dict[str, Any] | None = None, policy_name: str = "deployfw") -> Keys:
    """User ``name`` with one access key (created once), holding ``policy`` inline when given."""
    iam = _iam(account)
    if name not in iam.users:
        iam.create_user("us-east-1", name)
    user = iam.users[name]
    if policy is not None:
        iam.put_user_policy(name, policy_name, json.dumps(policy))
    key = user.access_keys[0] if user.access_keys else iam.create_access_key(name)
    return Keys(key.access_key_id, key.secret_access_key)


def ensure_role(account: str, name: str, service: str) -> str:
    """Role ``name`` trusting ``service`` (created once); its ARN."""
    iam = _iam(account)
    existing = {role.name: role for role in iam.roles.values()}
    if name not in existing:
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}  # fmt: skip
        iam.create_role(name, json.dumps(trust), "/", None, "", [], "3600")
    return f"arn:aws:iam::{account}:role/{name}"


def put_role_policy(account: str, role_arn: str, policy: dict[str, Any], policy_name: str = "deployfw") -> None:
    iam = _iam(account)
    role = iam.get_role_by_arn(role_arn)
    iam.put_role_policy(role.name, policy_name, json.dumps(policy))


def session_for(account: str, role_arn: str, session_name: str, region: str) -> Keys:
    """Temporary credentials of ``role_arn``, as the service trusted by the role gets them (AssumeRole)."""
    from moto.sts.models import sts_backends

    role = sts_backends[account]["aws"].assume_role(region, session_name, role_arn, None, 3600, None)  # type: ignore[arg-type]
    return Keys(role.access_key_id, role.secret_access_key, role.session_token)


def policies_of(account: str, principal_arn: str) -> list[Source]:
    """The identity policies of a user, role, group or role session ARN (inline and attached)."""
    iam = _iam(account)
    kind, _, rest = principal_arn.split(":", 5)[-1].partition("/")
    if kind == "assumed-role":
        kind, rest = "role", rest.split("/")[0]
    name = rest.rsplit("/", 1)[-1]
    if kind == "user":
        user = iam.get_user(name)
        found: list[Source] = _inline(user.policies, principal_arn) + _attached(user.managed_policies)
        for group in iam.get_groups_for_user(name):
            found += _inline(group.policies, group.arn) + _attached(group.managed_policies)
        return found
    if kind == "role":
        role = next(r for r in iam.roles.values() if r.name == name)
        return _inline(role.policies, role.arn) + _attached(role.managed_policies)
    if kind == "group":
        group = iam.get_group(name)
        return _inline(group.policies, group.arn) + _attached(group.managed_policies)
    raise LookupError(f"not a user, role or group: {principal_arn}")


def _inline(policies: dict[str, str], owner: str) -> list[Source]:
    return [Source(name, _document(doc)) for name, doc in policies.items()]


def _attached(policies: dict[str, Any] | Iterable[Any]) -> list[Source]:
    items: Iterable[Any] = policies.values() if isinstance(policies, dict) else policies
    found = []
    for policy in items:
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            found.append(Source(policy.arn, _document(version.document)))
    return found


def _document(doc: Any) -> dict[str, Any]:
    loaded = json.loads(doc) if isinstance(doc, str) else doc
    return dict(loaded) if isinstance(loaded, dict) else {}
