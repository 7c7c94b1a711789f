"""The SIP lease: a call decided by the SIP front end (a 302) holds its channel for the
account's ``sip_lease_ttl_s`` (a phone that follows the redirect never reports the end), an
HTTP dial for ``lease_ttl_s`` as before; a heartbeat extends either by ``lease_ttl_s``. On
both stores, with a clock the tests move."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, Reason
from engine import configfile
from engine.decide import Engine
from engine.service import AccountService
from engine.store import EmbeddedStore, Store
from engine.store.redis_store import RedisStore
from engine.wire import DialRequest
from sip.redirect import SipSettings, TrustedPeer
from sip.server import Listen, SipServer
from tests.admin_api.support import World, serve_embedded
from tests.conftest import CALLGATE, DEMO, demo_config

from ..redis_support_fixtures import store_url
from .sipmsg import header, invite, status_of

TO = "+12125550187"


class Clock:
    """Time as the store sees it, moved by the tests: the embedded store reads it; the Redis
    store adds how far it moved to the Redis server's own clock."""

    def __init__(self) -> None:
        self.start = self.ms = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.ms

    def skew(self) -> int:
        return self.ms - self.start


@dataclass
class Calls:
    engine: Engine
    store: Store
    clock: Clock

    async def install(self, **settings: object) -> None:
        """The demo account (ana has 2 channels), with ``settings`` changed."""
        config = msgspec.structs.replace(demo_config(), **settings)
        await AccountService(self.store, on_saved=self.engine.install).put(config)

    async def dial(self, call_id: str, *, sip: bool) -> Reason | None:
        """ana dials; None when allowed, else the denial's reason."""
        request = DialRequest(user="ana", to=TO, call_id=call_id)
        decision = await self.engine.dial("demo", request, sip=sip)
        return None if decision.allowed else decision.reason

    def after(self, seconds: float) -> None:
        self.clock.ms += int(seconds * 1000)


@pytest.fixture(params=["embedded", "redis"])
async def calls(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Calls]:
    clock = Clock()
    store: Store
    if request.param == "embedded":
        store = EmbeddedStore(tmp_path / "data", exclusive=True, clock_ms=clock)
    else:
        store = RedisStore(store_url(request, "redis"), skew_ms=clock.skew)
    await store.open()
    try:
        yield Calls(Engine(store), store, clock)
    finally:
        await store.close()


async def test_a_sip_dial_holds_its_channel_for_sip_lease_ttl_s_only(calls: Calls) -> None:
    await calls.install()  # sip_lease_ttl_s 120 (the default), lease_ttl_s 14400
    assert await calls.dial("by-sip", sip=True) is None
    assert await calls.dial("by-http", sip=False) is None
    assert await calls.dial("third", sip=False) is Reason.CHANNEL_LIMIT
    calls.after(119)
    assert await calls.dial("still-held", sip=False) is Reason.CHANNEL_LIMIT
    calls.after(1.5)  # the SIP call's lease has expired; the HTTP call's has not
    assert await calls.dial("freed", sip=False) is None
    assert await calls.dial("no-more", sip=False) is Reason.CHANNEL_LIMIT


async def test_the_sip_lease_is_the_accounts_setting(calls: Calls) -> None:
    await calls.install(sip_lease_ttl_s=30)
    assert await calls.dial("a", sip=True) is None
    assert await calls.dial("b", sip=True) is None
    calls.after(29)
    assert await calls.dial("c", sip=True) is Reason.CHANNEL_LIMIT
    calls.after(1.5)
    assert await calls.dial("d", sip=True) is None


async def test_the_sip_lease_is_never_longer_than_lease_ttl_s(calls: Calls) -> None:
    await calls.install(lease_ttl_s=60, sip_lease_ttl_s=600)
    assert await calls.dial("a", sip=True) is None
    assert await calls.dial("b", sip=True) is None
    calls.after(60.5)
    assert await calls.dial("c", sip=True) is None


async def test_a_heartbeat_extends_a_sip_call_by_lease_ttl_s(calls: Calls) -> None:
    """A PBX that knows the call is up heartbeats it: from then on it is an ordinary lease."""
    await calls.install()
    assert await calls.dial("answered", sip=True) is None
    assert await calls.dial("other", sip=True) is None
    calls.after(100)
    await calls.engine.heartbeat("demo", "answered")
    calls.after(3600)  # far past the SIP lease: only the heartbeat keeps "answered" held
    assert await calls.dial("a", sip=True) is None
    assert await calls.dial("b", sip=True) is Reason.CHANNEL_LIMIT


# -- the SIP front end asks for the SIP lease ----------------------------------------------------


async def test_a_302_from_the_sip_server_takes_the_sip_lease(tmp_path: Path) -> None:
    clock = Clock()
    store = EmbeddedStore(tmp_path / "data", exclusive=True, clock_ms=clock)
    await store.open()
    engine = Engine(store)
    await AccountService(store, on_saved=engine.install).put(
        msgspec.structs.replace(demo_config(), sip_lease_ttl_s=90))
    server = SipServer(engine, SipSettings(
        trusted=(TrustedPeer(network="127.0.0.1/32", account="demo"),)))
    loop = asyncio.get_running_loop()
    pbx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await server.start(Listen("127.0.0.1", 0))
        pbx.bind(("127.0.0.1", 0))
        pbx.setblocking(False)
        sent = invite(via=f"127.0.0.1:{pbx.getsockname()[1]}", extra=("X-Callgate-User: ana",))
        await loop.sock_sendto(pbx, sent, server.bound["udp"])
        async with asyncio.timeout(10):
            reply, _ = await loop.sock_recvfrom(pbx, 65536)
        assert status_of(reply) == 302
        [live] = await store.live_calls("demo")
        assert live.call_id == header(reply, "X-Callgate-Call-Id")[0]
        assert live.lease_expires_ms == clock.ms + 90_000
    finally:
        pbx.close()
        await server.close()
        await store.close()


# -- the setting: import, admin API ------------------------------------------------------------


def _import(path: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CALLGATE), "import", str(path), "--data", str(data)],
                          capture_output=True, text=True, timeout=60)


def _export(data: Path) -> str:
    return subprocess.run([str(CALLGATE), "export", "demo", "--data", str(data)],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_callgate_import_takes_sip_lease_ttl_s(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "demo.toml"
    path.write_text(DEMO.read_text().replace("lease_ttl_s = 14400\n",
                                             "lease_ttl_s = 14400\nsip_lease_ttl_s = 45\n"))
    assert _import(path, data).returncode == 0
    exported = configfile.decode(_export(data).encode(), "toml", source="export")
    assert exported.sip_lease_ttl_s == 45


@pytest.mark.parametrize("value", ["0", "604801", '"two minutes"'])
def test_callgate_import_refuses_a_bad_sip_lease_ttl_s_naming_it(
    tmp_path: Path, value: str
) -> None:
    data, path = tmp_path / "data", tmp_path / "bad.toml"
    assert _import(DEMO, data).returncode == 0
    before = _export(data)
    path.write_text(DEMO.read_text().replace("lease_ttl_s = 14400\n",
                                             f"lease_ttl_s = 14400\nsip_lease_ttl_s = {value}\n"))
    result = _import(path, data)
    assert result.returncode == 2
    assert "$.sip_lease_ttl_s" in result.stderr
    assert _export(data) == before


def test_sip_lease_ttl_s_is_in_the_account_schema() -> None:
    schema = msgspec.json.schema(AccountConfig)
    field = schema["$defs"]["AccountConfig"]["properties"]["sip_lease_ttl_s"]
    assert (field["default"], field["minimum"], field["maximum"]) == (120, 1, 604800)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for world in serve_embedded(tmp_path / "data"):
        yield world


async def test_the_admin_api_reads_and_changes_sip_lease_ttl_s(world: World) -> None:
    owner = world.api("olivia")
    account = await owner.get("/account")
    assert account.body["sip_lease_ttl_s"] == 120
    changed = await owner.patch("/account", {"sip_lease_ttl_s": 300},
                                headers={"If-Match": account.etag})
    assert changed.status == 200 and changed.body["sip_lease_ttl_s"] == 300
    assert (await world.config())[0].sip_lease_ttl_s == 300
    assert (await owner.get("/account")).body["sip_lease_ttl_s"] == 300


@pytest.mark.parametrize("value", [0, 604801, "120"])
async def test_the_admin_api_refuses_a_bad_sip_lease_ttl_s_and_changes_nothing(
    world: World, value: object
) -> None:
    version = await world.version()
    reply = await world.api("olivia").patch("/account", {"sip_lease_ttl_s": value})
    assert reply.status == 422, reply.body
    assert "sip_lease_ttl_s" in str(reply.body), reply.body
    assert await world.version() == version


async def test_the_openapi_document_has_sip_lease_ttl_s(world: World) -> None:
    document = (await world.api(None).get("/openapi.json")).body
    schemas = document["components"]["schemas"]
    assert "sip_lease_ttl_s" in schemas["AccountOut"]["properties"]
    assert "sip_lease_ttl_s" in schemas["AccountPatch"]["properties"]

