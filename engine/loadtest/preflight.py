"""Before a run: who to dial as and what to dial (``prepare``), asking the server what the
options leave open (the account, the token's own user, whether each user may be dialled as);
and how a server's answers and failures are read, for the run as well, from aiohttp or from
a dial ``Connection`` (``problem_text``, ``failure_of``, ``NETWORK_ERRORS``)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import msgspec

from ..errors import ConfigurationError
from ..wire import DialRequest
from .connection import BadAnswer, ConnectFailed, Disconnected, HttpFailure
from .numbers import Destinations, NumberSource
from .options import Plan
from .stats import Failure

__all__ = ["NETWORK_ERRORS", "Setup", "encode", "failure_of", "prepare", "problem_text"]

_PREFILL_MAX = 50_000
"""The most generated numbers made before a run (about a second's work); later ones are made
as they are needed."""
_PREFILL_CLOSED = 20_000


class _Problem(msgspec.Struct):
    title: str = ""
    detail: str = ""


class _AccountOut(msgspec.Struct):
    default_region: str
    plan_countries: list[str]


class _TokenOut(msgspec.Struct):
    id: str
    user: str | None = None


class _TokenPage(msgspec.Struct):
    items: list[_TokenOut]
    next_cursor: str | None = None


_problem = msgspec.json.Decoder(_Problem)
_account = msgspec.json.Decoder(_AccountOut)
_tokens = msgspec.json.Decoder(_TokenPage)
encode = msgspec.json.Encoder().encode


def problem_text(status: int, body: bytes) -> str:
    try:
        problem = _problem.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode(errors="replace") or f"HTTP {status}"
    return problem.detail or problem.title or f"HTTP {status}"


def failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, TimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, ConnectFailed):
        return Failure.REFUSED if isinstance(exc.__cause__, ConnectionRefusedError) \
            else Failure.CONNECT
    if isinstance(exc, Disconnected):
        return Failure.DISCONNECTED
    if isinstance(exc, BadAnswer):
        return Failure.BAD_ANSWER
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure.REFUSED if isinstance(exc.os_error, ConnectionRefusedError) \
            else Failure.CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure.DISCONNECTED
    return Failure.CONNECTION


NETWORK_ERRORS = (aiohttp.ClientError, HttpFailure, OSError, TimeoutError)


@dataclass(frozen=True)
class Setup:
    users: tuple[str, ...]
    destinations: Destinations
    described: str


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def prepare(session: aiohttp.ClientSession, plan: Plan, listed: Sequence[str],
                  say: Callable[[str], None]) -> Setup:
    """Who to dial as and what to dial, asking the server what the options leave open: the
    account (a user's token may read it; a service token gets 403) and the token's own user."""
    admin = f"{plan.url}/admin/v1"
    user_token: bool | None = None  # None: the server could not be asked
    regions = plan.regions
    try:
        status, body = await _get(session, f"{admin}/account")
    except NETWORK_ERRORS as exc:
        say(f"cannot reach {plan.url} ({failure_of(exc)}: {exc}); going on, the errors "
            "will be counted")
    else:
        if status == 401:
            raise ConfigurationError(
                f"--token: the server refused it ({problem_text(status, body)})")
        if status == 403:  # "a service token may call the decision API only"
            user_token = False
        elif status == 200:
            try:
                account = _account.decode(body)
            except msgspec.DecodeError:
                say(f"{plan.url}/admin/v1/account is not a callgate account; going on")
            else:
                user_token = True
                regions = regions or tuple(account.plan_countries) or (account.default_region,)
        else:
            say(f"{plan.url}/admin/v1/account answered HTTP {status} "
                f"({problem_text(status, body)}); going on")
    own = await _own_user(session, admin, plan.token) if user_token else None
    users = plan.users
    if users is None:
        if own is None:
            why = ("a service token dials as any user, so it needs the list" if user_token is False
                   else "the server could not be asked whose token this is")
            raise ConfigurationError(f"--users A,B,... is needed: {why}")
        users = (own,)
    if listed:
        destinations, described = Destinations(listed=listed), f"{len(listed):,} listed numbers"
    else:
        regions = regions or ("US",)
        fresh = NumberSource(regions, seed=plan.seed)
        total_s = plan.warmup_s + plan.duration_s
        wanted = _PREFILL_CLOSED if plan.rate is None else math.ceil(
            plan.rate * total_s * (1 - plan.repeat_share)) + 64
        await asyncio.to_thread(fresh.prefill, min(wanted, _PREFILL_MAX))
        destinations = Destinations(fresh=fresh, repeat_share=plan.repeat_share)
        described = (f"numbers generated in {', '.join(regions)}, "
                     f"{plan.repeat_share:.0%} repeated")
    if user_token is not None:
        await _check_users(session, plan, users, destinations.take(random.Random(0)))
    return Setup(users, destinations, described)


async def _own_user(session: aiohttp.ClientSession, admin: str, token: str) -> str | None:
    """The user of a user's token: the admin API names a token by the start of its SHA-256
    (``TokenRecord.id``), and lists a user's own tokens to them."""
    token_id = hashlib.sha256(token.encode()).hexdigest()[:16]
    cursor: str | None = ""
    while cursor is not None:
        status, body = await _get(session, f"{admin}/tokens?kind=user&limit=500"
                                  + (f"&cursor={quote(cursor)}" if cursor else ""))
        if status != 200:
            return None
        try:
            page = _tokens.decode(body)
        except msgspec.DecodeError:
            return None
        for item in page.items:
            if item.id == token_id:
                return item.user
        cursor = page.next_cursor
    return None


async def _check_users(session: aiohttp.ClientSession, plan: Plan, users: Sequence[str],
                       number: str) -> None:
    """Ask ``/v1/explain`` (no channel taken) once per user, so that an unknown user or one
    the token may not dial as stops the run before it starts."""
    for user in users:
        body = encode(DialRequest(user=user, to=number))
        try:
            async with session.post(f"{plan.url}/v1/explain", data=body) as response:
                status, answer = response.status, await response.read()
        except NETWORK_ERRORS:
            return
        if status in (401, 403, 404, 422):
            raise ConfigurationError(f"--users: {user!r}: {problem_text(status, answer)} "
                                     f"(HTTP {status})")

