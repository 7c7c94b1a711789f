"""One thread that owns one SQLite connection, so the event loop never waits on the disk.

Every write the thread finds waiting joins one transaction: one commit for many dials (group
commit). Two kinds of write:

* a job, ``job(connection)``, run in submission order inside its own savepoint, so one job's
  error (say, a stale version) rolls back that job alone;
* ``Rows``: plain row changes that cannot fail on their own. The thread merges the rows of a
  whole batch into one multi-row statement per kind (``INSERT ... VALUES (..), (..), ...``),
  which is what makes a dial's write cheap: the sqlite3 module lets go of the GIL around every
  statement step, and with ``executemany`` that is once per row, each time a handoff with the
  event loop's thread (measured: a third of the loop's throughput). Kinds run phase by phase,
  and rows in submission order within a kind; callers choose phases so that this is safe.

Read jobs take no write lock unless a write transaction is already open (so a reader never
waits on another process's writer). Futures are settled on the loop after the commit, all of a
batch's in one wake-up, so an answer that depends on a write is sent only once the write is in
the WAL. If the thread dies, every waiting and later job fails with ``StoreUnavailable`` rather
than waiting forever.

Durability: WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed
(``kill -9``); the last commits before a power loss may not. Checkpoints run in this thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import StoreUnavailable

__all__ = ["Rows", "SqliteThread", "Statement"]

log = logging.getLogger("callgate.store")

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]


class Statement(NamedTuple):
    """A statement that takes any number of rows: ``head + group, group, ... + tail``."""

    phase: int
    head: str
    group: str
    tail: str = ""


class Rows(NamedTuple):
    """Row changes, merged with the rest of the batch's: ``(statement, parameters)``."""

    changes: tuple[tuple[Statement, tuple[Any, ...]], ...]


_ROWS_PER_STATEMENT = 400  # well under SQLite's limit of 32766 bound parameters


Queued = tuple["Job | Rows", "asyncio.Future[Any]", bool]

_BUSY_TIMEOUT_MS = 5000


class SqliteThread:
    def __init__(self, path: Path, schema: str) -> None:
        self._path = path
        self._schema = schema
        self._jobs: queue.SimpleQueue[list[Queued] | None] = queue.SimpleQueue()
        self._outbox: list[Queued] = []
        """What this loop iteration submitted: handed to the thread in one put when the
        iteration ends, so the thread is woken once per iteration, not once per dial."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: str | None = None

    @property
    def healthy(self) -> bool:
        return self._thread is not None and self._failure is None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"sqlite:{self._path.name}", daemon=True
        )
        self._thread.start()
        await ready

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._hand_over()
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def submit(
        self, job: Callable[[sqlite3.Connection], T], *, write: bool = True
    ) -> asyncio.Future[T]:
        """Queue ``job(connection)`` for the thread; the future settles once it is committed."""
        future: asyncio.Future[T] = self._new_future()
        self._post((job, future, write))
        return future

    def submit_rows(self, rows: Rows) -> asyncio.Future[None]:
        """Queue row changes; the future settles once they are committed."""
        future: asyncio.Future[None] = self._new_future()
        self._post((rows, future, True))
        return future

    def _new_future(self) -> asyncio.Future[Any]:
        if self._failure is not None:
            raise StoreUnavailable(self._failure)
        if self._thread is None or self._loop is None:
            raise StoreUnavailable("the embedded store is not open")
        return self._loop.create_future()

    def _post(self, item: Queued) -> None:
        assert self._loop is not None
        if not self._outbox:
            self._loop.call_soon(self._hand_over)
        self._outbox.append(item)

    def _hand_over(self) -> None:
        items, self._outbox = self._outbox, []
        if not items:
            return
        if self._failure is not None:  # nobody is left to run them
            for _, future, _ in items:
                _settle(future, None, StoreUnavailable(self._failure))
            return
        self._jobs.put(items)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run a writing ``job(connection)`` in the thread; its result once committed."""
        return await self.submit(job)

    async def read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``job(connection)`` in the thread; its result."""
        return await self.submit(job, write=False)

    # -- the thread --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(self._schema)
        return conn

    def _run(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            self._failure = f"cannot open {self._path}: {exc}"
            self._loop.call_soon_threadsafe(_settle, ready, None, StoreUnavailable(self._failure))
            return
        self._loop.call_soon_threadsafe(_settle, ready, None, None)
        batch: list[Queued] = []
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                batch = list(first)
                stop = False
                while True:
                    try:
                        items = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if items is None:
                        stop = True
                        break
                    batch.extend(items)
                self._run_batch(conn, batch)
                batch = []
                if stop:
                    return
        except BaseException as exc:  # the thread ends here; say why, fail what waits
            self._failure = f"the embedded store's database thread failed: {exc!r}"
            log.critical("%s", self._failure, exc_info=True)
        finally:
            self._failure = self._failure or "the embedded store is closed"
            error = StoreUnavailable(self._failure)
            for _, future, _ in batch:
                self._loop.call_soon_threadsafe(_settle, future, None, error)
            while True:
                try:
                    items = self._jobs.get_nowait()
                except queue.Empty:
                    break
                for item in items or ():
                    self._loop.call_soon_threadsafe(_settle, item[1], None, error)
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Queued]) -> None:
        assert self._loop is not None
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        merged: dict[Statement, list[tuple[Any, ...]]] = {}
        try:
            for job, future, write in batch:
                if write and not conn.in_transaction:
                    conn.execute("BEGIN IMMEDIATE")
                if isinstance(job, Rows):
                    for statement, parameters in job.changes:
                        merged.setdefault(statement, []).append(parameters)
                    outcomes.append((future, None, None))
                    continue
                if not conn.in_transaction:
                    try:
                        outcomes.append((future, job(conn), None))
                    except Exception as exc:
                        outcomes.append((future, None, _translate(exc)))
                    continue
                conn.execute("SAVEPOINT job")
                try:
                    result = job(conn)
                except Exception as exc:  # the job's own failure: undo it, tell its caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((future, None, _translate(exc)))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((future, result, None))
            for statement in sorted(merged, key=lambda key: key.phase):
                _execute_rows(conn, statement, merged[statement])
            if conn.in_transaction:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failed = StoreUnavailable(f"embedded store: {exc}")
            outcomes = [(future, None, failed) for _, future, _ in batch]
        self._loop.call_soon_threadsafe(_settle_all, outcomes)  # one wake-up per batch


def _execute_rows(
    conn: sqlite3.Connection, statement: Statement, rows: list[tuple[Any, ...]]
) -> None:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = statement.head + ", ".join([statement.group] * len(chunk)) + statement.tail
        conn.execute(sql, [value for row in chunk for value in row])


def _translate(exc: Exception) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        error = StoreUnavailable(f"embedded store: {exc}")
        error.__cause__ = exc
        return error
    return exc


def _settle_all(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Give each future its result or error, unless its waiter has given up (cancelled)."""
    for future, result, error in outcomes:  # no call per future: this runs once per dial
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    _settle_all([(future, result, error)])
