"""What the state store keeps: one :class:`DeployRecord` per (scope, module, run).

State is keyed by :class:`Scope` - AWS account, region and environment - so a
sandbox run (account 123456789012) and a real run of the same repository never
read each other's history or locks. Records are plain data with a JSON form so
both backends (and ``deployfw status --json``) share one serialisation.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

from deployfw import redact

Outcome = Literal["started", "succeeded", "failed", "rolled_back", "abandoned"]
OUTCOMES: tuple[str, ...] = ("started", "succeeded", "failed", "rolled_back", "abandoned")
FINAL_OUTCOMES: frozenset[str] = frozenset(OUTCOMES) - {"started"}
DEFAULT_ENV = "default"
# Fields a run may fill in after record_start (record_progress / record_end).
MUTABLE_FIELDS: frozenset[str] = frozenset(
    {"commit", "image_digest", "image_uri", "task_definition", "deployment_id", "backend", "error", "extra"}
)
_SEPARATOR = "#"  # joins key parts in both backends, so no key part may contain it
SCOPE_SEPARATOR = _SEPARATOR  # what joins account, region and env in Scope.key


def _check_part(what: str, value: str) -> str:
    if not value or _SEPARATOR in value or "/" in value:
        raise ValueError(f"state {what} must be non-empty and contain no '#' or '/': {value!r}")
    return value


@dataclass(frozen=True, order=True)
class Scope:
    """Where a deploy happened: the AWS account, region and deployfw environment (None -> "default")."""

    account: str
    region: str
    env: str = DEFAULT_ENV

    def __init__(self, account: str, region: str, env: str | None = None) -> None:
        object.__setattr__(self, "account", _check_part("account", str(account)))
        object.__setattr__(self, "region", _check_part("region", region))
        object.__setattr__(self, "env", _check_part("env", env or DEFAULT_ENV))

    @property
    def key(self) -> str:
        """One string naming the scope, used as a partition/column value by the backends."""
        return _SEPARATOR.join((self.account, self.region, self.env))

    @classmethod
    def from_key(cls, key: str) -> Scope:
        account, region, env = key.split(_SEPARATOR)
        return cls(account, region, env)

    def __str__(self) -> str:
        return f"{self.account}/{self.region}/{self.env}"

    def to_dict(self) -> dict[str, str]:
        """The scope spelled out, as the JSON forms of records and pins carry it."""
        return {"account": self.account, "region": self.region, "env": self.env}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        return cls(data["account"], data["region"], data.get("env"))


def check_module(module: str) -> str:
    """Module names become key parts; reject the separator early instead of corrupting keys."""
    return _check_part("module", module)


def now_utc(clock: float) -> datetime:
    return datetime.fromtimestamp(clock, UTC)


def _iso(value: datetime | None) -> str | None:
    # Fixed width so that ISO strings sort like the instants they name (DynamoDB sort keys rely on it).
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if value else None


class _JsonForm:
    """The JSON text of a stored item: its ``to_dict`` form, keys sorted (both backends store this)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


@dataclass
class DeployRecord(_JsonForm):
    """One run's deploy of one module in one scope, from before CreateDeployment to its outcome.

    ``outcome`` is "started" from just before the deployment is created until the run (or the run
    that recovers it) concludes it, so a record never says "succeeded" for something that was not
    deployed. ``deployment_id`` is filled in as soon as it is known so that the successor of a killed
    run can find the deployment and await or stop it instead of creating a second one.
    """

    scope: Scope
    module: str
    run_id: str
    commit: str
    outcome: Outcome = "started"
    image_digest: str | None = None
    image_uri: str | None = None
    task_definition: str | None = None
    deployment_id: str | None = None
    backend: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_module(self.module)
        if not self.run_id:
            raise ValueError("a deploy record needs a run id")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; valid: {', '.join(OUTCOMES)}")
        if self.error:
            self.error = redact.mask(self.error)

    @property
    def finished(self) -> bool:
        return self.outcome in FINAL_OUTCOMES

    @property
    def revision(self) -> str | None:
        """What this deploy put into service, in the form its backend can put it back (``rollback``).

        The task definition for ECS deploys; for a backend without one, the ``revision`` it kept in
        ``extra`` (``codedeploy-server``: the bundle ``s3://BUCKET/KEY@ETAG``).
        """
        if self.task_definition:
            return self.task_definition
        kept = self.extra.get("revision")
        return str(kept) if kept else None

    def replace(self, **changes: Any) -> DeployRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: flat, scope spelled out, times as fixed-width ISO-8601 UTC."""
        return {
            **self.scope.to_dict(),
            "module": self.module,
            "run_id": self.run_id,
            "commit": self.commit,
            "outcome": self.outcome,
            "image_digest": self.image_digest,
            "image_uri": self.image_uri,
            "task_definition": self.task_definition,
            "deployment_id": self.deployment_id,
            "backend": self.backend,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "error": self.error,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeployRecord:
        return cls(
            scope=Scope.from_dict(data),
            module=data["module"],
            run_id=data["run_id"],
            commit=data["commit"],
            outcome=data.get("outcome", "started"),
            image_digest=data.get("image_digest"),
            image_uri=data.get("image_uri"),
            task_definition=data.get("task_definition"),
            deployment_id=data.get("deployment_id"),
            backend=data.get("backend"),
            started_at=_parse_time(data.get("started_at")),
            ended_at=_parse_time(data.get("ended_at")),
            error=data.get("error"),
            extra=dict(data.get("extra") or {}),
        )


def time_key(record: DeployRecord) -> str:
    """Sorts records of one module by start time, run id breaking ties (history order)."""
    return f"{_iso(record.started_at)}{_SEPARATOR}{record.run_id}"


def apply_fields(record: DeployRecord, fields: dict[str, Any]) -> DeployRecord:
    """``record`` with ``fields`` set; ``extra`` is merged, unknown names are a programming error."""
    unknown = set(fields) - MUTABLE_FIELDS
    if unknown:
        raise TypeError(f"not a mutable deploy record field: {', '.join(sorted(unknown))}")
    changes = dict(fields)
    if "extra" in changes:
        changes["extra"] = {**record.extra, **(changes["extra"] or {})}
    return record.replace(**changes)


@dataclass(frozen=True)
class Pin(_JsonForm):
    """A module held on the revision a rollback put back, until its own inputs change or someone unpins it.

    Why a record of its own and not "the newest deploy is a rollback": a pin must outlive later
    deploys of *other* modules and be released on purpose (``deployfw unpin``) without a deploy;
    one item per (scope, module) also lets a run read every pin of a scope with one query.

    ``since`` is the commit a later run measures "the module's own inputs changed" from: the
    newest of the rolled-back deploy's commit, the newest commit a deploy of the module was
    attempted with, and the rollback's checkout HEAD (whichever contains the others), so a
    change already in the history the rollback undid never releases it.
    """

    scope: Scope
    module: str
    run_id: str  # the rollback run that set the pin
    commit: str  # the commit of the revision the pin holds (the rollback's target)
    since: str
    pinned_at: datetime
    task_definition: str | None = None
    image_uri: str | None = None
    rollback_of: str | None = None  # run id of the deploy the rollback replaced

    def __post_init__(self) -> None:
        check_module(self.module)
        if not self.run_id:
            raise ValueError("a pin needs the run id of the rollback that set it")

    def reason(self) -> str:
        """Why ``run`` skips the module, with how to release it (the words ``run`` and ``plan`` print)."""
        when = self.pinned_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"pinned by rollback {self.run_id} at {when}; `deployfw unpin {self.module}` to release"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.scope.to_dict(),
            "module": self.module,
            "run_id": self.run_id,
            "commit": self.commit,
            "since": self.since,
            "pinned_at": _iso(self.pinned_at),
            "task_definition": self.task_definition,
            "image_uri": self.image_uri,
            "rollback_of": self.rollback_of,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pin:
        pinned_at = _parse_time(data.get("pinned_at"))
        if pinned_at is None:
            raise ValueError("a stored pin has no pinned_at")
        return cls(
            scope=Scope.from_dict(data),
            module=data["module"],
            run_id=data["run_id"],
            commit=data["commit"],
            since=data["since"],
            pinned_at=pinned_at,
            task_definition=data.get("task_definition"),
            image_uri=data.get("image_uri"),
            rollback_of=data.get("rollback_of"),
        )


def pin_time_key(pin: Pin) -> str:
    """Orders pins of one module by when they were set (an older pin never replaces a newer one)."""
    return f"{_iso(pin.pinned_at)}{_SEPARATOR}{pin.run_id}"
