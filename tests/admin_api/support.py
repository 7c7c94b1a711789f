"""The admin API in-process over a real store: two accounts, a token per user, and a client
that speaks to the app over real HTTP on a local port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from admin_api import PREFIX, build_admin_app
from admin_api.presets import ADMIN_PERMISSIONS
from callerid import (
    AccountConfig,
    Department,
    Group,
    Permission,
    PhoneNumber,
    User,
)
from engine.decide import Engine
from engine.http import TOKENS, build_app
from engine.metrics import Metrics
from engine.service import AccountService
from engine.store import AuditEntry, AuditQuery, EmbeddedStore, Store
from engine.tokens import AuthLimits, issue_token

__all__ = ["VALID_BODIES", "Api", "Reply", "World", "acme", "other", "refused", "serve"]

P = Permission
CALLING = (P.DIAL_OUT_OF_PLAN, P.CALLERID_CHOOSE)


def acme() -> AccountConfig:
    """Account A: the owner olivia; alice, an admin; mark, a manager; ann and bob, agents."""
    def user(uid: str, department: str | None, **kw: Any) -> User:
        return User(id=uid, email=f"{uid}@acme.example", name=uid.title(),
                    department=department, **kw)

    return AccountConfig(
        id="acme", name="Acme", owner="olivia", default_department="staff",
        default_caller_id="+12125550100",
        departments=(
            Department(id="staff", name="Staff", permissions=(P.DIAL_OUT_OF_PLAN,)),
            Department(id="admins", name="Admins",
                       permissions=tuple(sorted(ADMIN_PERMISSIONS | set(CALLING)))),
            Department(id="managers", name="Managers", permissions=(
                P.DIAL_OUT_OF_PLAN, P.MONITORING_USE, P.NUMBERS_MANAGE, P.USERS_MANAGE,
                P.USERS_SETTINGS)),
        ),
        users=(
            user("olivia", None),
            user("alice", "admins", max_channels=3),
            user("mark", "managers", max_channels=2, supervised_groups=("east",)),
            user("ann", "staff", max_channels=2),
            user("bob", "staff", max_channels=1),
        ),
        numbers=(
            PhoneNumber(number="+12125550100", name="Main"),
            PhoneNumber(number="+12125550111", name="Staff line", department="staff"),
            PhoneNumber(number="+13105550122", name="West"),
        ),
        groups=(Group(id="east", name="East", members=("ann",)),
                Group(id="west", name="West", members=("bob",))),
    )


def other() -> AccountConfig:
    """Account B, whose ids a token of account A must never reach."""
    return AccountConfig(
        id="other", name="Other", owner="zed", default_department="crew",
        departments=(Department(id="crew", name="Crew"), Department(id="spare", name="Spare")),
        users=(User(id="zed", email="zed@other.example"),
               User(id="zoe", email="zoe@other.example", department="crew")),
        numbers=(PhoneNumber(number="+14155550133", name="Other main"),),
        groups=(Group(id="team", name="Team", members=("zoe",)),),
    )


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def etag(self) -> str:
        return str(self.headers.get("ETag", ""))


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self._session = session
        self._base = base
        self.token = token

    async def call(
        self, method: str, path: str, json: Any = None, *, headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None, prefix: str = PREFIX, raw: bytes | None = None,
    ) -> Reply:
        """``json`` is encoded as the body; ``raw`` is sent as it is (as JSON)."""
        sent = dict(headers or {})
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else None if json is None else msgspec.json.encode(json)
        if data is not None:
            sent["Content-Type"] = "application/json"
        async with self._session.request(method, self._base + prefix + path, data=data,
                                         headers=sent, params=params) as response:
            raw = await response.read()
            body = msgspec.json.decode(raw) if raw and "json" in response.content_type else raw
            return Reply(response.status, body, response.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, json, **kw)

    async def patch(self, path: str, json: Any, **kw: Any) -> Reply:
        return await self.call("PATCH", path, json, **kw)

    async def put(self, path: str, json: Any, **kw: Any) -> Reply:
        return await self.call("PUT", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)


@dataclass
class World:
    store: Store
    engine: Engine
    base: str
    session: aiohttp.ClientSession
    tokens: dict[str, str]
    """A user's token by user id (both accounts), and ``service`` for acme's service token."""

    def api(self, who: str | None) -> Api:
        return Api(self.session, self.base, None if who is None else self.tokens[who])

    async def config(self, account_id: str = "acme") -> tuple[AccountConfig, int]:
        return await AccountService(self.store).get(account_id)

    async def version(self) -> int:
        """acme's configuration version."""
        return (await self.config())[1]

    async def add_user(self, user_id: str, department: str, *permissions: Permission) -> Api:
        """A user of acme in ``department`` (created with ``permissions`` if it does not
        exist), saved directly, and an API acting as them."""
        config, version = await self.config()
        departments = config.departments
        if all(d.id != department for d in departments):
            departments = (*departments, Department(id=department, name=department.title(),
                                                    permissions=tuple(sorted(permissions))))
        user = User(id=user_id, email=f"{user_id}@acme.example", department=department)
        await AccountService(self.store, on_saved=self.engine.install).apply(
            "acme", lambda c: msgspec.structs.replace(
                c, departments=departments, users=(*c.users, user)),
            expected_version=version)
        self.tokens[user_id] = await issue_token(self.store, "acme", f"{user_id}-token", user_id)
        return self.api(user_id)

    async def audit(self, **query: Any) -> list[AuditEntry]:
        """acme's audit log, newest first."""
        return (await self.store.audit_log("acme", AuditQuery(limit=500, **query)))[0]


async def refused(world: World, reply: Reply, status: int, field: str | None,
                  version: int) -> None:
    """``reply`` is a problem with ``status`` naming ``field``, and acme is still at
    ``version``: a refused change changes nothing."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body.get("field") == field, reply.body
    assert await world.version() == version, "a refused change must write nothing"


async def serve(store: Store) -> AsyncIterator[World]:
    engine = Engine(store)
    service = AccountService(store, on_saved=engine.install)
    for config in (acme(), other()):
        await service.put(config)
    tokens = {u.id: await issue_token(store, "acme", f"{u.id}-token", u.id) for u in acme().users}
    tokens |= {u.id: await issue_token(store, "other", f"{u.id}-token", u.id)
               for u in other().users}
    tokens["service"] = await issue_token(store, "acme", "dialer")
    metrics = Metrics(CollectorRegistry(), store.lease_counts)
    # Every test here sends its requests from one address, many without a valid token on
    # purpose (the fuzzer's above all): throttling them is tests/http/test_auth_throttle.py's.
    app = build_app(store, engine, metrics, poll_s=3600,
                    mount=lambda app: app.add_subapp(
                        PREFIX, build_admin_app(store, engine, app[TOKENS])),
                    auth_limits=AuthLimits(failures=100_000))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield World(store, engine, str(server.make_url("")).rstrip("/"), session, tokens)
    finally:
        await server.close()


async def serve_embedded(data: Path) -> AsyncIterator[World]:
    """``serve`` over an embedded store in ``data``, opened for this test alone."""
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    try:
        async for world in serve(store):
            yield world
    finally:
        await store.close()


VALID_BODIES: dict[str, Any] = {
    "UserPatch": {"name": "x"},
    "UserPermissions": {"extra_permissions_enabled": False},
    "PresetApply": {"preset": "none"},
    "MoveUser": {"department": "staff"},
    "GeoConfig": {},
    "GeoCopy": {"from_user": "ann"},
    "DepartmentPatch": {"name": "x"},
    "DepartmentPermissions": {"permissions": []},
    "NumberPatch": {"name": "x"},
    "DncImport": {"numbers": ["+12125550187"]},
    "GroupPatch": {"name": "x"},
    "GroupMembers": {"members": []},
    "SipLoginSet": {"username": "x"},
    "SipPasswordSet": {},
    "SipLoginPatch": {"enabled": False},
}
"""A valid body for each admin operation that takes one, by its schema's name (so no 422
answers before what a test looks at)."""
