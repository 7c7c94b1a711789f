"""Automatic rest: a number whose calls stopped connecting rests by itself.

An account with ``auto_rest`` (``callerid.AutoRest``) has the store keep, for each of its
numbers, whether each of the number's last ``over_calls`` ended calls connected (answered or
voicemail, ``Outcome.connected``): ``Store.end`` adds each call it ends to the window of the
call's caller ID, in the step that ends the call, so a repeated end adds nothing. When an end
fills a window with too few connected calls, the store clears the window (the count starts
afresh) and tells that one end, however many processes end the number's calls at once; the
engine then asks ``AutoRester`` to rest the number.

The rest is a configuration write like an administrator's, made off the end's answer path:
a task of ``AutoRester`` writes it through the domain service (``AccountService``), whose
``on_saved`` installs it in this process's engine and whose save announces it to the others,
with an audit entry by the actor ``system``. The edit is ``rest_number``: it rests only a
number that is still in use and not resting, in an account that still has ``auto_rest``, so
when another writer got in first (the write runs again on what they saved) an administrator
who rested, retired or released the number meanwhile wins, and two processes never rest it
twice. A write that fails is logged, never raised to anyone: the end was answered already.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from callerid import AccountConfig, NumberStatus, PhoneNumber, Reputation

from .changes import update_number
from .errors import CallgateError, StoreUnavailable
from .service import AccountService, Edit
from .store import AuditEntry

__all__ = ["SYSTEM", "AutoRester", "NothingToRest", "in_use", "rest_number"]

log = logging.getLogger("callgate.resting")

SYSTEM = "system"
"""The audit actor of a change callgate makes by itself."""

ATTEMPTS = 3
RETRY_S = 1.0
"""A rest the store could not take (``StoreUnavailable``) is tried again this much later, up to
``ATTEMPTS`` times in all."""


class NothingToRest(Exception):
    """Raised by ``rest_number``'s edit when the number is not to be rested (any more)."""


def in_use(number: PhoneNumber, now_ms: int) -> bool:
    """Whether automatic rules may present ``number`` at ``now_ms``: an active number that is
    neither retired nor resting (a rest that has ended counts as active)."""
    if number.status is not NumberStatus.ACTIVE or number.reputation is Reputation.RETIRED:
        return False
    until = number.resting_until
    return until is None or until.timestamp() * 1000 <= now_ms


def rest_number(number: str, now_ms: int) -> Edit:
    """The edit that rests ``number`` for the account's ``auto_rest.rest_hours`` from
    ``now_ms`` (to the second), with its audit entry (actor ``system``, action
    ``number.update``, the number before and after, as an administrator's change logs).
    Raises ``NothingToRest`` when the account has no ``auto_rest``, or the number is not
    the account's or not ``in_use``: nothing is written then."""

    def edit(config: AccountConfig) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        rule = config.auto_rest
        found = next((n for n in config.numbers if n.number == number), None)
        if rule is None or found is None or not in_use(found, now_ms):
            raise NothingToRest(number)
        until = datetime.fromtimestamp(now_ms // 1000, UTC) + timedelta(hours=rule.rest_hours)
        new = update_number(number, {"reputation": Reputation.RESTING,
                                     "resting_until": until})(config)
        after = next(n for n in new.numbers if n.number == number)
        return new, [AuditEntry(at_ms=now_ms, actor=SYSTEM, action="number.update",
                                target=f"number:{number}", before=msgspec.to_builtins(found),
                                after=msgspec.to_builtins(after))]

    return edit


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AutoRester:
    """Rests numbers in the background, one task per number at a time, each task its own:
    ``rest`` returns at once, ``settle`` waits for the rests in flight (the server does
    before it closes the store; tests do before they look)."""

    def __init__(
        self, service: AccountService, *, clock_ms: Callable[[], int] = _wall_clock_ms,
        retry_s: float = RETRY_S,
    ) -> None:
        self._service = service
        self._clock_ms = clock_ms
        self._retry_s = retry_s
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def rest(self, account_id: str, number: str) -> None:
        """Rest ``number`` of ``account_id`` soon (``rest_number``); a rest of it already in
        flight in this process is enough."""
        key = (account_id, number)
        if key in self._tasks:
            return
        task = asyncio.create_task(self._rest(account_id, number, self._clock_ms()),
                                   name=f"auto-rest {account_id} {number}")
        self._tasks[key] = task
        task.add_done_callback(functools.partial(self._done, key))

    def _done(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def settle(self) -> None:
        """Until no rest is in flight."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _rest(self, account_id: str, number: str, now_ms: int) -> None:
        fields: dict[str, object] = {"account": account_id, "number": number, "actor": SYSTEM}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                config, version = await self._service.write(
                    account_id, rest_number(number, now_ms))
            except NothingToRest:
                log.info("number not rested: no longer in use, or auto rest is off",
                         extra={"fields": fields})
                return
            except StoreUnavailable as exc:
                if attempt < ATTEMPTS:
                    await asyncio.sleep(self._retry_s)
                    continue
                log.error("could not rest a number automatically: %s", exc.detail,
                          extra={"fields": fields})
                return
            except CallgateError as exc:
                log.error("could not rest a number automatically: %s", exc.detail,
                          extra={"fields": fields})
                return
            except Exception:
                log.exception("could not rest a number automatically", extra={"fields": fields})
                return
            rested = next(n for n in config.numbers if n.number == number)
            until = rested.resting_until.isoformat() if rested.resting_until else None
            log.info("number rested automatically", extra={"fields": {
                **fields, "resting_until": until, "version": version}})
            return
