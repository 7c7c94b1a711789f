"""The embedded store: one process, durable in a data directory.

Theory of operation
-------------------
Calls in progress, the call records kept for retries and the sticky caller IDs live in memory,
indexed for the hot path; SQLite (``callgate.db`` in the data directory) is their durable copy
and holds the configuration and token hashes. One thread owns the database
(``SqliteThread``), so the event loop never touches the disk.

Invariants:

1. A dial's check-and-take of a channel is one synchronous step on the event loop (no await
   between reading the lease counts and adding the lease), so concurrent dials in this
   process cannot both take the last channel.
2. An answer that took or released a channel is sent only after its row is committed: what a
   client was told survives ``kill -9``. A change whose answer nobody receives (its write
   failed, or the caller stopped waiting at its deadline) is undone in memory and on disk, so
   a 503 never leaves a channel taken. The one gap: a crash after such a change is committed
   and before its undo is leaves the change on disk; at worst that channel stays taken until
   its lease expires.
3. Changes to one call id are serialised: a request for a call id whose last change is still
   being written waits for that write first.
4. Only one server process may own a data directory (an exclusive lock on ``lock``), since
   the channel counts live in its memory. The CLI's configuration commands may run beside it:
   the server notices a new configuration version within its poll interval.
5. A lease's expiry is wall-clock time, so leases taken before a restart still count after it
   until they end or expire.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import msgspec

from callerid import AccountConfig, Outcome, Rule

from ..errors import Conflict, InvalidField, PreconditionFailed, StoreUnavailable
from ..wire import Decision, rfc3339
from .callstate import CallState, CallStatus, check_end, check_heartbeat, sticky_pair
from .dnc import DncIndex, number_key
from .protocol import (
    RETENTION_MS,
    USAGE_KEPT_DAYS,
    AnswerWindow,
    AuditEntry,
    AuditQuery,
    Changes,
    Ended,
    LiveCall,
    OnChange,
    Peek,
    Plan,
    TextTicket,
    Ticket,
    TokenRecord,
    channel_denial,
    channel_refusal,
    claim_refused,
    claimed_names,
    dnc_denial,
    record_answer,
)
from .sqlite import Rows, SqliteThread, Statement

__all__ = ["EmbeddedStore"]

log = logging.getLogger("callgate.store")

DEADLINE_S = 1.0
"""The embedded store answers from memory and commits locally, but a commit can still wait on
a WAL checkpoint's fsync or on another process holding the database (``callgate import``)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, config BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL,
    created_ms INTEGER NOT NULL, user_id TEXT, expires_ms INTEGER, last_used_ms INTEGER);
CREATE INDEX IF NOT EXISTS tokens_by_account ON tokens (account_id, name);
CREATE TABLE IF NOT EXISTS sticky (
    account_id TEXT NOT NULL, contact TEXT NOT NULL, caller_id TEXT,
    updated_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL DEFAULT 9223372036854775807,
    PRIMARY KEY (account_id, contact)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL, target TEXT NOT NULL, entry BLOB NOT NULL, account_seq INTEGER);
CREATE TABLE IF NOT EXISTS call_log (
    seq INTEGER PRIMARY KEY, account_id TEXT NOT NULL, call_id TEXT NOT NULL,
    retain_until_ms INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS number_owners (
    number TEXT PRIMARY KEY, account_id TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS number_owners_by_account ON number_owners (account_id);
CREATE TABLE IF NOT EXISTS number_usage (
    account_id TEXT NOT NULL, day TEXT NOT NULL, number TEXT NOT NULL, calls INTEGER NOT NULL,
    texts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS number_answers (
    account_id TEXT NOT NULL, number TEXT NOT NULL, outcomes TEXT NOT NULL,
    PRIMARY KEY (account_id, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dnc_lists (
    id INTEGER PRIMARY KEY, account_id TEXT NOT NULL UNIQUE,
    generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dnc (
    list INTEGER NOT NULL, number INTEGER NOT NULL, PRIMARY KEY (list, number)) WITHOUT ROWID;
"""
# ``dnc`` holds each account's do-not-call list (``engine.store.dnc``): the number as an
# integer, under the list's small id (``dnc_lists``) rather than the account id, so a row is
# about 12 bytes. ``generation`` counts the list's writes: a server notices a list that a
# command beside it (``callgate dnc import``) changed by it, and reloads its index.
# ``number_answers`` is each number's window of last ended calls for ``auto_rest``
# (``protocol.record_answer``): '1' a connected call, '0' any other, oldest first; '' once a
# rest cleared it.
# ``number_owners`` holds every name an account holds alone (``claimed_names``): its active
# numbers, and its SIP domain as ``sip:<domain>``. The table kept its first name so that a
# database from before domains were claimed needs no new table, only the domains' rows.
# Calls are an append-only log, not a table keyed by call id: call ids are random, and
# inserting random keys into a B-tree costs several times an append (measured: ~45 us of CPU
# a row against ~10). Each new version of a call is appended and deletes the row of the
# version it replaces (by rowid, cheap), in one transaction, so one row per call survives.
# No index on retain_until_ms: the sweep (every 30 s) scans the log in the database thread,
# where an index would add a second B-tree insert to every dial's append.

Key = tuple[str, str]
Sticky = tuple[str, int]
"""A contact's sticky caller ID and when it expires (ms)."""
Use = tuple[str, str]
"""A call counted against a number: (the account's day, the number)."""
Answers = tuple[str, str]
"""A number's window of last ended calls, as it is to be kept: (the number, its outcomes)."""
_NEVER = 2**62
_DEFAULT_STICKY_TTL_MS = 180 * 86_400_000


def _first_day_kept(now_ms: int) -> str:
    """The earliest day whose usage is kept (by UTC days: a day either side is harmless)."""
    first = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(days=USAGE_KEPT_DAYS)
    return first.date().isoformat()


class CallRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the store remembers of one call id."""

    user_id: str
    fingerprint: str
    decision: Decision
    counted: bool = True
    lease_expires_ms: int = 0
    """0 when no channel was taken (a denial)."""
    outcome: Outcome | None = None
    retain_until_ms: int
    sticky_ttl_ms: int = _DEFAULT_STICKY_TTL_MS


def _status(record: CallRecord | None, now: int) -> CallStatus:
    """The state of the call ``record`` keeps (None: no record), in ``callstate``'s order."""
    if record is None:
        return CallStatus(state=CallState.MISSING)
    if record.lease_expires_ms == 0:
        return CallStatus(state=CallState.DENIED, denial=record.decision)
    if record.outcome is not None:
        return CallStatus(state=CallState.ENDED, outcome=record.outcome)
    if not record.counted:
        return CallStatus(state=CallState.EMERGENCY)
    if record.lease_expires_ms <= now:
        return CallStatus(state=CallState.EXPIRED)
    return CallStatus(state=CallState.LIVE)


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(CallRecord)
_config_encoder = msgspec.json.Encoder()
_config_decoder = msgspec.json.Decoder(AccountConfig)
_audit_encoder = msgspec.json.Encoder()
_audit_decoder = msgspec.json.Decoder(AuditEntry)
_TOKEN_COLUMNS = "hash, account_id, name, created_ms, user_id, expires_ms, last_used_ms"


def _token(row: tuple[Any, ...]) -> TokenRecord:
    return TokenRecord(
        hash=row[0], account_id=row[1], name=row[2], created_ms=row[3], user_id=row[4],
        expires_ms=row[5], last_used_ms=row[6],
    )


def _append_audit(conn: sqlite3.Connection, account_id: str, entries: Sequence[AuditEntry]) -> None:
    """Log ``entries``, numbered on from the account's newest (``account_seq``, the id its
    readers see): a number counts this account's entries alone, where the table's ``seq``
    runs across accounts and would tell a reader how much the others wrote. Runs inside the
    write transaction, so no other writer numbers between the read and the insert."""
    if not entries:
        return
    (newest,) = conn.execute(
        "SELECT COALESCE(MAX(account_seq), 0) FROM audit WHERE account_id = ?", (account_id,)
    ).fetchone()
    conn.executemany(
        "INSERT INTO audit (account_id, account_seq, at_ms, actor, target, entry) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(account_id, newest + n, e.at_ms, e.actor, e.target, _audit_encoder.encode(e))
         for n, e in enumerate(entries, 1)],
    )


def _number_audit(conn: sqlite3.Connection) -> None:
    """Number the audit entries of a database from before ``account_seq`` per account, in the
    order they were written (an account's entries keep their order, and with one account in
    the database their ids too), and index the log by account and number."""
    if "account_seq" not in {row[1] for row in conn.execute("PRAGMA table_info(audit)")}:
        conn.execute("ALTER TABLE audit ADD COLUMN account_seq INTEGER")
        conn.execute(
            "UPDATE audit SET account_seq = numbered.n FROM ("
            "SELECT seq, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY seq) AS n "
            "FROM audit) AS numbered WHERE audit.seq = numbered.seq"
        )
    conn.execute("DROP INDEX IF EXISTS audit_by_account")
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_numbered ON audit (account_id, account_seq)"
    )


_SQLITE_INT_MAX = 2**63 - 1


def _cursor(value: str | None) -> int | None:
    """An audit cursor as the entry number it is. Only ASCII digits (``str.isdigit`` takes
    other scripts' digits too) and nothing above SQLite's largest integer, which a
    parameter must not exceed."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > _SQLITE_INT_MAX:
        raise InvalidField(f"cursor {value!r} is not one this store gave out", field="cursor")
    return int(value)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# Phases of a batch (see SqliteThread): appends first, deletions of replaced rows after, which
# is right whatever the order of the jobs, since a row number is never used twice.
_APPEND, _DELETE = 0, 1
_INSERT_CALL = Statement(
    _APPEND,
    "INSERT INTO call_log (seq, account_id, call_id, retain_until_ms, record) VALUES ",
    "(?, ?, ?, ?, ?)",
)
_SET_STICKY = Statement(
    _APPEND,
    "INSERT OR REPLACE INTO sticky (account_id, contact, caller_id, updated_ms, expires_ms) "
    "VALUES ",
    "(?, ?, ?, ?, ?)",
)
_DELETE_CALLS = Statement(_DELETE, "DELETE FROM call_log WHERE seq IN (", "?", ")")
_SET_ANSWERS = Statement(
    _APPEND,
    "INSERT OR REPLACE INTO number_answers (account_id, number, outcomes) VALUES ",
    "(?, ?, ?)",
)
_COUNT_USE = Statement(
    _APPEND,
    "INSERT INTO number_usage (account_id, day, number, calls) VALUES ",
    "(?, ?, ?, ?)",
    " ON CONFLICT (account_id, day, number) DO UPDATE SET calls = calls + excluded.calls",
)
_COUNT_TEXT = Statement(
    _APPEND,
    "INSERT INTO number_usage (account_id, day, number, calls, texts) VALUES ",
    "(?, ?, ?, 0, ?)",
    " ON CONFLICT (account_id, day, number) DO UPDATE SET texts = texts + excluded.texts",
)


def _write_text(account_id: str, use: Use, texts: int, sticky: tuple[str, Sticky | None],
                now_ms: int) -> Rows:
    """The row changes that count ``texts`` against a number's texts of a day and set the
    contact's sticky number (None: cleared)."""
    contact, entry = sticky
    caller_id, expires = entry if entry is not None else (None, 0)
    return Rows(((_COUNT_TEXT, (account_id, *use, texts)),
                 (_SET_STICKY, (account_id, contact, caller_id, now_ms, expires))))


def _write_call(
    key: Key,
    record: CallRecord | None,
    *,
    seq: int,
    replaces: tuple[int | None, ...],
    sticky: tuple[str, Sticky | None] | None,
    now_ms: int,
    use: Use | None = None,
    uses: int = 1,
    answers: Answers | None = None,
) -> Rows:
    """The row changes that make the disk say ``record`` for the call (appended as row ``seq``;
    None: no record), delete the rows it ``replaces``, set the contact's sticky caller ID
    and its expiry (None: cleared), add ``uses`` to a number's calls of a day, and set a
    number's window of last ended calls."""
    account_id, call_id = key
    changes: list[tuple[Statement, tuple[Any, ...]]] = []
    if answers is not None:
        changes.append((_SET_ANSWERS, (account_id, *answers)))
    if use is not None:
        changes.append((_COUNT_USE, (account_id, *use, uses)))
    if record is not None:
        blob = _record_encoder.encode(record)
        changes.append((_INSERT_CALL, (seq, account_id, call_id, record.retain_until_ms, blob)))
    if sticky is not None:
        contact, entry = sticky
        caller_id, expires = entry if entry is not None else (None, 0)
        changes.append((_SET_STICKY, (account_id, contact, caller_id, now_ms, expires)))
    for old in replaces:
        if old is not None:
            changes.append((_DELETE_CALLS, (old,)))
    return Rows(tuple(changes))


def _claim_names(conn: sqlite3.Connection, config: AccountConfig) -> None:
    """Make ``config``'s claimed names (active numbers, SIP domain) its account's in
    ``number_owners`` (and only those), in the transaction that saves it; ``Conflict`` if
    another account has one of them."""
    names = claimed_names(config)
    for name in names:
        row = conn.execute(
            "SELECT account_id FROM number_owners WHERE number = ?", (name,)
        ).fetchone()
        if row is not None and row[0] != config.id:
            raise claim_refused(name)
    conn.execute("DELETE FROM number_owners WHERE account_id = ?", (config.id,))
    conn.executemany("INSERT INTO number_owners (number, account_id) VALUES (?, ?)",
                     [(n, config.id) for n in names])


_CLAIMS_VERSION = 1
"""The database's ``user_version`` once every account's numbers and SIP domain are claimed
(callgate before that had no version, 0)."""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database written by an earlier version up to ``SCHEMA``."""
    (claims_version,) = conn.execute("PRAGMA user_version").fetchone()
    if claims_version < _CLAIMS_VERSION:
        # From before numbers (or SIP domains) had owners: each goes to the first account (by
        # id) that has it; a later one that has it too is refused its next save until it lets
        # it go. A name already claimed keeps its owner (INSERT OR IGNORE). Once per database:
        # user_version says it was done.
        for (blob,) in conn.execute("SELECT config FROM accounts ORDER BY id").fetchall():
            config = _config_decoder.decode(blob)
            conn.executemany(
                "INSERT OR IGNORE INTO number_owners (number, account_id) VALUES (?, ?)",
                [(n, config.id) for n in claimed_names(config)])
        conn.execute(f"PRAGMA user_version = {_CLAIMS_VERSION}")
    token_columns = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
    for column in ("user_id TEXT", "expires_ms INTEGER", "last_used_ms INTEGER"):
        if column.split()[0] not in token_columns:
            conn.execute(f"ALTER TABLE tokens ADD COLUMN {column}")
    if "texts" not in {row[1] for row in conn.execute("PRAGMA table_info(number_usage)")}:
        conn.execute("ALTER TABLE number_usage ADD COLUMN texts INTEGER NOT NULL DEFAULT 0")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sticky)")}
    if "expires_ms" not in columns:
        conn.execute(
            "ALTER TABLE sticky ADD COLUMN expires_ms INTEGER NOT NULL "
            "DEFAULT 9223372036854775807"
        )
    _number_audit(conn)


_DNC_BATCH = 50_000
"""Numbers per transaction of a large list write: each holds the database's write lock for a
fraction of a second, so a running server's commits wait at most that long for an import."""


def _log_undo_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not undo an unacknowledged call change: %s", future.exception())


class EmbeddedStore:
    def __init__(
        self,
        data_dir: Path,
        *,
        exclusive: bool = False,
        clock_ms: Callable[[], int] = wall_clock_ms,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        """``exclusive``: this process serves calls and must own the directory alone.
        ``deadline_s``: how long a change may wait for its commit before the caller is told
        ``StoreUnavailable`` (and the change is undone)."""
        self.data_dir = data_dir
        self._exclusive = exclusive
        self._clock_ms = clock_ms
        self._deadline_s = deadline_s
        self._due: dict[asyncio.Future[None], float] = {}
        """Commit waits and when they are due (``time.monotonic``), for the watchdog."""
        self._watchdog: asyncio.Task[None] | None = None
        self._db = SqliteThread(data_dir / "callgate.db", SCHEMA)
        self._lock_file: IO[bytes] | None = None
        self._calls: dict[Key, CallRecord] = {}
        self._rows: dict[Key, int] = {}
        """The ``call_log`` row holding each call's current record."""
        self._last_row = 0
        self._pending: dict[Key, asyncio.Future[None]] = {}
        self._user_leases: dict[Key, dict[str, int]] = {}
        self._account_leases: dict[str, dict[str, int]] = {}
        self._user_expiry: dict[Key, int] = {}
        self._account_expiry: dict[str, int] = {}
        self._sticky: dict[Key, Sticky] = {}
        self._usage: dict[Key, dict[str, int]] = {}
        self._texts: dict[Key, dict[str, int]] = {}
        """Texts each number sent, by (account, day)."""
        """Calls each number placed, by (account, day)."""
        self._answers: dict[Key, str] = {}
        """Each number's window of last ended calls (``record_answer``), by (account, number)."""
        self._dnc: dict[str, DncIndex] = {}
        """Each account's do-not-call list, as non-empty (``engine.store.dnc``)."""
        self._dnc_generations: dict[str, int] = {}
        """The generation of each list the index holds (``dnc_lists.generation``)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await asyncio.to_thread(self._prepare_dir)
        await self._db.start()
        await self._db.run(_migrate)
        now = self._clock_ms()
        calls, sticky, last_row, usage = await self._db.read(
            lambda conn: (
                conn.execute(
                    "SELECT seq, account_id, call_id, record FROM call_log "
                    "WHERE retain_until_ms > ? ORDER BY seq",
                    (now,),
                ).fetchall(),
                conn.execute(
                    "SELECT account_id, contact, caller_id, expires_ms FROM sticky "
                    "WHERE caller_id IS NOT NULL AND expires_ms > ?",
                    (now,),
                ).fetchall(),
                conn.execute("SELECT COALESCE(MAX(seq), 0) FROM call_log").fetchone()[0],
                conn.execute("SELECT account_id, day, number, calls, texts FROM number_usage "
                             "WHERE day >= ?", (_first_day_kept(now),)).fetchall(),
            )
        )
        self._last_row = last_row
        for seq, account_id, call_id, blob in calls:
            self._calls[(account_id, call_id)] = _record_decoder.decode(blob)
            self._rows[(account_id, call_id)] = seq
        for (account_id, call_id), record in self._calls.items():
            if self._holds_channel(record, now):
                self._index(account_id, call_id, record)
        self._sticky = {(a, c): (n, e) for a, c, n, e in sticky}
        for account_id, day, number, used, texted in usage:
            if used > 0:
                self._usage.setdefault((account_id, day), {})[number] = used
            if texted > 0:
                self._texts.setdefault((account_id, day), {})[number] = texted
        answers = await self._db.read(lambda conn: conn.execute(
            "SELECT account_id, number, outcomes FROM number_answers WHERE outcomes != ''"
        ).fetchall())
        self._answers = {(a, n): outcomes for a, n, outcomes in answers}
        await self._reload_dnc(None)
        self._watchdog = asyncio.create_task(self._enforce_deadlines(), name="embedded-deadlines")

    async def _enforce_deadlines(self) -> None:
        """Fail every commit wait that is past its deadline. One task for all of them: a
        timer per dial (``asyncio.timeout``) cost about a tenth of the server's throughput."""
        late = f"the store did not commit within {self._deadline_s * 1000:.0f} ms"
        while True:
            await asyncio.sleep(self._deadline_s / 4)
            now = time.monotonic()
            for future, due in list(self._due.items()):
                if due <= now:
                    del self._due[future]
                    if not future.done():
                        future.set_exception(StoreUnavailable(late))

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._exclusive:
            return
        lock = open(self.data_dir / "lock", "wb")  # noqa: SIM115 - held until close() unlocks
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StoreUnavailable(
                f"another callgate server is using the data directory {self.data_dir}"
            ) from None
        lock.write(f"{os.getpid()}\n".encode())
        lock.flush()
        self._lock_file = lock

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        await self._db.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- configuration -----------------------------------------------------------------------

    async def account_versions(self) -> dict[str, int]:
        rows, lists = await self._db.read(
            lambda conn: (conn.execute("SELECT id, version FROM accounts").fetchall(),
                          conn.execute("SELECT account_id, generation FROM dnc_lists").fetchall())
        )
        # Polled by the server: the place to notice a list a command beside it changed.
        for account_id, generation in lists:
            if self._dnc_generations.get(account_id, 0) != generation:
                await self._reload_dnc(account_id)
        return dict(rows)

    # -- do-not-call lists -------------------------------------------------------------------

    async def _reload_dnc(self, account_id: str | None) -> None:
        """Build the index of one account's list (None: every account's) from the database,
        in its thread, reading the rows in key order straight into the index's arrays."""

        def load(conn: sqlite3.Connection) -> tuple[dict[str, DncIndex], dict[str, int]]:
            where, args = ("WHERE account_id = ?", (account_id,)) if account_id else ("", ())
            lists = conn.execute(
                f"SELECT id, account_id, generation FROM dnc_lists {where}", args).fetchall()
            indexes, generations = {}, {}
            for list_id, account, generation in lists:
                index = DncIndex()
                for (number,) in conn.execute(
                        "SELECT number FROM dnc WHERE list = ? ORDER BY number", (list_id,)):
                    index.append_sorted(number)
                indexes[account] = index
                generations[account] = generation
            return indexes, generations

        indexes, generations = await self._db.read(load)
        self._dnc_generations.update(generations)
        for account, index in indexes.items():
            if index.count:
                self._dnc[account] = index
            else:
                self._dnc.pop(account, None)

    async def _dnc_write(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry], adding: bool
    ) -> int:
        keys = sorted({number_key(n) for n in numbers})
        changed = generation = 0
        batches = [keys[i:i + _DNC_BATCH] for i in range(0, len(keys), _DNC_BATCH)] or [[]]
        for n, batch in enumerate(batches, 1):
            done, generation = await self._db.run(
                self._dnc_job(account_id, batch, audit if n == len(batches) else (), adding))
            changed += done
        return await self._dnc_apply(account_id, keys, generation, changed, adding)

    @staticmethod
    def _dnc_job(
        account_id: str, keys: list[int], audit: Sequence[AuditEntry], adding: bool
    ) -> Callable[[sqlite3.Connection], tuple[int, int]]:
        def job(conn: sqlite3.Connection) -> tuple[int, int]:
            conn.execute("INSERT OR IGNORE INTO dnc_lists (account_id) VALUES (?)", (account_id,))
            (list_id,) = conn.execute(
                "SELECT id FROM dnc_lists WHERE account_id = ?", (account_id,)).fetchone()
            before = conn.total_changes
            sql = ("INSERT OR IGNORE INTO dnc (list, number) VALUES (?, ?)" if adding
                   else "DELETE FROM dnc WHERE list = ? AND number = ?")
            conn.executemany(sql, ((list_id, k) for k in keys))
            changed = conn.total_changes - before
            conn.execute("UPDATE dnc_lists SET generation = generation + 1 WHERE id = ?",
                         (list_id,))
            (generation,) = conn.execute(
                "SELECT generation FROM dnc_lists WHERE id = ?", (list_id,)).fetchone()
            _append_audit(conn, account_id, audit)
            return changed, generation

        return job

    async def _dnc_apply(
        self, account_id: str, keys: list[int], generation: int, changed: int, adding: bool
    ) -> int:
        """Bring the index up to the write that made the list ``generation``."""
        known = self._dnc_generations.get(account_id, 0)
        if known >= generation:
            return changed  # a reload since has read it already
        if known != generation - max(1, -(-len(keys) // _DNC_BATCH)):
            # another write came between: read the list whole
            await self._reload_dnc(account_id)
            return changed
        self._dnc_generations[account_id] = generation
        index = self._dnc.get(account_id) or DncIndex()
        if adding:
            index.add(keys)
        else:
            index.remove(keys)
        if index.count:
            self._dnc[account_id] = index
        else:
            self._dnc.pop(account_id, None)
        return changed

    async def dnc_add(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        return await self._dnc_write(account_id, numbers, audit, adding=True)

    async def dnc_remove(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        return await self._dnc_write(account_id, numbers, audit, adding=False)

    async def dnc_contains(self, account_id: str, number: str) -> bool:
        return self._dnc_listed(account_id, number)

    async def dnc_count(self, account_id: str) -> int:
        index = self._dnc.get(account_id)
        return index.count if index is not None else 0

    def dnc_active(self, account_id: str) -> bool:
        return account_id in self._dnc

    def _dnc_listed(self, account_id: str, number: str) -> bool:
        index = self._dnc.get(account_id)
        return index is not None and number_key(number) in index

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                "SELECT config, version FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
        )
        if row is None:
            return None
        return _config_decoder.decode(row[0]), row[1]

    async def save_account(
        self, config: AccountConfig, expected_version: int, audit: Sequence[AuditEntry] = ()
    ) -> int:
        blob = _config_encoder.encode(config)

        def job(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT version FROM accounts WHERE id = ?", (config.id,)).fetchone()
            current = row[0] if row else 0
            if current != expected_version:
                if expected_version == 0:
                    raise Conflict(f"account {config.id!r} already exists", field="id")
                raise PreconditionFailed(
                    f"account {config.id!r} is at version {current}, not {expected_version}: "
                    "it changed since it was read"
                )
            conn.execute(
                "INSERT INTO accounts (id, version, config) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "config = excluded.config",
                (config.id, current + 1, blob),
            )
            _claim_names(conn, config)
            _append_audit(conn, config.id, audit)
            return current + 1

        return await self._db.run(job)

    async def watch(
        self, on_change: OnChange, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        """Nothing to watch: one server owns the directory, and the configuration commands
        beside it are noticed by polling."""

    # -- tokens ------------------------------------------------------------------------------

    async def changes(self, since: int = -1) -> Changes:
        """No feed here: every poll compares the versions (one local query)."""
        return Changes(complete=False)

    @property
    def feeds_revocations(self) -> bool:
        return False

    async def add_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.hash, record.account_id, record.name, record.created_ms, record.user_id,
                 record.expires_ms, None),
            )
            _append_audit(conn, record.account_id, [audit] if audit else [])

        await self._db.run(job)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?", (token_hash,)
            ).fetchone()
        )
        return None if row is None else _token(row)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE account_id = ? "
                "ORDER BY created_ms, name",
                (account_id,),
            ).fetchall()
        )
        return [_token(row) for row in rows]

    async def touch_token(self, account_id: str, token_hash: str, at_ms: int) -> None:
        await self._db.run(
            lambda conn: conn.execute(
                "UPDATE tokens SET last_used_ms = ? WHERE account_id = ? AND hash = ? "
                "AND (last_used_ms IS NULL OR last_used_ms < ?)",
                (at_ms, account_id, token_hash, at_ms),
            )
        )

    async def revoke_token(self, account_id: str, name: str) -> int:
        return await self._db.run(
            lambda conn: conn.execute(
                "DELETE FROM tokens WHERE account_id = ? AND name = ?", (account_id, name)
            ).rowcount
        )

    async def remove_token(
        self, account_id: str, token_hash: str, audit: AuditEntry | None = None
    ) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            removed = conn.execute(
                "DELETE FROM tokens WHERE account_id = ? AND hash = ?", (account_id, token_hash)
            ).rowcount
            if removed:
                _append_audit(conn, account_id, [audit] if audit else [])
            return bool(removed)

        return await self._db.run(job)

    # -- audit log ---------------------------------------------------------------------------

    async def audit_log(
        self, account_id: str, query: AuditQuery
    ) -> tuple[list[AuditEntry], str | None]:
        where: list[str] = ["account_id = ?"]
        args: list[Any] = [account_id]
        before = _cursor(query.before)
        for clause, value in (
            ("account_seq < ?", before),
            ("actor = ?", query.actor),
            ("target = ?", query.target),
            ("at_ms >= ?", query.since_ms),
            ("at_ms < ?", query.until_ms),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (
            f"SELECT account_seq, entry FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY account_seq DESC LIMIT ?"
        )
        rows = await self._db.read(
            lambda conn: conn.execute(sql, (*args, query.limit + 1)).fetchall()
        )
        entries = [
            msgspec.structs.replace(_audit_decoder.decode(blob), id=str(seq))
            for seq, blob in rows[: query.limit]
        ]
        more = len(rows) > query.limit
        return entries, (entries[-1].id if more and entries else None)

    async def live_calls(self, account_id: str) -> list[LiveCall]:
        now = self._clock_ms()
        live = []
        for call_id, until in self._account_leases.get(account_id, {}).items():
            record = self._calls.get((account_id, call_id))
            if until > now and record is not None:
                live.append(
                    LiveCall(
                        call_id=call_id,
                        user_id=record.user_id,
                        to=record.decision.to,
                        caller_id=record.decision.caller_id,
                        lease_expires_ms=until,
                        inbound=record.decision.rule is Rule.INBOUND,
                    )
                )
        return sorted(live, key=lambda c: (c.lease_expires_ms, c.call_id))

    # -- calls -------------------------------------------------------------------------------

    async def admit(self, ticket: Ticket, plan: Plan) -> Decision:
        key = (ticket.account_id, ticket.call_id)
        if key in self._pending:
            await self._settled(key)
        now = self._clock_ms()
        stale = self._calls.get(key)
        if stale is not None and stale.retain_until_ms > now:
            return self._replay(stale, ticket)
        # stale: None, or a record past its retention, replaced below

        sticky = self._sticky_at(ticket.account_id, ticket.contact, now) if ticket.contact else None
        expires = now + ticket.ttl_ms
        if ticket.dnc is not None and self._dnc_listed(ticket.account_id, ticket.dnc):
            decision = dnc_denial(ticket.call_id, ticket.dnc)
        else:
            decision = plan.choose(sticky, rfc3339(expires),
                                   self._usage.get((ticket.account_id, ticket.day)))
        if decision.allowed and ticket.counted:
            refusal = self._refuse_channel(ticket, now)
            if refusal is not None:
                decision = channel_denial(ticket.call_id, refusal)
        if not decision.allowed:
            if ticket.remember:
                record = CallRecord(
                    user_id=ticket.user_id,
                    fingerprint=ticket.fingerprint,
                    decision=decision,
                    retain_until_ms=now + RETENTION_MS,
                )
                await self._commit_call(key, record, previous=stale, now=now)
            return decision

        if not ticket.counted:  # an emergency call holds no channel: no lease to show
            decision = msgspec.structs.replace(decision, lease_expires_at=None)
        record = CallRecord(
            user_id=ticket.user_id,
            fingerprint=ticket.fingerprint,
            decision=decision,
            counted=ticket.counted,
            lease_expires_ms=expires,
            retain_until_ms=expires + RETENTION_MS,
            sticky_ttl_ms=ticket.sticky_ttl_ms,
        )
        use = (ticket.day, decision.caller_id) if ticket.counted and decision.caller_id else None
        await self._commit_call(key, record, previous=stale, now=now, use=use)
        return decision

    async def usage(self, account_id: str, day: str) -> dict[str, int]:
        return dict(self._usage.get((account_id, day), {}))

    async def texts(self, account_id: str, day: str) -> dict[str, int]:
        return dict(self._texts.get((account_id, day), {}))

    async def send_text(self, ticket: TextTicket, plan: Plan) -> Decision:
        now = self._clock_ms()
        account_id = ticket.account_id
        if ticket.dnc is not None and self._dnc_listed(account_id, ticket.dnc):
            return dnc_denial("", ticket.dnc)
        decision = plan.choose(self._sticky_at(account_id, ticket.contact, now), "",
                               self._texts.get((account_id, ticket.day)))
        sender = decision.caller_id
        if not decision.allowed or sender is None:
            return decision
        use = (ticket.day, sender)
        sticky = (ticket.contact, (sender, now + ticket.sticky_ttl_ms))
        old_sticky = self._sticky.get((account_id, ticket.contact))
        self._count_use(account_id, use, 1, self._texts)
        self._set_sticky(account_id, *sticky)
        written: asyncio.Future[None] | None = None
        try:
            written = self._db.submit_rows(_write_text(account_id, use, 1, sticky, now))
            self._due[written] = time.monotonic() + self._deadline_s
            await written
        except BaseException:
            self._count_use(account_id, use, -1, self._texts)
            if self._sticky.get((account_id, ticket.contact)) == sticky[1]:
                self._set_sticky(account_id, ticket.contact, old_sticky)
            if written is not None and self._db.healthy:
                undo = self._db.submit_rows(_write_text(
                    account_id, use, -1, (ticket.contact, old_sticky), self._clock_ms()))
                undo.add_done_callback(_log_undo_failure)
            raise
        finally:
            if written is not None:
                self._due.pop(written, None)
        return decision

    def _count_use(
        self, account_id: str, use: Use, uses: int, kept: dict[Key, dict[str, int]] | None = None
    ) -> None:
        day, number = use
        counts = (self._usage if kept is None else kept).setdefault((account_id, day), {})
        calls = counts.get(number, 0) + uses
        if calls > 0:
            counts[number] = calls
        else:  # an undone call was the day's only one: as if it never was
            counts.pop(number, None)

    def _sticky_at(self, account_id: str, contact: str, now: int) -> str | None:
        entry = self._sticky.get((account_id, contact))
        return entry[0] if entry is not None and entry[1] > now else None

    def _refuse_channel(self, ticket: Ticket, now: int) -> str | None:
        """Why no channel is free for this dial, or None. Purges expired leases it meets."""
        account_id, user_id = ticket.account_id, ticket.user_id
        held = len(self._user_leases.get((account_id, user_id), ()))
        in_account = len(self._account_leases.get(account_id, ()))
        limit = ticket.account_limit
        if held < ticket.user_limit and (limit is None or in_account < limit):
            return None  # the common case: free without counting expiries
        if held >= ticket.user_limit and now >= self._user_expiry.get((account_id, user_id), 0):
            held = self._purge_user(account_id, user_id, now)
            in_account = len(self._account_leases.get(account_id, ()))
        if (limit is not None and in_account >= limit
                and now >= self._account_expiry.get(account_id, 0)):
            in_account = self._purge_account(account_id, now)
            held = len(self._user_leases.get((account_id, user_id), ()))
        return channel_refusal(ticket, held, in_account)

    def _purge_user(self, account_id: str, user_id: str, now: int) -> int:
        """Drop the user's expired leases from both indexes; the number left."""
        held = self._user_leases.get((account_id, user_id), {})
        account = self._account_leases.get(account_id, {})
        for call_id in [c for c, until in held.items() if until <= now]:
            del held[call_id]
            account.pop(call_id, None)
        self._user_expiry[(account_id, user_id)] = min(held.values(), default=_NEVER)
        return len(held)

    def _purge_account(self, account_id: str, now: int) -> int:
        """Drop the account's expired leases from both indexes; the number left."""
        account = self._account_leases.get(account_id, {})
        for call_id in [c for c, until in account.items() if until <= now]:
            del account[call_id]
            record = self._calls.get((account_id, call_id))
            if record is not None:
                self._user_leases.get((account_id, record.user_id), {}).pop(call_id, None)
        self._account_expiry[account_id] = min(account.values(), default=_NEVER)
        return len(account)

    def _holds_channel(self, record: CallRecord, now: int) -> bool:
        return record.counted and record.outcome is None and record.lease_expires_ms > now

    def _index(self, account_id: str, call_id: str, record: CallRecord) -> None:
        until = record.lease_expires_ms
        user_key = (account_id, record.user_id)
        self._user_leases.setdefault(user_key, {})[call_id] = until
        self._account_leases.setdefault(account_id, {})[call_id] = until
        # Lower bounds of the next expiry: no purge scan is worth doing before them.
        self._user_expiry[user_key] = min(self._user_expiry.get(user_key, _NEVER), until)
        self._account_expiry[account_id] = min(self._account_expiry.get(account_id, _NEVER), until)

    def _unindex(self, account_id: str, call_id: str, record: CallRecord) -> None:
        self._user_leases.get((account_id, record.user_id), {}).pop(call_id, None)
        self._account_leases.get(account_id, {}).pop(call_id, None)

    def _next_row(self) -> int:
        self._last_row += 1
        return self._last_row

    async def _settled(self, key: Key) -> None:
        """Wait until the change being written for ``key``, if any, is committed or undone."""
        pending = self._pending.get(key)
        if pending is not None:
            # Wait for it to settle without taking on its outcome: it may fail or be cancelled
            # (and then undone), after which the caller decides afresh.
            await asyncio.wait((pending,))

    def _install(
        self, key: Key, record: CallRecord | None, replacing: CallRecord | None, now: int
    ) -> None:
        """Make ``record`` (None: nothing) the memory state of ``key`` in place of ``replacing``."""
        account_id, call_id = key
        if replacing is not None:
            self._unindex(account_id, call_id, replacing)
        if record is None:
            self._calls.pop(key, None)
            return
        self._calls[key] = record
        if self._holds_channel(record, now):
            self._index(account_id, call_id, record)

    def _set_sticky(self, account_id: str, contact: str, entry: Sticky | None) -> None:
        if entry is None:
            self._sticky.pop((account_id, contact), None)
        else:
            self._sticky[(account_id, contact)] = entry

    async def _commit_call(
        self,
        key: Key,
        record: CallRecord,
        *,
        previous: CallRecord | None,
        now: int,
        sticky: tuple[str, Sticky] | None = None,
        use: Use | None = None,
        answers: Answers | None = None,
    ) -> None:
        """Install ``record`` (and a sticky entry, a number's call counted, a number's
        window of last ended calls) in memory now, write them, and return once they are
        committed.

        If the caller never sees the outcome (the write failed, or the caller stopped waiting:
        a deadline or a cancelled request), the change is undone: in memory at once, and on
        disk by a second write queued behind the first, so it lands after it if it lands."""
        account_id = key[0]
        old_sticky = self._sticky.get((account_id, sticky[0])) if sticky else None
        old_row = self._rows.get(key)
        row = self._next_row()
        self._install(key, record, previous, now)
        self._rows[key] = row
        if sticky is not None:
            self._set_sticky(account_id, *sticky)
        if use is not None:
            self._count_use(account_id, use, 1)
        old_answers = None
        if answers is not None:
            old_answers = (answers[0], self._answers.get((account_id, answers[0]), ""))
            self._set_answers(account_id, *answers)
        written: asyncio.Future[None] | None = None
        try:
            written = self._db.submit_rows(
                _write_call(
                    key, record, seq=row, replaces=(old_row,), sticky=sticky, now_ms=now,
                    use=use, answers=answers,
                )
            )
            self._pending[key] = written
            self._due[written] = time.monotonic() + self._deadline_s
            await written  # cancelling us cancels only our wait: the thread writes regardless
        except BaseException:
            if self._calls.get(key) is not record:
                raise  # a later change to this call id has replaced ours already
            self._install(key, previous, record, self._clock_ms())
            restore = (sticky[0], old_sticky) if sticky is not None else None
            if sticky is not None:
                self._set_sticky(account_id, sticky[0], old_sticky)
            if use is not None:
                self._count_use(account_id, use, -1)
            if old_answers is not None:
                self._set_answers(account_id, *old_answers)
            undo_row = self._next_row()
            if previous is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = undo_row
            if written is not None and self._db.healthy:
                undo = self._db.submit_rows(
                    _write_call(
                        key,
                        previous,
                        seq=undo_row,
                        replaces=(row, old_row),
                        sticky=restore,
                        now_ms=self._clock_ms(),
                        use=use,
                        uses=-1,
                        answers=old_answers,
                    )
                )
                undo.add_done_callback(_log_undo_failure)
            raise
        finally:
            if written is not None:
                self._due.pop(written, None)
                if self._pending.get(key) is written:
                    del self._pending[key]

    def _set_answers(self, account_id: str, number: str, outcomes: str) -> None:
        if outcomes:
            self._answers[(account_id, number)] = outcomes
        else:
            self._answers.pop((account_id, number), None)

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None,
        window: AnswerWindow | None = None,
    ) -> Ended:
        key = (account_id, call_id)
        await self._settled(key)
        now = self._clock_ms()
        record = self._kept(key, now, user_id)
        check_end(call_id, _status(record, now), outcome)
        assert record is not None  # a missing call is refused
        pair = sticky_pair(record.decision) if outcome.connected else None
        recorded = pair is not None
        if record.outcome is not None:
            # ended with this outcome already: the same answer again, and nothing counted
            return Ended(call_id=call_id, outcome=outcome, sticky_recorded=recorded)
        # Only a call that counts against its caller ID (not an emergency call) counts.
        number = record.decision.caller_id if record.counted else None
        answers, due = None, False
        if window is not None and number is not None:
            seen, due = record_answer(
                self._answers.get((account_id, number), ""), outcome.connected, window)
            answers = (number, seen)
        ended = msgspec.structs.replace(
            record, outcome=outcome, retain_until_ms=now + RETENTION_MS
        )
        sticky = None
        if pair is not None:
            contact, caller_id = pair
            sticky = (contact, (caller_id, now + record.sticky_ttl_ms))
        await self._commit_call(key, ended, previous=record, now=now, sticky=sticky,
                                answers=answers)
        return Ended(call_id=call_id, outcome=outcome, sticky_recorded=recorded, number=number,
                     rest_due=due)

    async def heartbeat(
        self, account_id: str, call_id: str, ttl_ms: int, user_id: str | None = None
    ) -> int:
        key = (account_id, call_id)
        await self._settled(key)
        now = self._clock_ms()
        record = self._kept(key, now, user_id)
        check_heartbeat(call_id, _status(record, now))
        assert record is not None  # only a live call gets here
        expires = now + ttl_ms
        extended = msgspec.structs.replace(
            record,
            decision=msgspec.structs.replace(record.decision, lease_expires_at=rfc3339(expires)),
            lease_expires_ms=expires,
            retain_until_ms=expires + RETENTION_MS,
        )
        await self._commit_call(key, extended, previous=record, now=now)
        return expires

    def _kept(self, key: Key, now: int, user_id: str | None = None) -> CallRecord | None:
        """The record of the call still kept (and, given ``user_id``, that user's), or None."""
        record = self._calls.get(key)
        if (
            record is None
            or record.retain_until_ms <= now
            or (user_id is not None and record.user_id != user_id)
        ):
            return None
        return record

    async def peek(self, ticket: Ticket) -> Peek:
        key = (ticket.account_id, ticket.call_id)
        known = None
        if ticket.remember:
            await self._settled(key)
            known = self._known(key, ticket, self._clock_ms())
        now = self._clock_ms()
        user = self._user_leases.get((ticket.account_id, ticket.user_id), {})
        account = self._account_leases.get(ticket.account_id, {})
        contact = ticket.contact
        return Peek(
            known=known,
            sticky=self._sticky_at(ticket.account_id, contact, now) if contact else None,
            user_leases=sum(1 for until in user.values() if until > now),
            account_leases=sum(1 for until in account.values() if until > now),
        )

    def _known(self, key: Key, ticket: Ticket, now: int) -> Decision | None:
        """The answer already given for this call id, if any (a retry gets it again)."""
        known = self._calls.get(key)
        if known is None or known.retain_until_ms <= now:
            return None
        return self._replay(known, ticket)

    @staticmethod
    def _replay(known: CallRecord, ticket: Ticket) -> Decision:
        """The answer ``known`` gave, for a retry of the same request."""
        if known.fingerprint != ticket.fingerprint:
            raise Conflict(
                f"call id {ticket.call_id!r} was already used for a different request",
                field="call_id",
            )
        return known.decision

    @property
    def healthy(self) -> bool:
        return self._db.healthy

    def lease_counts(self) -> dict[str, int]:
        now = self._clock_ms()
        return {
            account_id: sum(1 for until in leases.values() if until > now)
            for account_id, leases in self._account_leases.items()
        }

    async def sweep(self) -> int:
        """Forget call records past their retention, in memory and on disk; the number dropped."""
        now = self._clock_ms()
        stale = [key for key, record in self._calls.items() if record.retain_until_ms <= now]
        for key in stale:
            record = self._calls.pop(key)
            self._rows.pop(key, None)
            self._unindex(key[0], key[1], record)
        for leases in (*self._user_leases.values(), *self._account_leases.values()):
            for call_id in [c for c, until in leases.items() if until <= now]:
                del leases[call_id]
        first_day = _first_day_kept(now)
        for counted in (self._usage, self._texts):
            for old in [key for key in counted if key[1] < first_day]:
                del counted[old]

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM call_log WHERE retain_until_ms <= ?", (now,))
            conn.execute("DELETE FROM number_usage WHERE day < ?", (first_day,))

        await self._db.run(forget)
        return len(stale)
