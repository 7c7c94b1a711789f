"""What every admin operation shares: its declaration (``Operation``, from which both the
router and the OpenAPI document are built) and the request it handles (``Call``: the actor,
the decoded body and query, versions, pagination, writes through the domain service).

Versions: each resource's ETag is a hash of its whole answer (``versioned``): what it holds
and what is derived from the rest of the account (a user's effective permissions, a
department's members and whether it is the default), so any change to what a client would
read, by anyone and through any resource, changes the ETag. A write that sends ``If-Match`` is
checked inside the edit, against the answer computed on the account the write is applied to,
so a stale ETag gets 412 and changes nothing, even when two writes race (the domain service
re-runs the edit on the account the other writer saved). The comparison is RFC 9110's strong
one (section 13.1.1): a weak tag (``W/"..."``) never matches.

A write that changes nothing (a ``PATCH`` sending the values the resource has) is not saved:
no new version, no audit entry.

Order of checks: what a refusal may tell. An operation on one resource checks, in order:

1. the permission the operation needs, as far as the caller and the path tell (``users.manage``;
   "yourself, or ``users.settings``"): 403 before the id is looked up, so a caller without it
   is answered alike whether the resource exists or not, and is never shown its ETag;
2. the id: 404 when the account has no such resource (an id of another account included);
3. who may change this resource as it stands (the owner by the owner alone, a user below
   the actor, not a group the actor supervises): 403;
4. ``If-Match``: 412, naming the current ETag;
5. the change itself (what it grants, where its members end up, the account's invariants).

Whoever passes step 1 may read every resource of that kind in the account (each permission
an operation needs includes reading what it changes), so the 404 of step 2, the 403 of step 3
and the ETag of step 4 tell them nothing they could not read with ``GET``. Steps 1 to 3 need
nothing of the body, so they come before the precondition, as RFC 9110 section 13.2.1 has it
(a failure found before the content is processed takes precedence); step 5 is that processing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from callerid import AccountConfig, Permission
from engine.decide import Engine
from engine.errors import (
    CallgateError,
    Conflict,
    InvalidField,
    NotFound,
    PreconditionFailed,
    Unauthorized,
)
from engine.invariants import violations_of
from engine.service import AccountService
from engine.store import AuditEntry, Store, TokenRecord
from engine.tokens import TokenCache
from engine.validation import convert, parse_json, path_text

from .rules import Actor, actor_for
from .schemas import Page

__all__ = ["Call", "Operation", "Reply", "etag", "matching", "page", "tagged", "versioned"]

log = logging.getLogger("callgate.admin")

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
_encoder = msgspec.json.Encoder()


def etag(answer: msgspec.Struct) -> str:
    """The version of ``answer``, a resource's whole representation: a hash of it."""
    return hashlib.sha256(msgspec.msgpack.encode(answer)).hexdigest()[:20]


def versioned(out: S) -> S:
    """``out`` (an answer with an ``etag`` field) carrying its version: a hash of everything
    else it shows."""
    return msgspec.structs.replace(out, etag=etag(msgspec.structs.replace(out, etag="")))


class _Unchanged(Exception):
    """Raised by an edit whose result is the account it was given: nothing to write."""

    def __init__(self, config: AccountConfig) -> None:
        super().__init__("the edit changes nothing")
        self.config = config


SECRET_FIELDS = frozenset({"ha1_md5", "ha1_sha256"})
"""Fields no answer and no audit entry ever shows (a SIP credential's digests: each is as
good as the password for digest authentication in its realm)."""


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def builtins(resource: msgspec.Struct | None) -> Any:
    """A resource as the audit log keeps it, without secrets."""
    return None if resource is None else _redacted(msgspec.to_builtins(resource))


def _whole_numbers(value: Any) -> Any:
    """``value`` (decoded JSON) with every float that has no fraction made an int: ``2.0`` is
    the integer 2 to JSON Schema and to the clients that write it, not a type error."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One endpoint: the router, the OpenAPI document and the README's permission table all
    read it."""

    method: str
    path: str
    """Under /admin/v1, with ``{name}`` path parameters."""
    handler: Callable[[Call], Awaitable[Reply]]
    summary: str
    permission: str
    """Who may call it, as the README's table says it."""
    tag: str
    body: type | None = None
    query: type | None = None
    response: Any = None
    status: int = 200
    conditional: bool = False
    """The operation honours ``If-Match`` (a write to one resource)."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Call:
    """One request to an operation, once its token is known to be a user's of this account."""

    def __init__(
        self,
        request: web.Request,
        operation: Operation,
        token: TokenRecord,
        service: AccountService,
        store: Store,
        tokens: TokenCache,
        engine: Engine,
    ) -> None:
        self.request = request
        self.engine = engine
        self.operation = operation
        self.token = token
        self.service = service
        self.store = store
        self.tokens = tokens
        self.account_id = token.account_id
        assert token.user_id is not None
        self.user_id: str = token.user_id

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    async def body(self, kind: type[S]) -> S:
        """The body as ``kind``. A number with no fraction (``2.0``) is the integer it equals,
        as JSON Schema has it (the OpenAPI document's ``integer``), wherever it is."""
        # Its Content-Type was checked before the operation ran (``json_body``, app.py).
        raw = await self.request.read()
        return convert(_whole_numbers(parse_json(raw or b"null")), kind)

    def query(self, kind: type[S]) -> S:
        """The query string as ``kind``: an unknown parameter is a 422 like an unknown body
        field. (A repeated one never gets here: ``answers_problems`` refuses it on every
        route, operations without a query schema included.)"""
        return convert(dict(self.request.query), kind, strict=False)

    def actor(self, config: AccountConfig) -> Actor:
        found = actor_for(config, self.user_id)
        if found is None:
            # The token's user is gone (deleting a user revokes their tokens, but this request
            # may have passed the token check just before): the credentials are no good.
            raise Unauthorized(f"the token's user {self.user_id!r} no longer exists")
        return found

    async def read(self, *needed: Permission) -> tuple[AccountConfig, Actor]:
        """The account as stored now, and the actor (holding one of ``needed``, if given)."""
        from .rules import require

        config, _ = await self.service.get(self.account_id)
        actor = self.actor(config)
        if needed:
            require(actor, *needed)
        return config, actor

    def check_match(self, current: str | None) -> None:
        """A stale ``If-Match`` fails the write: one naming no version but ``current``, the
        resource's ETag on the account being edited (None: the resource has no tag, so only
        ``*`` matches). Strong comparison (RFC 9110 section 13.1.1): a weak tag never
        matches."""
        sent = self._if_match()
        if sent is None or sent.strip() == "*":
            return
        if current is None:
            raise PreconditionFailed(
                f"If-Match {sent} names a version, and this resource has none to match",
                field="If-Match",
            )
        tags = [t.strip() for t in sent.split(",")]
        strong = {t.strip('"') for t in tags if not t.startswith("W/")}
        if current not in strong:
            raise PreconditionFailed(
                f"the resource changed since you read it (If-Match {sent}, now \"{current}\"; "
                "a weak tag never matches): read it again and reapply your change",
                field="If-Match",
            )

    def check_absent(self) -> None:
        """``If-Match`` on a resource that does not exist fails, ``*`` included (RFC 9110
        section 13.1.1: a tag can only match a current representation)."""
        sent = self._if_match()
        if sent is not None:
            raise PreconditionFailed(
                f"If-Match {sent} names a version of a resource that does not exist",
                field="If-Match",
            )

    def _if_match(self) -> str | None:
        """``If-Match`` as sent, if it was. One with no tag in it (empty, or only the blanks
        HTTP trims) is refused as invalid, as the OpenAPI document declares: it would fail
        every write with a 412 that names no version the client ever read."""
        sent = self.request.headers.get("If-Match")
        if sent is not None and not sent.strip(" \t"):
            raise InvalidField("If-Match is empty: send the ETag you read, or *",
                               field="If-Match")
        return sent

    async def write(
        self, edit: Callable[[AccountConfig, Actor], tuple[AccountConfig, Sequence[AuditEntry]]]
    ) -> AccountConfig:
        """Apply ``edit`` (pure: it may run again on a newer account) through the domain
        service, with the actor as the account it edits says they are; the account as saved.
        An edit that changes nothing saves nothing and logs nothing: the account as read.
        Errors that name a place in the account name the request's field instead."""

        logged: list[Sequence[AuditEntry]] = []

        def applied(config: AccountConfig) -> tuple[AccountConfig, Sequence[AuditEntry]]:
            new, audit = edit(config, self.actor(config))
            if new == config:
                raise _Unchanged(config)
            logged[:] = [audit]
            return new, audit

        try:
            config, version = await self.service.write(self.account_id, applied)
        except _Unchanged as unchanged:
            return unchanged.config
        except (Conflict, InvalidField) as exc:
            raise self._in_request_terms(exc) from None
        self.log_write(logged[0] if logged else (), version=version)
        return config

    def log_write(self, entries: Sequence[AuditEntry], *, version: int | None = None) -> None:
        """The log line of one admin write (its audit entries say what it changed)."""
        fields: dict[str, object] = {
            "account": self.account_id, "actor": f"user:{self.user_id}",
            "actions": sorted({e.action for e in entries}),
            "targets": [e.target for e in entries],
            "operation": f"{self.request.method} {self.request.path}",
        }
        if version is not None:
            fields["version"] = version
        log.info("admin write", extra={"fields": fields})

    def _in_request_terms(self, error: CallgateError) -> CallgateError:
        """``error`` naming the request's field where the invariants found it in an entry of
        the account (their ``users[3] (ann).default_caller_id`` is the ``default_caller_id``
        the client sent); no field when the request has none that matches."""
        found = violations_of(error)
        if not found or found[0].entry is None:
            return error
        path = found[0].path
        sent = set(getattr(self.operation.body, "__struct_fields__", ()))
        # The body may be a part of the resource (``/geo`` sends the user's ``geo``): skip
        # the leading names the body does not have.
        field = next((path_text(path[i:]) for i, step in enumerate(path) if step in sent), None)
        return type(error)(error.detail, field=field)

    @staticmethod
    def audit(
        actor: Actor, action: str, target: str, before: msgspec.Struct | None,
        after: msgspec.Struct | None,
    ) -> AuditEntry:
        return AuditEntry(
            at_ms=time.time_ns() // 1_000_000,
            actor=actor.ref,
            action=action,
            target=target,
            before=builtins(before),
            after=builtins(after),
        )


def tagged(body: Any, status: int = 200) -> Reply:
    """A reply with ``body`` (a ``versioned`` answer) and its ``etag`` as the ETag header."""
    return Reply(body, status, {"ETag": f'"{body.etag}"'})


def matching(items: Iterable[T], q: str | None, *texts: Callable[[T], str]) -> Iterable[T]:
    """The ``items`` one of whose ``texts`` holds ``q`` (any case): a list's ``q`` filter;
    every item without one."""
    if not q:
        return items
    q = q.lower()
    return [item for item in items if any(q in text(item).lower() for text in texts)]


def page(items: Iterable[T], key: Callable[[T], str], cursor: str | None, limit: int) -> Page[T]:
    """One page of ``items`` in ``key`` order, after ``cursor`` (the last key of the page
    before)."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        ordered = [item for item in ordered if key(item) > cursor]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return Page(items=chosen, next_cursor=key(chosen[-1]) if more and chosen else None)


def find(items: Iterable[T], key: Callable[[T], str], wanted: str, what: str) -> T:
    """The item whose key is ``wanted``; ``NotFound`` (404) otherwise, also for an id of
    another account: the caller's account is the only one searched."""
    for item in items:
        if key(item) == wanted:
            return item
    raise NotFound(f"no {what} {wanted!r}", field=what.replace(" ", "_"))


def encode(value: Any) -> bytes:
    return _encoder.encode(value)
