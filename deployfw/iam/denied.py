"""An AccessDenied from AWS, turned into the one statement that fixes it.

AWS says who was refused which action on which resource ("User: arn:...:user/ci is not authorized
to perform: iam:PassRole on resource: arn:...:role/ecsTaskExecutionRole because no identity-based
policy allows the iam:PassRole action"). The backends' declarations say which statement grants
exactly that, conditions included (``iam:PassedToService`` for PassRole): the error becomes one
line naming the action, the resource, the principal and the statement to add - no more clicking
until AWS stops refusing. A refusal no declaration covers is said to be one (deployfw made a call
it does not declare: a bug to report), with the minimal statement read off the error itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.iam.evaluate import action_matches, resource_matches

if TYPE_CHECKING:
    from deployfw.backends import RunContext
    from deployfw.iam.needs import IamNeed

# The error codes AWS services use for "your policy does not allow this".
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "NotAuthorized",
    }
)
_MESSAGE = re.compile(
    r"(?P<principal>arn:[\w-]+:(?:iam|sts)::\d{12}:\S+?)\s+is not authorized to perform:\s+"
    r"(?P<action>[\w-]+:[\w*]+)(?:\s+on resource:\s+\"?(?P<resource>[^\s\"]+)\"?)?"
)


@dataclass(frozen=True)
class Denial:
    """Who was refused what, on which resource; ``call`` is the API call that was refused."""

    action: str
    resource: str
    principal: str | None
    call: str
    explicit: bool = False

    @property
    def account(self) -> str | None:
        for arn in (self.principal, self.resource):
            parts = (arn or "").split(":")
            if len(parts) > 4 and parts[4].isdigit():
                return parts[4]
        return None


def parse(code: str | None, message: str, call: str, fallback_action: str) -> Denial | None:
    """The denial in an AWS error, or None when the error is not one (``fallback_action``: the call's own)."""
    if code not in DENIED_CODES:
        return None
    found = _MESSAGE.search(message)
    explicit = "explicit deny" in message
    if found is None:  # e.g. EC2's encoded message, S3's bare "Access Denied"
        return Denial(fallback_action, "*", None, call, explicit)
    return Denial(found["action"], found["resource"] or "*", found["principal"], call, explicit)


def statement_for(denial: Denial, needs: Sequence[IamNeed]) -> dict[str, Any] | None:
    """The declared statement granting exactly what was refused (None: no backend declares it)."""
    for need in sorted(needs, key=lambda n: n.principal != "ci"):
        if not any(action_matches(a, denial.action) for a in need.actions):
            continue
        if denial.resource == "*" or need.is_wildcard:
            resources = list(need.resources)
        else:
            resources = [r for r in need.resources if resource_matches(r, denial.resource)]
            if not resources:
                continue
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Action": denial.action,
            "Resource": resources[0] if len(resources) == 1 else resources,
        }
        if need.conditions:
            statement["Condition"] = {op: dict(values) for op, values in need.conditions.items()}
        return statement
    return None


def explain(denial: Denial, needs: Sequence[IamNeed] | None) -> str:
    """One line: who may not do what where, and the statement to add (from the declarations)."""
    who = denial.principal or "the caller"
    what = f"{who} is not allowed {denial.action} on {denial.resource}"
    if denial.explicit:
        return f"{what}: an explicit Deny in its policies refuses it; remove that Deny (no Allow overrides it)"
    statement = statement_for(denial, needs or ())
    if statement is not None:
        return (f"{what}; add this statement to its IAM policy: {json.dumps(statement)} "
                "(`deployfw iam policy` prints them all)")  # fmt: skip
    guess = {"Effect": "Allow", "Action": denial.action, "Resource": denial.resource}
    if needs is None:
        return f"{what}; add this statement to its IAM policy: {json.dumps(guess)}"
    return (f"{what}; no deployfw backend declares this (please report it); the statement AWS wants: "
            f"{json.dumps(guess)}")  # fmt: skip


def advisor(ctx: RunContext) -> Callable[[Denial], str]:
    """What the AWS boundary calls for a denial during a run: the backends' declarations, computed once."""
    cache: dict[str, list[IamNeed] | None] = {}

    def advise(denial: Denial) -> str:
        account = denial.account or ""
        if account not in cache:
            cache[account] = _needs(ctx, account)
        return explain(denial, cache[account])

    return advise


def _needs(ctx: RunContext, account: str) -> list[IamNeed] | None:
    """Every need of the run's config (None when the run has no registry, or a declaration fails)."""
    if ctx.backends is None or not account:
        return None
    from deployfw.iam.collect import collect

    try:
        found = collect([ctx.config], ctx.backends, ctx, account=account, region=ctx.region)
    except Exception:  # advice must never hide the refusal it explains
        return None
    return [item.need for item in found]
