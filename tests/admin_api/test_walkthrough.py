"""The README's walk-through, step by step against a real ``callgate serve``: bootstrap, a
number, a user, a service token, a first decision, the audit log; and the README's table of
permissions is the one the code declares."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp

from admin_api import permission_table
from tests.conftest import CALLGATE, NO_DRAIN, ROOT, Server


def test_the_readme_lists_every_endpoint_with_its_permission() -> None:
    assert permission_table() in (ROOT / "README.md").read_text()


def test_bootstrap_refuses_an_account_that_exists(tmp_path: Path) -> None:
    args = [str(CALLGATE), "bootstrap", "acme", "--name", "Acme", "--owner", "olivia",
            "--email", "olivia@acme.example", "--data", str(tmp_path / "data")]
    first = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0 and first.stdout.startswith("cg_"), first.stderr
    again = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert again.stdout == ""


async def test_from_bootstrap_to_a_first_decision(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CALLGATE), "bootstrap", "acme", "--name", "Acme", "--owner", "olivia",
         "--email", "olivia@acme.example", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30,
    )
    owner = done.stdout.strip()
    server = Server(tmp_path / "data", demo=None, token=owner, args=NO_DRAIN).start()
    try:
        api = f"{server.url}/admin/v1"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {owner}"}) as s:
            async def call(method: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
                async with s.request(method, api + path, json=body) as reply:
                    assert reply.status in (200, 201), (path, await reply.text())
                    return await reply.json()  # type: ignore[no-any-return]

            await call("POST", "/numbers", {"number": "+12125550100", "name": "Main line"})
            await call("PATCH", "/account", {"default_caller_id": "+12125550100"})
            ana = await call("POST", "/users", {"id": "ana", "email": "ana@acme.example",
                                                 "max_channels": 2})
            assert ana["department"] == "default"
            dialer = (await call("POST", "/tokens", {"name": "dialer", "kind": "service"}))["token"]
            async with s.post(f"{server.url}/v1/dial",
                              json={"user": "ana", "to": "(212) 555-0187"},
                              headers={"Authorization": f"Bearer {dialer}"}) as reply:
                decision = await reply.json()
            assert decision["allowed"] and decision["caller_id"] == "+12125550100"
            assert decision["rule"] == "account_default"
            audit = (await call("GET", "/audit?limit=3"))["items"]
            assert [e["action"] for e in audit] == ["token.create", "user.create",
                                                    "account.update"]
    finally:
        server.stop()


async def test_commands_on_the_servers_machine_are_in_the_audit_log(tmp_path: Path) -> None:
    from engine.store import AuditQuery, EmbeddedStore
    from tests.conftest import DEMO

    data = str(tmp_path / "data")
    for args in (["bootstrap", "acme", "--name", "Acme", "--owner", "olivia",
                  "--email", "olivia@acme.example"], ["import", str(DEMO)]):
        done = subprocess.run([str(CALLGATE), *args, "--data", data], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    store = EmbeddedStore(tmp_path / "data")
    await store.open()
    try:
        acme, _ = await store.audit_log("acme", AuditQuery())
        demo, _ = await store.audit_log("demo", AuditQuery())
    finally:
        await store.close()
    assert [(e.actor, e.action) for e in acme] == [("cli", "token.create"),  # the owner's
                                                   ("cli", "account.create")]
    assert acme[1].target == "account:acme"
    assert [(e.actor, e.action) for e in demo] == [("cli", "account.import")]
