"""The ``dynamodb`` state store: one table shared by every CI agent.

Layout (one table, ``deployfw-state`` by default; ``pk`` = the scope key
``ACCOUNT#REGION#ENV``, so one scope is one item collection):

=================  ===========================  ==========================================
item               sort key ``sk``              attributes
=================  ===========================  ==========================================
deploy record      ``R#<module>#<run_id>``      ``tkey`` (LSI ``by_time``), outcome, commit,
                                                version, end_token, data (the record JSON)
module marker      ``H#<module>``               module (so ``modules()`` lists a scope cheaply)
lock               ``L#<module>``               holder, run_id, generation, expires_at
rollback pin       ``P#<module>``               module, run_id, pinned (when set), data
=================  ===========================  ==========================================

``tkey`` = ``<module>#<started_at>#<run_id>``: history is one Query on the LSI,
newest first, with strongly consistent reads. Every write is a single conditional
write, so two agents never both believe they hold a lock, and a write that the
retry policy repeats after an ambiguous failure is recognised (the holder token
or end token is ours) instead of being applied twice. All calls go through the
:class:`deployfw.aws.clients.Aws` boundary and its one retry policy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from deployfw.errors import ExternalError
from deployfw.state.locks import LockInfo, Taken
from deployfw.state.model import (
    DeployRecord,
    Outcome,
    Pin,
    Scope,
    apply_fields,
    check_module,
    now_utc,
    pin_time_key,
    time_key,
)
from deployfw.state.store import StoreBase, match_commit

if TYPE_CHECKING:
    from deployfw.aws.clients import Aws
    from deployfw.iam.needs import IamNeed, IamScope

DEFAULT_TABLE = "deployfw-state"
BY_TIME = "by_time"
CONDITION_FAILED = "ConditionalCheckFailedException"
_WRITE_ATTEMPTS = 20  # optimistic-concurrency retries of one record update under contention
_PAGE = 50


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


class StoreMissing(ExternalError):
    """The state table does not exist (yet): ``deployfw state init`` creates it."""


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "code", None) == CONDITION_FAILED


class DynamoStore(StoreBase):
    """Deploy records and locks in a DynamoDB table (see :func:`create_table`)."""

    shared = True  # every agent with the table's permissions reads and writes the same history

    def __init__(
        self,
        aws: Aws,
        table: str = DEFAULT_TABLE,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep)
        self.aws = aws
        self.table = table

    def __repr__(self) -> str:
        return f"DynamoStore({self.table!r}, region={self.aws.region!r})"

    @property
    def location(self) -> str:
        return f"DynamoDB table {self.table} in {self.aws.region}"

    def iam_needs(self, scope: IamScope) -> list[IamNeed]:
        """Records and locks are items of one table, read through its time index; ``state init`` creates it."""
        from deployfw.iam.needs import IamNeed, IamScope

        here = IamScope(scope.config, None, scope.account, self.aws.region, scope.partition)  # the table's region
        table = here.arn("dynamodb", f"table/{self.table}")
        return [
            IamNeed("StateTable", ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                                   "dynamodb:UpdateItem"),
                    (table,), f"deploy records and module locks in {self.table}"),
            IamNeed("StateTableIndex", ("dynamodb:Query",), (f"{table}/index/{BY_TIME}",),
                    f"a module's deploy history, newest first ({self.table}'s {BY_TIME} index)"),
            IamNeed("StateTableCreate", ("dynamodb:CreateTable", "dynamodb:DescribeTable"), (table,),
                    f"`deployfw state init` creates {self.table}", when="setup"),
        ]

    def create(self) -> str:
        """``deployfw state init``: create the table (waiting until ACTIVE) unless it exists."""
        created = create_table(self.aws, self.table)
        where = f"DynamoDB table {self.table} in {self.aws.region}"
        return f"created {where}" if created else f"{where} already exists"

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, operation: str, *, deadline: float | None = None, **params: Any) -> dict[str, Any]:
        try:
            return self.aws.call("dynamodb", operation, deadline=deadline, TableName=self.table, **params)
        except Exception as exc:
            if getattr(exc, "code", None) != "ResourceNotFoundException":
                raise
            # The first call of a new CI setup: say what to do, not "Requested resource not found".
            raise StoreMissing(
                f"state store: DynamoDB table {self.table} does not exist in {self.aws.region}; "
                "create it once with `deployfw state init` (same modules.yaml and DEPLOYFW_STATE)"
            ) from None

    @staticmethod
    def _record_key(scope: Scope, module: str, run_id: str) -> dict[str, Any]:
        return {"pk": _s(scope.key), "sk": _s(f"R#{check_module(module)}#{run_id}")}

    @staticmethod
    def _lock_key(scope: Scope, module: str) -> dict[str, Any]:
        return {"pk": _s(scope.key), "sk": _s(f"L#{check_module(module)}")}

    def _get_item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._call("get_item", Key=key, ConsistentRead=True).get("Item")

    def _get(self, scope: Scope, module: str, run_id: str) -> tuple[DeployRecord, dict[str, Any]] | None:
        item = self._get_item(self._record_key(scope, module, run_id))
        return (DeployRecord.from_json(item["data"]["S"]), item) if item else None

    def _item(self, record: DeployRecord, version: int, end_token: str | None = None) -> dict[str, Any]:
        item = {
            **self._record_key(record.scope, record.module, record.run_id),
            "tkey": _s(f"{record.module}#{time_key(record)}"),
            "module": _s(record.module),
            "run_id": _s(record.run_id),
            "outcome": _s(record.outcome),
            "commit": _s(record.commit),
            "version": _n(version),
            "data": _s(record.to_json()),
        }
        if end_token:
            item["end_token"] = _s(end_token)
        return item

    def _records(self, scope: Scope, module: str, *, newest_first: bool = True, **extra: Any) -> Iterator[DeployRecord]:
        """Records of one module from the time index, page by page, optionally filtered."""
        values = {":p": _s(scope.key), ":m": _s(f"{check_module(module)}#"), **extra.pop("values", {})}
        params: dict[str, Any] = {
            "IndexName": BY_TIME,
            "KeyConditionExpression": "pk = :p AND begins_with(tkey, :m)",
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
            "Limit": _PAGE,
            **extra,
        }
        while True:
            page = self._call("query", **params)
            for item in page.get("Items", []):
                yield DeployRecord.from_json(item["data"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- records -----------------------------------------------------------------------------

    def record_start(self, record: DeployRecord) -> None:
        record = record.replace(outcome="started", ended_at=None, error=None)
        if record.started_at is None:
            record = record.replace(started_at=now_utc(self._clock()))
        self._call(
            "put_item",
            Item={"pk": _s(record.scope.key), "sk": _s(f"H#{record.module}"), "module": _s(record.module)},
        )
        try:
            self._call("put_item", Item=self._item(record, 1), ConditionExpression="attribute_not_exists(sk)")
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            found = self._get(record.scope, record.module, record.run_id)
            if found is not None and found[0].finished:
                raise ValueError(f"run {record.run_id} already concluded {record.module}: {found[0].outcome}") from None
            # Still "started": a repeated call; the first write (and any progress since) stands.

    def _update(
        self, scope: Scope, module: str, run_id: str, change: Callable[[DeployRecord, dict[str, Any]], Any]
    ) -> Any:
        """Read-modify-write of one record with optimistic concurrency on its ``version``.

        ``change`` returns ``(new_record, end_token, result)``, or ``(None, None, result)`` to write nothing.
        """
        for _ in range(_WRITE_ATTEMPTS):
            found = self._get(scope, module, run_id)
            if found is None:
                raise KeyError(f"no deploy record of {module} for run {run_id} in {scope}")
            record, item = found
            new, end_token, result = change(record, item)
            if new is None:
                return result
            version = int(item["version"]["N"])
            try:
                self._call(
                    "put_item",
                    Item=self._item(new, version + 1, end_token or item.get("end_token", {}).get("S")),
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":v": _n(version)},
                )
                return result
            except Exception as exc:
                if not _condition_failed(exc):
                    raise
            self._sleep(0.01)
        raise RuntimeError(f"deploy record of {module} run {run_id} kept changing under us")

    def record_progress(self, scope: Scope, module: str, run_id: str, **fields: Any) -> None:
        def change(record: DeployRecord, _item: dict[str, Any]) -> tuple[DeployRecord | None, None, None]:
            new = apply_fields(record, fields)
            return (None if new == record else new), None, None  # equal: a repeated write had landed

        self._update(scope, module, run_id, change)

    def record_end(
        self, scope: Scope, module: str, run_id: str, outcome: Outcome, error: str | None = None, **fields: Any
    ) -> bool:
        if outcome == "started":
            raise ValueError("record_end needs a final outcome")
        token = uuid.uuid4().hex
        ended = now_utc(self._clock())

        def change(record: DeployRecord, item: dict[str, Any]) -> tuple[DeployRecord | None, str | None, bool]:
            if record.finished:  # ours when a retried write had already landed
                return None, None, item.get("end_token", {}).get("S") == token
            new = apply_fields(record, fields).replace(outcome=outcome, error=error, ended_at=ended)
            return DeployRecord.from_dict(new.to_dict()), token, True

        return bool(self._update(scope, module, run_id, change))

    def last_success(self, scope: Scope, module: str) -> DeployRecord | None:
        return next(self._records(scope, module, FilterExpression="outcome = :o", values={":o": _s("succeeded")}), None)

    def in_flight(self, scope: Scope, module: str) -> DeployRecord | None:
        live = self.lock_info(scope, module)
        live_run = live.run_id if live and not live.expired(self._clock()) else None
        started = self._records(scope, module, FilterExpression="outcome = :o", values={":o": _s("started")})
        return next((r for r in started if r.run_id != live_run), None)

    def history(self, scope: Scope, module: str, limit: int = 20) -> list[DeployRecord]:
        out: list[DeployRecord] = []
        for record in self._records(scope, module):
            if len(out) >= limit:
                break
            out.append(record)
        return out

    def find(
        self, scope: Scope, module: str, run_id_or_commit: str, *, outcome: Outcome | None = None
    ) -> DeployRecord | None:
        found = self._get(scope, module, run_id_or_commit)
        if found is not None and (outcome is None or found[0].outcome == outcome):
            return found[0]
        matches = list(
            self._records(
                scope,
                module,
                FilterExpression="begins_with(#c, :c)",
                ExpressionAttributeNames={"#c": "commit"},
                values={":c": _s(run_id_or_commit)},
            )
        )
        return match_commit(matches, run_id_or_commit, outcome)

    def modules(self, scope: Scope) -> dict[str, DeployRecord]:
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :h)",
            "ExpressionAttributeValues": {":p": _s(scope.key), ":h": _s("H#")},
            "ConsistentRead": True,
        }
        names: list[str] = []
        while True:
            page = self._call("query", **params)
            names.extend(item["module"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out = {}
        for name in sorted(names):
            latest = next(self._records(scope, name, Limit=1), None)
            if latest is not None:
                out[name] = latest
        return out

    # -- locks -------------------------------------------------------------------------------

    def _lock_row(self, scope: Scope, module: str) -> tuple[LockInfo | None, int]:
        item = self._get_item(self._lock_key(scope, module))
        if not item:
            return None, 0
        generation = int(item.get("generation", {"N": "0"})["N"])
        if "holder" not in item:
            return None, generation
        info = LockInfo(
            run_id=item["run_id"]["S"],
            holder=item["holder"]["S"],
            generation=generation,
            expires_at=float(item["expires_at"]["N"]),
            acquired_at=float(item["acquired_at"]["N"]),
        )
        return info, generation

    def lock_info(self, scope: Scope, module: str) -> LockInfo | None:
        return self._lock_row(scope, module)[0]

    def _take(
        self, scope: Scope, module: str, run_id: str, holder: str, lease_seconds: float, *, takeover: bool
    ) -> Taken | LockInfo:
        for _ in range(_WRITE_ATTEMPTS):
            result = self._take_once(scope, module, run_id, holder, lease_seconds, takeover=takeover)
            if result is not None:
                return result
        raise RuntimeError(f"lock of {module} ({scope}) kept changing under us")

    def _take_once(
        self, scope: Scope, module: str, run_id: str, holder: str, lease_seconds: float, *, takeover: bool
    ) -> Taken | LockInfo | None:
        """One conditional write; None when a race was lost to a holder that is already gone (try again)."""
        current, generation = self._lock_row(scope, module)
        now = self._clock()
        if current is not None and current.holder == holder:  # a retried write of ours had landed
            return Taken(current.generation, current.expires_at, None)
        live = current if current is not None and not current.expired(now) else None
        if live is not None and not takeover:
            return live
        if takeover:  # compare-and-set on the generation we read: concurrent supersessors serialise
            condition = "attribute_not_exists(generation) OR generation = :g OR holder = :h"
        else:  # free, expired, or (a retried write that landed) already ours
            condition = "(attribute_not_exists(holder) OR expires_at < :now OR holder = :h) AND " + (
                "(attribute_not_exists(generation) OR generation = :g OR holder = :h)"
            )
        values = {
            ":r": _s(run_id),
            ":h": _s(holder),
            ":e": _n(now + lease_seconds),
            ":now": _n(now),
            ":g": _n(generation),
            ":g1": _n(generation + 1),
        }
        try:
            self._call(
                "update_item",
                Key=self._lock_key(scope, module),
                UpdateExpression="SET run_id = :r, holder = :h, expires_at = :e, acquired_at = :now, generation = :g1",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            other = self.lock_info(scope, module)
            if other is None or other.expired(self._clock()) or other.holder == holder:
                return None
            return other
        return Taken(generation + 1, now + lease_seconds, live)

    def _renew(self, scope: Scope, module: str, holder: str, lease_seconds: float) -> float | LockInfo | None:
        expires = self._clock() + lease_seconds
        try:
            self._call(
                "update_item",
                Key=self._lock_key(scope, module),
                UpdateExpression="SET expires_at = :e",
                ConditionExpression="holder = :h",
                deadline=lease_seconds / 3,  # a renewal retried past the next tick is worthless
                ExpressionAttributeValues={":e": _n(expires), ":h": _s(holder)},
            )
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            return self.lock_info(scope, module)
        return expires

    def _release(self, scope: Scope, module: str, holder: str) -> None:
        # The item stays (holder removed) so the generation keeps growing across acquisitions.
        try:
            self._call(
                "update_item",
                Key=self._lock_key(scope, module),
                UpdateExpression="SET expires_at = :zero REMOVE holder",
                ConditionExpression="holder = :h",
                ExpressionAttributeValues={":zero": _n(0), ":h": _s(holder)},
            )
        except Exception as exc:
            if not _condition_failed(exc):
                raise

    # -- pins --------------------------------------------------------------------------------

    @staticmethod
    def _pin_key(scope: Scope, module: str) -> dict[str, Any]:
        return {"pk": _s(scope.key), "sk": _s(f"P#{check_module(module)}")}

    def set_pin(self, pin: Pin) -> bool:
        tkey = pin_time_key(pin)
        try:
            self._call(
                "put_item",
                Item={
                    **self._pin_key(pin.scope, pin.module),
                    "module": _s(pin.module),
                    "run_id": _s(pin.run_id),
                    "pinned": _s(tkey),  # not ``tkey``: pins stay out of the records' time index
                    "data": _s(pin.to_json()),
                },
                # An older rollback's write (a late retry) never replaces a newer pin.
                ConditionExpression="attribute_not_exists(sk) OR pinned <= :t",
                ExpressionAttributeValues={":t": _s(tkey)},
            )
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            return False
        return True

    def get_pin(self, scope: Scope, module: str) -> Pin | None:
        item = self._get_item(self._pin_key(scope, module))
        return Pin.from_json(item["data"]["S"]) if item else None

    def pins(self, scope: Scope) -> dict[str, Pin]:
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :pin)",
            "ExpressionAttributeValues": {":p": _s(scope.key), ":pin": _s("P#")},
            "ConsistentRead": True,
        }
        found: dict[str, Pin] = {}
        while True:
            page = self._call("query", **params)
            for item in page.get("Items", []):
                pin = Pin.from_json(item["data"]["S"])
                found[pin.module] = pin
            if "LastEvaluatedKey" not in page:
                return dict(sorted(found.items()))
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def release_pin(self, scope: Scope, module: str, run_id: str | None = None) -> Pin | None:
        params: dict[str, Any] = {"ConditionExpression": "attribute_exists(sk)"}
        if run_id is not None:
            params["ConditionExpression"] += " AND run_id = :r"
            params["ExpressionAttributeValues"] = {":r": _s(run_id)}
        try:
            answer = self._call("delete_item", Key=self._pin_key(scope, module), ReturnValues="ALL_OLD", **params)
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            return None
        old = answer.get("Attributes")
        return Pin.from_json(old["data"]["S"]) if old else None


def create_table(
    aws: Aws, table: str = DEFAULT_TABLE, *, timeout: float = 120.0, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Create the state table (on-demand billing) and wait until it is ACTIVE; False if it already existed.

    Backs ``deployfw state init``. Safe to run from several agents at once.
    """
    created = True
    try:
        aws.call(
            "dynamodb",
            "create_table",
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "tkey", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            LocalSecondaryIndexes=[
                {
                    "IndexName": BY_TIME,
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "tkey", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "managed-by", "Value": "deployfw"}],
        )
    except Exception as exc:
        if getattr(exc, "code", None) != "ResourceInUseException":
            raise
        created = False
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        status = aws.call("dynamodb", "describe_table", TableName=table)["Table"]["TableStatus"]
        if status == "ACTIVE":
            return created
        if time.monotonic() > deadline:
            raise ExternalError(f"DynamoDB table {table} is still {status} after {timeout:g}s")
        sleep(delay)
        delay = min(delay * 2, 5.0)
