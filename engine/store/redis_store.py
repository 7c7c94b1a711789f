"""The Redis store: many callgate processes, one shared Redis (or Redis Cluster).

Theory of operation
-------------------
Every piece of call state lives in Redis, under keys that start with ``cg:{<account id>}:``
(``lua.py`` lists them), so every callgate process sees the same leases, call records and
sticky caller IDs, and any of them can answer any request.

1. One dial is one script call (``lua.ADMIT``): it replays the stored answer of a retried call
   id, or reads the contact's sticky caller ID, picks the engine's answer (``Plan``), purges
   expired leases, takes the channel or refuses at the limit, and writes the call record, all
   atomically on the Redis server. Dials that can only be denied and need no record (a client
   that chose no call id) make no round trip at all.
2. Lease expiry is the Redis server's clock, so processes on machines whose clocks disagree
   still agree on when a lease is over.
3. Every call that waits on Redis is bounded (``deadline_s``, default 100 ms) and then fails
   with ``StoreUnavailable``, which the engine answers as ``store_unavailable`` (HTTP 503).
   An admission that may have reached Redis without its answer reaching the caller is undone
   in the background (by the attempt's nonce; a retry of the call id claims the record first,
   so an undo never takes away an answer a retry received).
4. Configuration is stored per account with a version and written by ``lua.SAVE_CONFIG`` only
   over the version the writer read; the script publishes the new version on the
   ``callgate:config`` channel. ``watch`` turns those messages into reloads; the server's
   periodic version check catches what a dropped subscription missed. The hot path never
   reads configuration from Redis: the engine holds compiled snapshots in memory.
5. Records expire by themselves (Redis key expiry), so ``sweep`` has nothing to do. Lease
   sets and sticky entries expire too: a lease set outlives its longest lease, a sticky entry
   lasts the account's ``sticky_ttl_days`` from its last connected call.

Connection URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``, as redis-py reads them, plus
callgate's own query options: ``cluster=yes`` (the host is any node of a Redis Cluster),
``sentinel=<master name>`` (the hosts, comma-separated, are Sentinels), ``pool=<n>`` (the most
connections per process that run scripts, default 64; configuration and token calls use up to
8 more, and the configuration channel one) and ``timeout_ms=<n>`` (the deadline, default 100).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import hiredis
import msgspec
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS, AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from callerid import AccountConfig, Outcome

from ..errors import (
    Conflict,
    ConfigurationError,
    InvalidField,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)
from ..wire import Decision, EndResult, rfc3339
from . import lua
from .protocol import (
    AUDIT_PAGE_MAX,
    AuditEntry,
    AuditQuery,
    LiveCall,
    OnChange,
    Peek,
    Plan,
    Ticket,
    TokenRecord,
    channel_denial,
    refusal_detail,
)

__all__ = ["CHANNEL", "RedisSettings", "RedisStore", "parse_redis_url"]

log = logging.getLogger("callgate.store.redis")

CHANNEL = "callgate:config"
"""Where a saved configuration is announced: ``<account id> <version>``; and a revoked
token: ``-token <hash>`` (no account id starts with ``-``)."""
_REVOKED = "-token"
ACCOUNTS = "cg:accounts"
RETENTION_MS = 15 * 60 * 1000
"""How long a call's record outlives its lease (or its denial), as in the embedded store."""
DEADLINE_S = 0.1
ADMIN_DEADLINE_S = 1.0
"""Configuration and token calls are off the hot path: they may wait longer."""
POOL_SIZE = 64
ADMIN_POOL_SIZE = 8
"""Connections for everything but scripts (configuration, tokens), outside a cluster."""
MONITOR_S = 0.5
_UNDOS_OUTSTANDING = 1024

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rex.ConnectionError,  # refused, reset, "Too many connections"
    rex.TimeoutError,
    rex.BusyLoadingError,  # Redis restarting, loading its AOF
    rex.ReadOnlyError,  # a primary demoted by a failover
    rex.MasterDownError,
    rex.ClusterDownError,
    rex.ClusterError,
    rex.TryAgainError,
    rex.SlotNotCoveredError,
    rex.OutOfMemoryError,
    rex.AuthenticationError,
    OSError,
)
_UNAVAILABLE_OR_LATE: tuple[type[BaseException], ...] = (TimeoutError, *_UNAVAILABLE)
_WATCH_LOST: tuple[type[BaseException], ...] = (StoreUnavailable, *_UNAVAILABLE)

_answer_encoder = msgspec.msgpack.Encoder()
_answer_decoder = msgspec.msgpack.Decoder(Decision)
_config_encoder = msgspec.json.Encoder()
_config_decoder = msgspec.json.Decoder(AccountConfig)
_token_encoder = msgspec.msgpack.Encoder()
_token_decoder = msgspec.msgpack.Decoder(TokenRecord)
_audit_encoder = msgspec.json.Encoder()
_audit_decoder = msgspec.json.Decoder(AuditEntry)
_AUDIT_SCAN = 2000
"""Entries one page of the audit log reads at most (filters apply as it reads)."""
LIVE_MAX = 10_000


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    """The URL redis-py connects to, without callgate's options."""
    cluster: bool = False
    sentinel: str | None = None
    """The master's name, when the URL's hosts are Sentinels."""
    pool: int = POOL_SIZE
    deadline_s: float = DEADLINE_S

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        if self.sentinel:
            return f"{parts.scheme}://{netloc} (Sentinel master {self.sentinel!r})"
        return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + (
            " (cluster)" if self.cluster else ""
        )


_YES = {"1", "true", "yes", "on"}
_NO = {"0", "false", "no", "off"}
_PASSED_ON = set(URL_QUERY_ARGUMENT_PARSERS) | {
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "client_name", "path",
}


def parse_redis_url(url: str) -> RedisSettings:
    """Read a ``--redis-url``; a ``ValueError`` says what is wrong with it, without the URL
    (which may hold a password: the caller shows it masked)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("the scheme must be redis://, rediss:// or unix://")
    if parts.scheme != "unix" and not parts.netloc.rpartition("@")[2]:
        raise ValueError("no host")
    cluster, sentinel, pool, deadline_s = False, None, POOL_SIZE, DEADLINE_S
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "cluster":
            if value.lower() not in _YES | _NO:
                raise ValueError(f"cluster={value!r} is not yes or no")
            cluster = value.lower() in _YES
        elif key == "sentinel":
            if not value:
                raise ValueError("sentinel= needs the master's name")
            sentinel = value
        elif key in ("pool", "timeout_ms"):
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{key}={value!r} is not a positive number")
            if key == "pool":
                pool = int(value)
            else:
                deadline_s = int(value) / 1000
        elif key in _PASSED_ON:
            kept.append((key, value))
        else:
            raise ValueError(f"unknown option {key!r}")
    if cluster and sentinel:
        raise ValueError("cluster and sentinel cannot be combined")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
    return RedisSettings(
        url=clean, cluster=cluster, sentinel=sentinel, pool=pool, deadline_s=deadline_s
    )


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


_ADMIT = _Script(lua.ADMIT)
_UNDO_ADMIT = _Script(lua.UNDO_ADMIT)
_END = _Script(lua.END)
_HEARTBEAT = _Script(lua.HEARTBEAT)
_PEEK = _Script(lua.PEEK)
_LEASES = _Script(lua.LEASES)
_SAVE_CONFIG = _Script(lua.SAVE_CONFIG)
_ADD_TOKEN = _Script(lua.ADD_TOKEN)
_REMOVE_TOKEN = _Script(lua.REMOVE_TOKEN)
_LIVE = _Script(lua.LIVE)


_NONCE_PREFIX = secrets.token_hex(6) + ":"
_attempts = itertools.count(1)
"""Admission attempts are told apart by a random per-process prefix and a counter: unique
across processes without a system call for randomness per dial."""


def _prefix(account_id: str) -> str:
    return f"cg:{{{account_id}}}:"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_STREAM_PART_MAX = 2**64 - 1
"""Each half of a stream id is an unsigned 64-bit number: Redis refuses a larger one."""


def _stream_id(cursor: str) -> str:
    """An audit cursor as the stream id it is: ``<ms>-<seq>``, ASCII digits in range."""
    ms, dash, seq = cursor.partition("-")
    if not (
        dash
        and all(part.isascii() and part.isdigit() and int(part) <= _STREAM_PART_MAX
                for part in (ms, seq))
    ):
        raise InvalidField(f"cursor {cursor!r} is not one this store gave out", field="cursor")
    return cursor


class _Lane:
    """The connections scripts run on, outside a cluster: redis.asyncio connections made by
    the client's pool (so the URL's TLS, unix socket, password and Sentinel lookup all
    apply), each used for one command at a time, at most ``size`` of them.

    redis-py's own pool and command path cost more CPU per dial than the rest of a dial
    together: a condition, a lock and two metrics records per acquire, a readiness poll of the
    socket, a task per send and the pure-Python packing of every argument. Here a command is
    packed by hiredis, written, and its reply read by hiredis; the caller's deadline bounds
    it. A connection whose command failed or was cancelled has been disconnected by redis-py
    and reconnects when next used."""

    def __init__(self, pool: ConnectionPool, size: int) -> None:
        self._pool = pool
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(size)

    async def script(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` by its SHA. A Redis that does not know it yet (new, restarted, failed
        over) gets the source at once on the same connection (a waiting queue of dials would
        otherwise all fail their EVALSHA before the first EVAL). A connection found broken
        (every idle one is, after Redis restarts) is replaced and the script sent once more:
        every script is safe to run twice."""
        command = (script.sha, len(keys), *keys, *args)
        packed = hiredis.pack_command(("EVALSHA", *command))
        async with self._slots:
            if self._idle:
                conn = self._idle.pop()
            else:
                conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                try:
                    return await self._evalsha(conn, packed, script, command)
                except (rex.ConnectionError, OSError):
                    await conn.disconnect()
                    return await self._evalsha(conn, packed, script, command)
            finally:
                self._idle.append(conn)

    @staticmethod
    async def _evalsha(
        conn: AbstractConnection, packed: bytes, script: _Script, command: tuple[Any, ...]
    ) -> Any:
        if not conn.is_connected:
            await conn.connect()  # type: ignore[no-untyped-call]
        await conn.send_packed_command(packed, check_health=False)
        try:
            return await conn.read_response()
        except rex.NoScriptError:
            source = hiredis.pack_command(("EVAL", script.source, *command[1:]))
            await conn.send_packed_command(source, check_health=False)
            return await conn.read_response()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()


def _retry() -> Retry:
    """One immediate retry on a broken connection: pooled connections all break when Redis
    restarts, and the first command on each should not fail for it. Every script is safe to
    run twice (a second admission replays the first's record)."""
    return Retry(NoBackoff(), 1)


class RedisStore:
    def __init__(
        self,
        settings: RedisSettings | str,
        *,
        wait_at_start: bool = False,
        skew_ms: Callable[[], int] | None = None,
    ) -> None:
        """``wait_at_start``: keep trying (with backoff) until Redis answers, instead of
        failing at once. ``skew_ms``: added to Redis's clock; tests use it to move time."""
        if isinstance(settings, str):
            try:
                settings = parse_redis_url(settings)
            except ValueError as exc:
                raise ConfigurationError(f"--redis-url: {exc}") from None
        self.settings = settings
        self._deadline_s = self.settings.deadline_s
        self._wait_at_start = wait_at_start
        self._skew = skew_ms
        self._client: Any = None
        self._lane: _Lane | None = None
        self._slots: asyncio.Semaphore | None = None
        self._healthy = False
        self._monitor_task: asyncio.Task[None] | None = None
        self._undos: set[asyncio.Task[None]] = set()
        self._accounts: set[str] = set()
        self._leases: dict[str, int] = {}
        self._ids: dict[frozenset[str], str] = {}

    # -- connections -------------------------------------------------------------------------

    def _connect(self, *, for_pubsub: bool = False) -> Any:
        s = self.settings
        common: dict[str, Any] = {
            "socket_connect_timeout": max(s.deadline_s, 0.5) if for_pubsub else s.deadline_s,
            # The deadline bounds each call (asyncio.timeout), and a pub/sub connection waits
            # for messages indefinitely: no socket timeout of redis-py's own (it would cost a
            # task per command sent).
            "socket_timeout": None,
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0) if for_pubsub else _retry(),
            # No CLIENT SETINFO: two round trips more per new connection, and redis-py
            # would read its package metadata from disk for it, blocking the event loop.
            "driver_info": None,
        }
        if s.sentinel is not None:
            parts = urlsplit(s.url)
            userinfo, _, hosts = parts.netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            sentinels = []
            for host in hosts.split(","):
                name, _, port = host.rpartition(":")
                sentinels.append((name or host, int(port) if port.isdigit() else 26379))
            db = parts.path.strip("/")
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                sentinels,
                sentinel_kwargs={"socket_timeout": 1.0, "socket_connect_timeout": 0.5},
            )
            return sentinel.master_for(
                s.sentinel,
                redis_class=aioredis.Redis,
                username=user or None,
                password=password or None,
                db=int(db) if db.isdigit() else 0,
                max_connections=ADMIN_POOL_SIZE,
                **common,
            )
        if s.cluster:
            if for_pubsub:
                # Pub/sub messages reach every node of a cluster; any node will do.
                return aioredis.Redis.from_url(s.url, **common)
            return RedisCluster.from_url(s.url, max_connections=s.pool, **common)
        if for_pubsub:
            return aioredis.Redis.from_url(s.url, **common)
        pool = aioredis.BlockingConnectionPool.from_url(
            s.url, max_connections=ADMIN_POOL_SIZE, timeout=ADMIN_DEADLINE_S, **common
        )
        return aioredis.Redis(connection_pool=pool, retry=_retry())

    async def open(self) -> None:
        self._client = self._connect()
        if self.settings.cluster:
            # Its pools refuse rather than wait at their size: bound our own use instead.
            self._slots = asyncio.Semaphore(self.settings.pool)
        else:
            # Scripts run on the lane; the client's pool serves the rest.
            self._lane = _Lane(self._client.connection_pool, self.settings.pool)
            if self.settings.sentinel:
                self._slots = asyncio.Semaphore(ADMIN_POOL_SIZE)
        delay = 0.5
        while True:
            try:
                async with asyncio.timeout(max(2.0, self._deadline_s)):
                    await self._client.ping()
                break
            except _UNAVAILABLE_OR_LATE as exc:
                why = str(exc) or type(exc).__name__
                if not self._wait_at_start:
                    await self._client.aclose()
                    raise StoreUnavailable(
                        f"cannot reach Redis at {self.settings.where}: {why}"
                    ) from None
                log.warning(
                    "cannot reach Redis at %s (%s); trying again in %.1f s",
                    self.settings.where, why, delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        self._healthy = True
        log.info("connected to Redis at %s", self.settings.where)
        self._monitor_task = asyncio.create_task(self._monitor(), name="redis-monitor")

    async def close(self) -> None:
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            await asyncio.gather(self._monitor_task, return_exceptions=True)
            self._monitor_task = None
        if self._undos:
            await asyncio.wait(self._undos, timeout=1.0)
        if self._lane is not None:
            await self._lane.close()
            self._lane = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def _monitor(self) -> None:
        """Find out when Redis is back after a failure, and keep the lease counts (for the
        metrics) fresh."""
        rounds = 0
        while True:
            await asyncio.sleep(MONITOR_S)
            rounds += 1
            try:
                if not self._healthy:
                    await self._command(self._client.ping(), self._deadline_s)
                    log.info("Redis at %s answers again", self.settings.where)
                if rounds % 2 == 0:
                    for account_id in list(self._accounts):
                        self._leases[account_id] = int(
                            await self._script(_LEASES, [_prefix(account_id) + "leases"],
                                               [self._skew_ms()], ADMIN_DEADLINE_S)
                        )
            except StoreUnavailable:
                pass

    # -- calling Redis -----------------------------------------------------------------------

    def _lost(self, exc: BaseException) -> StoreUnavailable:
        if self._healthy:
            log.warning("Redis at %s is unavailable: %s", self.settings.where, exc)
        self._healthy = False
        if isinstance(exc, TimeoutError):
            ms = round(self._deadline_s * 1000)
            return StoreUnavailable(f"Redis did not answer within {ms} ms")
        return StoreUnavailable(f"Redis is unavailable: {exc or type(exc).__name__}")

    async def _command(self, awaitable: Any, deadline_s: float, *, lane: bool = False) -> Any:
        """``awaitable``'s result within ``deadline_s``, or ``StoreUnavailable``. ``lane``:
        it runs on the lane, which bounds its own connections."""
        try:
            async with asyncio.timeout(deadline_s):
                if self._slots is None or lane:
                    result = await awaitable
                else:
                    async with self._slots:
                        result = await awaitable
        except _UNAVAILABLE_OR_LATE as exc:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise self._lost(exc) from None
        self._healthy = True
        return result

    async def _script(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any], deadline_s: float
    ) -> Any:
        """Run ``script`` by its SHA; a Redis that does not know it yet (new, restarted, a
        failover, another cluster node) gets the source once and caches it."""
        client, lane = self._client, self._lane

        async def run() -> Any:
            if lane is not None:
                return await lane.script(script, keys, args)
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except rex.NoScriptError:
                return await client.eval(script.source, len(keys), *keys, *args)

        return await self._command(run(), deadline_s, lane=lane is not None)

    def _skew_ms(self) -> int:
        return self._skew() if self._skew is not None else 0

    # -- configuration -----------------------------------------------------------------------

    async def account_versions(self) -> dict[str, int]:
        members = await self._command(self._client.smembers(ACCOUNTS), ADMIN_DEADLINE_S)
        ids = sorted(_text(m) for m in members)
        if not ids:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for account_id in ids:
            pipe.hget(_prefix(account_id) + "config", "v")
        versions = await self._command(pipe.execute(), ADMIN_DEADLINE_S)
        found = {a: int(v) for a, v in zip(ids, versions) if v is not None}
        self._accounts.update(found)
        return found

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None:
        blob, version = await self._command(
            self._client.hmget(_prefix(account_id) + "config", "c", "v"), ADMIN_DEADLINE_S
        )
        if blob is None or version is None:
            return None
        self._accounts.add(account_id)
        return _config_decoder.decode(blob), int(version)

    async def save_account(
        self, config: AccountConfig, expected_version: int, audit: Sequence[AuditEntry] = ()
    ) -> int:
        await self._command(self._client.sadd(ACCOUNTS, config.id), ADMIN_DEADLINE_S)
        prefix = _prefix(config.id)
        saved, version = await self._script(
            _SAVE_CONFIG,
            [prefix + "config", prefix + "audit"],
            [expected_version, _config_encoder.encode(config), CHANNEL, config.id,
             *(_audit_encoder.encode(e) for e in audit)],
            ADMIN_DEADLINE_S,
        )
        if not saved:
            if expected_version == 0:
                raise Conflict(f"account {config.id!r} already exists", field="id")
            raise PreconditionFailed(
                f"account {config.id!r} is at version {version}, not {expected_version}: "
                "it changed since it was read"
            )
        self._accounts.add(config.id)
        return int(version)

    async def watch(
        self, on_change: OnChange, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        """Reload what other processes save, as they announce it, and forget tokens they
        revoke. After every (re)subscribe ``on_change(None, 0)`` asks for a full check:
        messages sent while this process was not listening are lost."""
        delay = 0.5
        while True:
            client = self._connect(for_pubsub=True)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                delay = 0.5
                await on_change(None, 0)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None or message.get("type") != "message":
                        continue
                    account_id, _, version = _text(message["data"]).partition(" ")
                    if account_id == _REVOKED:
                        if on_revoked is not None:
                            on_revoked(version)
                    elif version.isdigit():
                        await on_change(account_id, int(version))
            except _WATCH_LOST as exc:
                log.warning(
                    "configuration notifications from Redis lost (%s); subscribing again "
                    "in %.1f s, the periodic check covers the gap", exc, delay,
                )
            finally:
                await asyncio.gather(pubsub.aclose(), client.aclose(), return_exceptions=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)

    # -- tokens ------------------------------------------------------------------------------
    # ``cg:{<account>}:tokens`` maps each token hash to its record; ``cg:token:<hash>`` finds a
    # hash's account (it lives in another slot, so the two are written one after the other:
    # the record first, and removed last).

    async def add_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None:
        prefix = _prefix(record.account_id)
        await self._script(
            _ADD_TOKEN,
            [prefix + "tokens", prefix + "audit"],
            [record.hash, _token_encoder.encode(record),
             *([_audit_encoder.encode(audit)] if audit else [])],
            ADMIN_DEADLINE_S,
        )
        await self._command(
            self._client.set(f"cg:token:{record.hash}", record.account_id), ADMIN_DEADLINE_S
        )

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        account_id = await self._command(
            self._client.get(f"cg:token:{token_hash}"), ADMIN_DEADLINE_S
        )
        if account_id is None:
            return None
        blob = await self._command(
            self._client.hget(_prefix(_text(account_id)) + "tokens", token_hash),
            ADMIN_DEADLINE_S,
        )
        return None if blob is None else _token_decoder.decode(blob)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        blobs = await self._command(
            self._client.hvals(_prefix(account_id) + "tokens"), ADMIN_DEADLINE_S
        )
        records = [_token_decoder.decode(b) for b in blobs]
        return sorted(records, key=lambda r: (r.created_ms, r.name))

    async def revoke_token(self, account_id: str, name: str) -> int:
        revoked = [r for r in await self.list_tokens(account_id) if r.name == name]
        for record in revoked:
            await self._command(
                self._client.delete(f"cg:token:{record.hash}"), ADMIN_DEADLINE_S
            )
            await self._command(
                self._client.hdel(_prefix(account_id) + "tokens", record.hash), ADMIN_DEADLINE_S
            )
            await self._announce_revoked(record.hash)
        return len(revoked)

    async def remove_token(
        self, account_id: str, token_hash: str, audit: AuditEntry | None = None
    ) -> bool:
        owner = await self._command(self._client.get(f"cg:token:{token_hash}"), ADMIN_DEADLINE_S)
        if owner is None or _text(owner) != account_id:
            return False
        await self._command(self._client.delete(f"cg:token:{token_hash}"), ADMIN_DEADLINE_S)
        prefix = _prefix(account_id)
        removed = await self._script(
            _REMOVE_TOKEN,
            [prefix + "tokens", prefix + "audit"],
            [token_hash, *([_audit_encoder.encode(audit)] if audit else [])],
            ADMIN_DEADLINE_S,
        )
        await self._announce_revoked(token_hash)
        return bool(removed)

    async def _announce_revoked(self, token_hash: str) -> None:
        await self._command(
            self._client.publish(CHANNEL, f"{_REVOKED} {token_hash}"), ADMIN_DEADLINE_S
        )

    # -- audit log ---------------------------------------------------------------------------

    async def audit_log(
        self, account_id: str, query: AuditQuery
    ) -> tuple[list[AuditEntry], str | None]:
        """Reads the stream newest first from the cursor, at most ``_AUDIT_SCAN`` entries a
        page, keeping those that match."""
        key = _prefix(account_id) + "audit"
        end = "+" if query.before is None else "(" + _stream_id(query.before)
        found: list[AuditEntry] = []
        scanned = 0
        last: str | None = None
        while scanned < _AUDIT_SCAN and len(found) < query.limit:
            batch = await self._command(
                self._client.xrevrange(key, end, "-", count=min(AUDIT_PAGE_MAX, _AUDIT_SCAN)),
                ADMIN_DEADLINE_S,
            )
            if not batch:
                return found, None
            for stream_id, fields in batch:
                last = _text(stream_id)
                scanned += 1
                entry = _audit_decoder.decode(fields[b"e"])
                if query.matches(entry):
                    found.append(msgspec.structs.replace(entry, id=last))
                    if len(found) == query.limit:
                        break
            end = "(" + (last or "")
        return found, last

    # -- live channels -----------------------------------------------------------------------

    async def live_calls(self, account_id: str) -> list[LiveCall]:
        prefix = _prefix(account_id)
        reply = await self._script(
            _LIVE, [prefix + "leases"], [self._skew_ms(), prefix, LIVE_MAX], ADMIN_DEADLINE_S
        )
        live = []
        for i in range(0, len(reply), 4):
            call_id, expires, user, answer = reply[i : i + 4]
            decision = _answer_decoder.decode(answer)
            live.append(
                LiveCall(
                    call_id=_text(call_id),
                    user_id=_text(user),
                    to=decision.to,
                    caller_id=decision.caller_id,
                    lease_expires_ms=int(float(expires)),
                )
            )
        return sorted(live, key=lambda c: (c.lease_expires_ms, c.call_id))

    # -- calls -------------------------------------------------------------------------------

    def _id_list(self, ids: frozenset[str]) -> str:
        """``,id1,id2,``: the set as the admission script searches it (cached per set: a
        snapshot's sets live as long as it does)."""
        listed = self._ids.get(ids)
        if listed is None:
            if len(self._ids) > 4096:
                self._ids.clear()
            listed = self._ids[ids] = "," + ",".join(sorted(ids)) + ","
        return listed

    async def admit(self, ticket: Ticket, plan: Plan) -> Decision:
        if not ticket.remember and not plan.may_allow:
            return plan.decision  # nothing to take and nothing to remember
        prefix = _prefix(ticket.account_id)
        call_id = ticket.call_id
        keys = [prefix + "call:" + call_id, prefix + "leases", prefix + "u:" + ticket.user_id]
        fallback, sticky = plan.decision, plan.sticky
        if sticky is not None and ticket.contact is not None:
            keys.append(prefix + "st:" + ticket.contact)
        kept = plan.sticky_pair(fallback) if fallback.allowed else None
        nonce = f"{_NONCE_PREFIX}{next(_attempts)}"
        args = (
            self._skew_ms(),
            call_id,
            ticket.fingerprint,
            ticket.user_id,
            "1" if ticket.remember else "0",
            "1" if ticket.counted else "0",
            ticket.user_limit,
            "" if ticket.account_limit is None else ticket.account_limit,
            ticket.ttl_ms,
            RETENTION_MS,
            ticket.sticky_ttl_ms,
            nonce,
            _answer_encoder.encode(fallback),
            "1" if fallback.allowed else "0",
            kept[1] if kept is not None else "",
            ticket.contact or fallback.to or "",
            _answer_encoder.encode(sticky) if sticky is not None else "",
            self._id_list(plan.sticky_ids) if sticky is not None else "",
        )
        try:
            reply = await self._script(_ADMIT, keys, args, self._deadline_s)
        except StoreUnavailable:
            if plan.may_allow or ticket.remember:
                self._undo_later(keys, call_id, nonce)
            raise
        if reply[0] == 1:  # the call id was decided already: the same answer again
            fingerprint, answer, expires, taken, refusal = reply[1:]
            if _text(fingerprint) != ticket.fingerprint:
                raise Conflict(
                    f"call id {call_id!r} was already used for a different request",
                    field="call_id",
                )
            return _stored_answer(call_id, ticket.user_id, answer, expires, taken, refusal)
        _, allowed, expires, taken, refusal = reply
        if refusal:
            return _refusal(call_id, ticket.user_id, refusal)
        if not allowed:
            return fallback
        if taken:
            assert sticky is not None
            return _with_lease(sticky, expires, taken)
        return _with_lease(fallback, expires, taken)

    def _undo_later(self, keys: Sequence[str], call_id: str, nonce: str) -> None:
        """Undo, in the background, an admission whose answer may have been lost."""
        if len(self._undos) >= _UNDOS_OUTSTANDING:
            return  # Redis is down hard; what did land expires with its lease
        task = asyncio.create_task(self._undo(keys[:3], call_id, nonce))
        self._undos.add(task)
        task.add_done_callback(self._undos.discard)

    async def _undo(self, keys: Sequence[str], call_id: str, nonce: str) -> None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                await self._script(_UNDO_ADMIT, keys, [call_id, nonce], ADMIN_DEADLINE_S)
                return
            except StoreUnavailable:
                await asyncio.sleep(0.5)

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None
    ) -> EndResult:
        prefix = _prefix(account_id)
        reply = await self._script(
            _END,
            [prefix + "call:" + call_id, prefix + "leases"],
            [self._skew_ms(), call_id, outcome.value, "1" if outcome.connected else "0",
             RETENTION_MS, prefix, user_id or ""],
            self._deadline_s,
        )
        status = _text(reply[0])
        if status == "ended":
            ended = Outcome(_text(reply[1]))
            if ended is not outcome:
                raise Conflict(
                    f"call {call_id!r} already ended as {ended}, not {outcome}", field="outcome"
                )
        elif status != "ok":
            self._not_live(call_id, status, reply)
        records = bool(reply[-1]) and outcome.connected
        return EndResult(call_id=call_id, outcome=outcome, sticky_recorded=records)

    async def heartbeat(
        self, account_id: str, call_id: str, ttl_ms: int, user_id: str | None = None
    ) -> int:
        prefix = _prefix(account_id)
        reply = await self._script(
            _HEARTBEAT,
            [prefix + "call:" + call_id, prefix + "leases"],
            [self._skew_ms(), call_id, ttl_ms, RETENTION_MS, prefix, user_id or ""],
            self._deadline_s,
        )
        status = _text(reply[0])
        if status == "ended":
            raise Conflict(f"call {call_id!r} has ended ({_text(reply[1])})", field="call_id")
        if status == "expired":
            raise Conflict(
                f"the lease of call {call_id!r} expired; dial again for a new one",
                field="call_id",
            )
        if status != "ok":
            self._not_live(call_id, status, reply)
        return int(reply[1])

    @staticmethod
    def _not_live(call_id: str, status: str, reply: Sequence[Any]) -> None:
        if status == "denied":
            reason = _answer_decoder.decode(reply[1]).reason
            raise Conflict(
                f"call {call_id!r} was denied ({reason}); it holds no channel", field="call_id"
            )
        raise NotFound(f"no call {call_id!r} in this account", field="call_id")

    async def peek(self, ticket: Ticket) -> Peek:
        prefix = _prefix(ticket.account_id)
        keys = [prefix + "call:" + ticket.call_id, prefix + "leases", prefix + "u:" + ticket.user_id]
        if ticket.contact is not None:
            keys.append(prefix + "st:" + ticket.contact)
        held, in_account, sticky, fingerprint, answer, expires, taken, refusal = await self._script(
            _PEEK, keys, [self._skew_ms(), "1" if ticket.remember else "0"], self._deadline_s
        )
        known = None
        if fingerprint:
            if _text(fingerprint) != ticket.fingerprint:
                raise Conflict(
                    f"call id {ticket.call_id!r} was already used for a different request",
                    field="call_id",
                )
            known = _stored_answer(ticket.call_id, ticket.user_id, answer, expires, taken, refusal)
        return Peek(
            known=known,
            sticky=_text(sticky) or None,
            user_leases=int(held),
            account_leases=int(in_account),
        )

    async def sweep(self) -> int:
        """Nothing to do: Redis expires call records, lease sets and sticky entries itself."""
        return 0

    def lease_counts(self) -> dict[str, int]:
        """Leases held per account, as of the last check (every second)."""
        return dict(self._leases)


def _refusal(call_id: str, user_id: str, refusal: bytes) -> Decision:
    """The channel-limit denial the script's ``held,in_account,user_limit,account_limit``
    describes."""
    held, in_account, user_limit, cap = _text(refusal).split(",")
    detail = refusal_detail(
        user_id, int(held), int(in_account), int(user_limit), int(cap) if cap else None
    )
    return channel_denial(call_id, detail or "no channel free")


def _with_lease(answer: Decision, expires: int, taken: bytes) -> Decision:
    """An allowed answer with its lease expiry, and the sticky caller ID it took, if any."""
    if taken:
        return msgspec.structs.replace(
            answer, caller_id=_text(taken), lease_expires_at=rfc3339(int(expires))
        )
    return msgspec.structs.replace(answer, lease_expires_at=rfc3339(int(expires)))


def _stored_answer(
    call_id: str, user_id: str, answer: bytes, expires: int, taken: bytes, refusal: bytes
) -> Decision:
    """The answer a call record holds, as it was given."""
    if refusal:
        return _refusal(call_id, user_id, refusal)
    decision = _answer_decoder.decode(answer)
    return _with_lease(decision, expires, taken) if decision.allowed else decision
