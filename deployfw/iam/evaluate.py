"""Decide one request against identity policies the way IAM does (explicit deny, allow, implicit deny).

The sandbox enforces IAM with this evaluator and answers SimulatePrincipalPolicy with it, so what
``deployfw doctor`` reports against the sandbox and what the sandbox refuses can never disagree.
It covers what deployfw's policies and the tests' use, as AWS documents it:

- ``Action``/``NotAction`` with ``*`` and ``?`` wildcards, case-insensitive;
- ``Resource``/``NotResource``: ARNs compared segment by segment (a wildcard never spans the
  partition, service, region or account), the resource part case-sensitive;
- ``Condition`` operators ``String*`` (``Equals``, ``NotEquals``, ``EqualsIgnoreCase``, ``Like``...),
  ``Arn*``, ``Bool`` and ``Null``, with ``...IfExists`` and the ``ForAnyValue:``/``ForAllValues:``
  set operators. A key the request lacks fails a positive operator and satisfies a negated one;
  an operator this evaluator does not know never matches (it can only refuse, never allow).

Resource-based policies, permission boundaries, SCPs and session policies are out of scope: the
sandbox attaches none.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

Decision = Literal["allowed", "explicitDeny", "implicitDeny"]


@dataclass(frozen=True)
class Source:
    """A policy document and what to call it in answers (its name or ARN)."""

    id: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Matched:
    """A statement that decided: policy id, statement index and Sid (if any)."""

    policy: str
    index: int
    sid: str | None


@dataclass(frozen=True)
class Evaluation:
    action: str
    resource: str
    decision: Decision
    matched: tuple[Matched, ...] = ()
    missing_context: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def evaluate(
    sources: Sequence[Source], action: str, resource: str, context: Mapping[str, Sequence[str]] | None = None
) -> Evaluation:
    """Whether ``sources`` allow ``action`` on ``resource`` with request ``context`` (condition keys)."""
    ctx = {k.lower(): list(v) for k, v in (context or {}).items()}
    allows: list[Matched] = []
    denies: list[Matched] = []
    missing: set[str] = set()
    for source in sources:
        for index, statement in enumerate(_statements(source.document)):
            if not _applies(statement, action, resource):
                continue
            ok, absent = _conditions(statement.get("Condition") or {}, ctx)
            missing.update(absent)
            if not ok:
                continue
            matched = Matched(source.id, index, statement.get("Sid"))
            (denies if statement.get("Effect") == "Deny" else allows).append(matched)
    if denies:
        return Evaluation(action, resource, "explicitDeny", tuple(denies), tuple(sorted(missing)))
    if allows:
        return Evaluation(action, resource, "allowed", tuple(allows), tuple(sorted(missing)))
    return Evaluation(action, resource, "implicitDeny", (), tuple(sorted(missing)))


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = document.get("Statement") or []
    return [found] if isinstance(found, Mapping) else [s for s in found if isinstance(s, Mapping)]


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        if not any(action_matches(p, action) for p in _values(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(p, action) for p in _values(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(resource_matches(p, resource) for p in _values(statement["Resource"]))
    if "NotResource" in statement:
        return not any(resource_matches(p, resource) for p in _values(statement["NotResource"]))
    return False


def action_matches(pattern: str, action: str) -> bool:
    """``ecr:Put*`` matches ``ecr:PutImage``; IAM compares action names case-insensitively."""
    return _glob(pattern.lower()).match(action.lower()) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM's ARN match: ``*`` alone matches everything; otherwise the first five segments are
    matched one by one (a wildcard stays inside its segment) and the resource part as a whole."""
    if pattern == "*":
        return True
    p_parts, r_parts = pattern.split(":", 5), resource.split(":", 5)
    if len(p_parts) != len(r_parts):
        return False  # an ARN pattern short of segments matches no ARN
    if len(p_parts) != 6:
        return _glob(pattern).match(resource) is not None
    return all(_glob(p).match(r) is not None for p, r in zip(p_parts, r_parts, strict=True))


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one character, everything else literal (no ``[...]`` classes)."""
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")), re.DOTALL)


# -- conditions -----------------------------------------------------------------------------------

_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _conditions(block: Mapping[str, Any], ctx: Mapping[str, list[str]]) -> tuple[bool, list[str]]:
    """Every operator's every key must hold; the keys the request lacks are reported as missing."""
    missing: list[str] = []
    for raw_operator, keys in block.items():
        if not isinstance(keys, Mapping):
            return False, missing
        set_op, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        for key, expected in keys.items():
            present = ctx.get(key.lower())
            if base == "Null":
                want_absent = _values(expected)[0].lower() == "true"
                if (present is None) != want_absent:
                    return False, missing
                continue
            if present is None:
                missing.append(key)
                if if_exists or base in _NEGATED:
                    continue
                return False, missing
            if not _holds(base, set_op, present, _values(expected)):
                return False, missing
    return True, missing


def _holds(operator: str, set_op: str, present: Sequence[str], expected: Sequence[str]) -> bool:
    test = _TESTS.get(operator)
    if test is None:
        return False  # unknown operator: never grants
    negated = operator in _NEGATED
    if set_op == "ForAllValues":
        return all(test(v, expected) for v in present)
    if set_op == "ForAnyValue" or not negated:
        return any(test(v, expected) for v in present)
    return all(test(v, expected) for v in present)


def _equals(value: str, expected: Iterable[str]) -> bool:
    return value in expected


def _equals_ic(value: str, expected: Iterable[str]) -> bool:
    return value.lower() in {e.lower() for e in expected}


def _like(value: str, expected: Iterable[str]) -> bool:
    return any(_glob(e).match(value) for e in expected)


def _arn_like(value: str, expected: Iterable[str]) -> bool:
    return any(resource_matches(e, value) for e in expected)


def _bool(value: str, expected: Iterable[str]) -> bool:
    return value.lower() in {e.lower() for e in expected}


_TESTS = {
    "StringEquals": _equals,
    "StringNotEquals": lambda v, e: not _equals(v, e),
    "StringEqualsIgnoreCase": _equals_ic,
    "StringNotEqualsIgnoreCase": lambda v, e: not _equals_ic(v, e),
    "StringLike": _like,
    "StringNotLike": lambda v, e: not _like(v, e),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": lambda v, e: not _arn_like(v, e),
    "ArnNotLike": lambda v, e: not _arn_like(v, e),
    "Bool": _bool,
}
