"""Account configuration on Redis, and the change feed that tells every process of a change
(point 4 of the theory of operation in ``store.py``).

Here: saving an account over the version its writer read, once its numbers and SIP domain
are claimed, and letting go of the claims it no longer needs; announcing a change (or a
revoked token) on the feed; and the three ways a process learns of changes: the publications
as they come (``watch``), the feed each second (``changes``), and every account's version
when the feed cannot say what was missed (``account_versions``).

``ConfigurationCommands`` is a part of ``RedisStore`` (the store inherits it, as redis-py's
client inherits its command classes): what it uses of the store is declared by
``part.StorePart``, the base of every part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import msgspec

from callerid import AccountConfig

from ...errors import Conflict, PreconditionFailed, StoreUnavailable
from ..protocol import AuditEntry, Changes, OnChange, claim_refused, claimed_names
from . import scripts as S
from .answers import text
from .connection import Lost, Pipe, RedisError, Unreachable, open_pipe
from .keys import ACCOUNTS, CHANNEL, FEED, FEED_VERSION, NUMBER_OWNERS, numbers_of
from .part import StorePart
from .topology import CONNECT_TIMEOUT_S

__all__ = ["ConfigurationCommands"]

log = logging.getLogger("callgate.store.redis")

FEED_KEPT = 1000
_REVOKED = "-token"

_config_encoder = msgspec.json.Encoder()
_config_decoder = msgspec.json.Decoder(AccountConfig)
_audit_encoder = msgspec.json.Encoder()


class ConfigurationCommands(StorePart):
    """Loading and saving account configurations, and following other processes' changes."""

    # -- configuration -----------------------------------------------------------------------

    async def account_versions(self) -> dict[str, int]:
        members = await self._command(ACCOUNTS, "SMEMBERS", ACCOUNTS)
        ids = sorted(text(m) for m in members)
        versions = await asyncio.gather(
            *(self._command(self._account_keys(a).config, "HGET", self._account_keys(a).config, "v")
              for a in ids)
        )
        return {a: int(v) for a, v in zip(ids, versions, strict=True) if v is not None}

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None:
        key = self._account_keys(account_id).config
        blob, version = await self._command(key, "HMGET", key, "c", "v")
        if blob is None or version is None:
            return None
        return _config_decoder.decode(blob), int(version)

    async def save_account(
        self, config: AccountConfig, expected_version: int, audit: Sequence[AuditEntry] = ()
    ) -> int:
        """The account's numbers and SIP domain (``claimed_names``) are claimed first (in
        their own slot: a script cannot touch both), then the configuration saved over its
        version, then whatever the account no longer has (or claimed for a save that failed)
        let go. A process that dies between the first two leaves its claims until the
        account's next save. An account saved before domains were claimed claims its domain
        at its next save."""
        await self._command(ACCOUNTS, "SADD", ACCOUNTS, config.id)
        numbers = S.NumberKeys(NUMBER_OWNERS, numbers_of(config.id))
        claimed = await self._script(
            S.CLAIM_NUMBERS, numbers, S.NumbersArgs(config.id, tuple(claimed_names(config))))
        if not claimed[0]:
            raise claim_refused(text(claimed[1]))
        account = self._account_keys(config.id)
        try:
            saved, version = await self._script(
                S.SAVE_CONFIG,
                S.ConfigKeys(account.config, account.audit),
                S.SaveConfigArgs(expected_version, _config_encoder.encode(config),
                                 tuple(_audit_encoder.encode(e) for e in audit)),
            )
        except BaseException:
            self._spawn(self._settle_numbers(config.id, later=True))
            raise
        await self._settle_numbers(config.id)
        if not saved:
            if expected_version == 0:
                raise Conflict(f"account {config.id!r} already exists", field="id")
            raise PreconditionFailed(
                f"account {config.id!r} is at version {version}, not {expected_version}: "
                "it changed since it was read"
            )
        await self._announce("a", config.id, str(version))
        return int(version)

    async def _settle_numbers(self, account_id: str, *, later: bool = False) -> None:
        """Hold on to the numbers and SIP domain the stored configuration of ``account_id``
        has, and let go of the others it claimed; ``later``: in the background, after a failed
        save, trying again while Redis cannot be reached (the next save settles them too)."""
        numbers = S.NumberKeys(NUMBER_OWNERS, numbers_of(account_id))
        for attempt in range(20 if later else 1):
            try:
                stored = await self.load_account(account_id)
                kept = tuple(claimed_names(stored[0])) if stored is not None else ()
                await self._script(S.RELEASE_NUMBERS, numbers, S.NumbersArgs(account_id, kept))
                return
            except StoreUnavailable:
                if not later:
                    raise
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10.0))
        log.warning("could not settle the numbers and SIP domain claimed by account %r; its "
                    "next save does", account_id)

    async def _announce(self, kind: str, subject: str, value: str = "") -> None:
        """Put a change on the feed and publish it; on failure, keep trying in the
        background (the change itself is saved)."""
        args = S.AnnounceArgs(kind, subject, value, CHANNEL, FEED_KEPT)
        try:
            await self._script(S.ANNOUNCE, S.FeedKeys(FEED_VERSION, FEED), args)
        except StoreUnavailable:
            self._spawn(self._announce_later(args))

    async def _announce_later(self, args: S.AnnounceArgs) -> None:
        for _ in range(120):
            await asyncio.sleep(0.5)
            try:
                await self._script(S.ANNOUNCE, S.FeedKeys(FEED_VERSION, FEED), args)
                return
            except StoreUnavailable:
                continue
        log.warning("could not announce a change of %r; other processes find it at their next "
                    "full check", args.subject)

    async def changes(self, since: int = -1) -> Changes:
        """One ``GET`` of the change counter; the feed is read only when it moved."""
        current = await self._command(FEED_VERSION, "GET", FEED_VERSION)
        if since >= 0 and int(current or 0) == since:
            return Changes(complete=True, cursor=since)
        reply = await self._script(
            S.FEED, S.FeedKeys(FEED_VERSION, FEED), S.FeedArgs(since, FEED_KEPT)
        )
        accounts: dict[str, int] = {}
        revoked: list[str] = []
        for fields in reply[2:]:
            entry = dict(zip(fields[::2], fields[1::2], strict=True))
            if b"t" in entry:
                revoked.append(text(entry[b"t"]))
            else:
                account_id, version = text(entry[b"a"]), int(entry[b"v"])
                accounts[account_id] = max(version, accounts.get(account_id, 0))
        return Changes(complete=bool(reply[1]), accounts=accounts, revoked=tuple(revoked),
                       cursor=int(reply[0]))

    @property
    def feeds_revocations(self) -> bool:
        return True

    async def watch(
        self, on_change: OnChange, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        """Reload what other processes save, as they announce it, and forget tokens they
        revoke. After every (re)subscribe ``on_change(None, 0)`` asks for a full check:
        messages sent while this process was not listening are lost."""
        delay = 0.5
        while True:
            messages: asyncio.Queue[bytes] = asyncio.Queue()
            pipe: Pipe | None = None
            try:
                node = self.topology.any_node()
                pipe, _ = await open_pipe(
                    node.address, self.settings, self.topology.context, CONNECT_TIMEOUT_S,
                    on_push=messages.put_nowait,
                )
                async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see topology.py)
                    await pipe.call("SUBSCRIBE", CHANNEL)
                delay = 0.5
                await on_change(None, 0)
                closed = pipe.closed
                while True:
                    get = asyncio.ensure_future(messages.get())
                    await asyncio.wait((get, closed), return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        get.cancel()
                        raise Lost("the subscription's connection closed")
                    account_id, _, version = text(get.result()).partition(" ")
                    if account_id == _REVOKED:
                        if on_revoked is not None:
                            on_revoked(version)
                    elif version.isdigit():
                        await on_change(account_id, int(version))
            except (Unreachable, Lost, TimeoutError, RedisError, StoreUnavailable) as exc:
                log.warning(
                    "configuration notifications from Redis lost (%s); subscribing again "
                    "in %.1f s, the change feed covers the gap", exc, delay,
                )
            finally:
                if pipe is not None:
                    pipe.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
