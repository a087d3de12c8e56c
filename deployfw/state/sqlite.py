"""The ``sqlite`` state store: one file under ``.deployfw/``, for one machine.

The default for local and sandbox runs. Several processes share the file safely:
WAL mode lets readers proceed while one writer commits, every write is one
``BEGIN IMMEDIATE`` transaction (the write lock is taken before the read, so a
read-then-write such as lock acquisition is atomic), and a busy timeout makes
contending writers wait instead of failing. A connection is opened per call:
cheap for sqlite, safe across threads and across ``fork``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from deployfw.state.locks import LockInfo, Taken
from deployfw.state.model import (
    SCOPE_SEPARATOR,
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

DEFAULT_PATH = Path(".deployfw") / "state.db"
BUSY_TIMEOUT = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    scope TEXT NOT NULL,
    module TEXT NOT NULL,
    run_id TEXT NOT NULL,
    time_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (scope, module, run_id)
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (scope, module, time_key);
CREATE TABLE IF NOT EXISTS locks (
    scope TEXT NOT NULL,
    module TEXT NOT NULL,
    run_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    generation INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    acquired_at REAL NOT NULL,
    PRIMARY KEY (scope, module)
);
CREATE TABLE IF NOT EXISTS pins (
    scope TEXT NOT NULL,
    module TEXT NOT NULL,
    time_key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (scope, module)
);
"""


class SqliteStore(StoreBase):
    """Deploy records and locks in one sqlite file, created with its folder by the first write.

    Reading a store that was never written finds nothing and creates nothing, so ``plan`` and
    ``run --dry-run`` - which read the store to make the selection ``run`` will make - change
    nothing on disk.
    """

    # Lives on this machine's disk: CI agents that start from a fresh disk lose it between builds.
    shared = False

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep)
        self.path = Path(path)
        self._created = False

    def create(self) -> str:
        """Create the file, its folder and tables (idempotent; the first write does this itself)."""
        if self._created:
            return f"sqlite state store: {self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if self.path.parent.name == ".deployfw" and not ignore.exists():
            ignore.write_text("# created by deployfw: local deploy state, never committed\n*\n")
        with closing(self._connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
        self._created = True
        return f"sqlite state store: {self.path}"

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @property
    def location(self) -> str:
        return f"sqlite file {self.path}"

    def forget_accounts_ending(self, suffix: str) -> int:
        """Delete the records, locks and pins of every scope whose account ends with ``suffix``; how many.

        For a front end that keys accounts by something that can go away - the CLI's background
        sandbox appends ``~<instance>``, and a replaced sandbox's deploys describe nothing that exists.
        """
        if not suffix or not all(c.isalnum() or c in "~-." for c in suffix):  # nothing LIKE would read as a wildcard
            raise ValueError(f"account suffix must be letters, digits or ~-.: {suffix!r}")
        if not self.path.exists():
            return 0
        pattern = f"%{suffix}{SCOPE_SEPARATOR}%"  # scope keys join account, region and env with the separator
        removed = 0
        with self._tx() as con:
            for table in ("records", "locks", "pins"):
                removed += con.execute(f"DELETE FROM {table} WHERE scope LIKE ?", (pattern,)).rowcount
        return removed

    # -- plumbing ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database's write lock from its first statement."""
        self.create()
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (WAL readers never block the writer).

        A store never written reads as an empty in-memory database: nothing is created.
        """
        if not self._created and not self.path.exists():
            with closing(sqlite3.connect(":memory:")) as empty:
                empty.executescript(_SCHEMA)
                yield empty
            return
        with closing(self._connect()) as con:
            con.execute("BEGIN")
            try:
                yield con
            finally:
                con.execute("ROLLBACK")

    @staticmethod
    def _get(con: sqlite3.Connection, scope: Scope, module: str, run_id: str) -> DeployRecord | None:
        row = con.execute(
            "SELECT data FROM records WHERE scope=? AND module=? AND run_id=?", (scope.key, module, run_id)
        ).fetchone()
        return DeployRecord.from_json(row[0]) if row else None

    @staticmethod
    def _put(con: sqlite3.Connection, record: DeployRecord) -> None:
        con.execute(
            "INSERT INTO records (scope, module, run_id, time_key, outcome, commit_sha, data) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT (scope, module, run_id) DO UPDATE SET time_key=excluded.time_key,"
            " outcome=excluded.outcome, commit_sha=excluded.commit_sha, data=excluded.data",
            (
                record.scope.key,
                record.module,
                record.run_id,
                time_key(record),
                record.outcome,
                record.commit,
                record.to_json(),
            ),
        )

    # -- records -----------------------------------------------------------------------------

    def record_start(self, record: DeployRecord) -> None:
        record = record.replace(outcome="started", ended_at=None, error=None)
        if record.started_at is None:
            record = record.replace(started_at=now_utc(self._clock()))
        with self._tx() as con:
            existing = self._get(con, record.scope, record.module, record.run_id)
            if existing is not None:
                if existing.finished:
                    raise ValueError(f"run {record.run_id} already concluded {record.module}: {existing.outcome}")
                return  # a repeated call: the first write (and any progress since) stands
            self._put(con, record)

    def record_progress(self, scope: Scope, module: str, run_id: str, **fields: Any) -> None:
        with self._tx() as con:
            record = self._get(con, scope, module, run_id)
            if record is None:
                raise KeyError(f"no deploy record of {module} for run {run_id} in {scope}")
            self._put(con, apply_fields(record, fields))

    def record_end(
        self, scope: Scope, module: str, run_id: str, outcome: Outcome, error: str | None = None, **fields: Any
    ) -> bool:
        if outcome == "started":
            raise ValueError("record_end needs a final outcome")
        with self._tx() as con:
            record = self._get(con, scope, module, run_id)
            if record is None:
                raise KeyError(f"no deploy record of {module} for run {run_id} in {scope}")
            if record.finished:
                return False
            record = apply_fields(record, fields).replace(outcome=outcome, error=error, ended_at=now_utc(self._clock()))
            self._put(con, DeployRecord.from_dict(record.to_dict()))  # re-validates and redacts the error
            return True

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[DeployRecord]:
        with self._read() as con:
            return [DeployRecord.from_json(row[0]) for row in con.execute(sql, params)]

    def last_success(self, scope: Scope, module: str) -> DeployRecord | None:
        rows = self._query(
            "SELECT data FROM records WHERE scope=? AND module=? AND outcome='succeeded'"
            " ORDER BY time_key DESC LIMIT 1",
            (scope.key, check_module(module)),
        )
        return rows[0] if rows else None

    def in_flight(self, scope: Scope, module: str) -> DeployRecord | None:
        with self._read() as con:
            live = self._lock_row(con, scope, check_module(module))
            live_run = live.run_id if live and not live.expired(self._clock()) else None
            for (data,) in con.execute(
                "SELECT data FROM records WHERE scope=? AND module=? AND outcome='started' ORDER BY time_key DESC",
                (scope.key, module),
            ):
                record = DeployRecord.from_json(data)
                if record.run_id != live_run:
                    return record
        return None

    def history(self, scope: Scope, module: str, limit: int = 20) -> list[DeployRecord]:
        return self._query(
            "SELECT data FROM records WHERE scope=? AND module=? ORDER BY time_key DESC LIMIT ?",
            (scope.key, check_module(module), int(limit)),
        )

    def find(
        self, scope: Scope, module: str, run_id_or_commit: str, *, outcome: Outcome | None = None
    ) -> DeployRecord | None:
        with self._read() as con:
            record = self._get(con, scope, check_module(module), run_id_or_commit)
        if record is not None and (outcome is None or record.outcome == outcome):
            return record
        like = run_id_or_commit.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        candidates = self._query(
            "SELECT data FROM records WHERE scope=? AND module=? AND commit_sha LIKE ? ESCAPE '\\'"
            " ORDER BY time_key DESC",
            (scope.key, module, like),
        )
        return match_commit(candidates, run_id_or_commit, outcome)

    def modules(self, scope: Scope) -> dict[str, DeployRecord]:
        rows = self._query(
            "SELECT r.data FROM records r JOIN (SELECT module, MAX(time_key) AS t FROM records WHERE scope=?"
            " GROUP BY module) m ON r.module = m.module AND r.time_key = m.t WHERE r.scope=? ORDER BY r.module",
            (scope.key, scope.key),
        )
        return {r.module: r for r in rows}

    # -- locks -------------------------------------------------------------------------------

    @staticmethod
    def _lock_row(con: sqlite3.Connection, scope: Scope, module: str) -> LockInfo | None:
        row = con.execute(
            "SELECT run_id, holder, generation, expires_at, acquired_at FROM locks WHERE scope=? AND module=?",
            (scope.key, module),
        ).fetchone()
        if row is None or not row[1]:
            return None
        return LockInfo(*row)

    def lock_info(self, scope: Scope, module: str) -> LockInfo | None:
        with self._read() as con:
            return self._lock_row(con, scope, check_module(module))

    def _take(
        self, scope: Scope, module: str, run_id: str, holder: str, lease_seconds: float, *, takeover: bool
    ) -> Taken | LockInfo:
        check_module(module)
        with self._tx() as con:
            now = self._clock()
            current = self._lock_row(con, scope, module)
            live = current if current is not None and not current.expired(now) else None
            if live is not None and not takeover:
                return live
            row = con.execute("SELECT generation FROM locks WHERE scope=? AND module=?", (scope.key, module)).fetchone()
            generation = (row[0] if row else 0) + 1
            con.execute(
                "INSERT INTO locks (scope, module, run_id, holder, generation, expires_at, acquired_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT (scope, module) DO UPDATE SET run_id=excluded.run_id,"
                " holder=excluded.holder, generation=excluded.generation, expires_at=excluded.expires_at,"
                " acquired_at=excluded.acquired_at",
                (scope.key, module, run_id, holder, generation, now + lease_seconds, now),
            )
            return Taken(generation, now + lease_seconds, live)

    def _renew(self, scope: Scope, module: str, holder: str, lease_seconds: float) -> float | LockInfo | None:
        with self._tx() as con:
            current = self._lock_row(con, scope, module)
            if current is None or current.holder != holder:
                return current
            expires = self._clock() + lease_seconds
            con.execute(
                "UPDATE locks SET expires_at=? WHERE scope=? AND module=? AND holder=?",
                (expires, scope.key, module, holder),
            )
            return expires

    def _release(self, scope: Scope, module: str, holder: str) -> None:
        # The row stays (holder cleared) so the generation keeps growing across acquisitions.
        with self._tx() as con:
            con.execute(
                "UPDATE locks SET holder='', expires_at=0 WHERE scope=? AND module=? AND holder=?",
                (scope.key, module, holder),
            )

    # -- pins --------------------------------------------------------------------------------

    def set_pin(self, pin: Pin) -> bool:
        with self._tx() as con:
            row = con.execute(
                "SELECT time_key FROM pins WHERE scope=? AND module=?", (pin.scope.key, pin.module)
            ).fetchone()
            if row is not None and row[0] > pin_time_key(pin):
                return False
            con.execute(
                "INSERT INTO pins (scope, module, time_key, data) VALUES (?,?,?,?) ON CONFLICT (scope, module)"
                " DO UPDATE SET time_key=excluded.time_key, data=excluded.data",
                (pin.scope.key, pin.module, pin_time_key(pin), pin.to_json()),
            )
            return True

    def get_pin(self, scope: Scope, module: str) -> Pin | None:
        return self._pins(scope, check_module(module)).get(module)

    def pins(self, scope: Scope) -> dict[str, Pin]:
        return self._pins(scope, None)

    def _pins(self, scope: Scope, module: str | None) -> dict[str, Pin]:
        sql, params = "SELECT data FROM pins WHERE scope=?", [scope.key]
        if module is not None:
            sql, params = sql + " AND module=?", [scope.key, module]
        with self._read() as con:
            try:
                rows = con.execute(sql + " ORDER BY module", params).fetchall()
            except sqlite3.OperationalError as exc:  # a file from before pins, not written to since
                if "no such table" not in str(exc):
                    raise
                return {}
        pins = [Pin.from_json(row[0]) for row in rows]
        return {p.module: p for p in pins}

    def release_pin(self, scope: Scope, module: str, run_id: str | None = None) -> Pin | None:
        with self._tx() as con:
            row = con.execute(
                "SELECT data FROM pins WHERE scope=? AND module=?", (scope.key, check_module(module))
            ).fetchone()
            if row is None:
                return None
            pin = Pin.from_json(row[0])
            if run_id is not None and pin.run_id != run_id:
                return None
            con.execute("DELETE FROM pins WHERE scope=? AND module=?", (scope.key, module))
            return pin
