"""The ``callgate`` command line: import, export, schema and tokens, run as a user would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, SipCredential
from engine import configfile
from engine.store import AuditQuery, EmbeddedStore

from ..conftest import CALLGATE, DEMO, Server, another_account, demo_config


def callgate(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALLGATE), *args, "--data", str(data)] if args[0] != "schema"
        else [str(CALLGATE), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_then_export_is_lossless(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert callgate("import", str(DEMO), data=data).returncode == 0
    toml_out = callgate("export", "demo", data=data)
    assert toml_out.returncode == 0
    exported = configfile.decode(toml_out.stdout.encode(), "toml")
    assert exported == demo_config()
    # and the exported file imports back to the same thing, in JSON too
    json_file = tmp_path / "demo.json"
    exported_json = callgate("export", "demo", "--format", "json", "-o", str(json_file), data=data)
    assert exported_json.returncode == 0
    assert callgate("import", str(json_file), data=data).returncode == 0
    again = callgate("export", "demo", data=data)
    assert again.stdout == toml_out.stdout


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text: text.replace('email = "ana@demo.example"', 'email = "not-an-email"'),
         "$.users[1].email"),
        (lambda text: text.replace('max_channels = 2\n', 'max_channels = "two"\n', 1),
         "$.users[1].max_channels"),
        (lambda text: text.replace('name = "Ana Agent"', 'name = "Ana Agent"\nnickname = "A"'),
         "nickname"),
        (lambda text: text.replace('default_caller_id = "+12125550101"\nmax_channels = 2',
                                   'default_caller_id = "+12125559999"\nmax_channels = 2'),
         "users[1] (ana).default_caller_id"),
        (lambda text: text.replace('owner = "olivia"', 'owner = "nobody"'), "owner"),
        (lambda text: text + "\n[[[broken", "not valid TOML"),
        (lambda text: text.replace('area_codes = ["212", "646"', 'area_codes = ["1212", "646"'),
         "users[3] (gina).geo.area_codes[0].area_codes[0]: no number of +1 starts with '1212': "
         "an area code leaves out the calling code 1; write '212'"),
        (lambda text: text.replace('status = "released"\n',
                                   'status = "released"\ndepartment = "sales"\n'),
         "numbers[6] (+13055550140).department: +13055550140 is released, and a released number "
         "is in no department's pool"),
    ],
    ids=["bad-email", "wrong-type", "unknown-field", "unknown-number", "unknown-owner", "bad-toml",
         "area-code-with-calling-code", "released-number-in-a-pool"],
)
def test_invalid_import_names_entry_and_changes_nothing(
    tmp_path: Path, edit: object, named: str
) -> None:
    data = tmp_path / "data"
    assert callgate("import", str(DEMO), data=data).returncode == 0
    before = callgate("export", "demo", data=data).stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(DEMO.read_text()))  # type: ignore[operator]
    result = callgate("import", str(bad), data=data)
    assert result.returncode == 2
    assert named in result.stderr
    assert callgate("export", "demo", data=data).stdout == before


def test_import_of_new_account_is_all_or_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = msgspec.structs.replace(demo_config(), id="other", owner="nobody")
    path = tmp_path / "other.toml"
    path.write_bytes(configfile.encode(config, "toml"))
    assert callgate("import", str(path), data=data).returncode == 2
    result = callgate("export", "other", data=data)
    assert result.returncode == 2 and "no account 'other'" in result.stderr


def test_schema_is_json_schema_of_account_file() -> None:
    result = subprocess.run([str(CALLGATE), "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    account = schema["$defs"]["AccountConfig"]
    assert {"id", "owner", "users", "departments", "numbers"} <= set(account["properties"])
    assert account["additionalProperties"] is False


def test_token_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    callgate("import", str(DEMO), data=data)
    created = callgate("token", "create", "demo", "--name", "dialer", data=data)
    assert created.returncode == 0 and created.stdout.startswith("cg_")
    listed = callgate("token", "list", "demo", data=data).stdout
    assert "dialer" in listed and created.stdout.strip() not in listed
    assert callgate("token", "revoke", "demo", "dialer", data=data).returncode == 0
    assert "dialer" not in callgate("token", "list", "demo", data=data).stdout


async def test_tokens_made_and_revoked_on_the_command_line_are_audited(tmp_path: Path) -> None:
    data = tmp_path / "data"
    callgate("bootstrap", "acme", "--name", "Acme", "--owner", "olivia", "--email",
             "olivia@acme.example", data=data)
    callgate("token", "create", "acme", "--name", "dialer", data=data)
    callgate("token", "revoke", "acme", "dialer", data=data)
    store = EmbeddedStore(data)
    await store.open()
    try:
        entries, _ = await store.audit_log("acme", AuditQuery(limit=10))
    finally:
        await store.close()
    done = [(e.actor, e.action, (e.after or e.before or {}).get("name")) for e in entries]
    assert done == [("cli", "token.revoke", "dialer"), ("cli", "token.create", "dialer"),
                    ("cli", "token.create", "owner"), ("cli", "account.create", "Acme")]
    assert all("hash" not in (e.after or e.before or {}) for e in entries)


def test_an_import_with_another_accounts_number_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert callgate("import", str(DEMO), data=data).returncode == 0
    copy = tmp_path / "copy.toml"  # the demo file under another id: the same numbers
    copy.write_bytes(configfile.encode(
        msgspec.structs.replace(demo_config(), id="copycat", sip_domain=None), "toml"))
    refused = callgate("import", str(copy), data=data)
    assert refused.returncode == 2, refused.stderr
    assert "belongs to another account" in refused.stderr and "demo" not in refused.stderr
    assert "copycat" not in callgate("export", "copycat", data=data).stdout
    mine = tmp_path / "mine.toml"
    mine.write_bytes(configfile.encode(another_account(demo_config(), "copycat", 1), "toml"))
    assert callgate("import", str(mine), data=data).returncode == 0


def test_an_import_over_an_account_meets_the_sip_domain_rule(tmp_path: Path) -> None:
    """A replacement is the change ``replace_account``: a new SIP domain while a user keeps
    SIP credentials (a digest over the old domain) is refused, and nothing changes."""
    data = tmp_path / "data"
    login = SipCredential(username="ana", ha1_md5="0" * 32, ha1_sha256="0" * 64)
    demo = demo_config()
    with_login = msgspec.structs.replace(
        demo, sip_domain="demo.sip.example",
        users=tuple(msgspec.structs.replace(u, sip=login) if u.id == "ana" else u
                    for u in demo.users))
    first = tmp_path / "first.toml"
    first.write_bytes(configfile.encode(with_login, "toml"))
    assert callgate("import", str(first), data=data).returncode == 0
    before = callgate("export", "demo", data=data).stdout
    moved = tmp_path / "moved.toml"
    moved.write_bytes(configfile.encode(
        msgspec.structs.replace(with_login, sip_domain="new.sip.example"), "toml"))
    refused = callgate("import", str(moved), data=data)
    assert refused.returncode == 2, refused.stderr
    assert "SIP credentials in 'demo.sip.example'" in refused.stderr and "'ana'" in refused.stderr
    assert callgate("export", "demo", data=data).stdout == before


def test_a_token_can_expire(tmp_path: Path) -> None:
    data = tmp_path / "data"
    callgate("import", str(DEMO), data=data)
    assert callgate("token", "create", "demo", "--name", "temp", "--expires-in", "30",
                    data=data).returncode == 0
    listed = {line.split("\t")[0]: line for line in
              callgate("token", "list", "demo", data=data).stdout.splitlines()}
    assert "expires=20" in listed["temp"] and "last_used=never" in listed["temp"]
    bad = callgate("token", "create", "demo", "--name", "x", "--expires-in", "-1", data=data)
    assert bad.returncode == 2 and "0 to 3650 days" in bad.stderr


def test_token_for_unknown_account_refused(tmp_path: Path) -> None:
    result = callgate("token", "create", "nope", data=tmp_path / "data")
    assert result.returncode == 2 and "no account 'nope'" in result.stderr


def test_tokens_stored_only_as_hashes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    callgate("import", str(DEMO), data=data)
    token = callgate("token", "create", "demo", data=data).stdout.strip()
    for file in data.iterdir():
        if file.is_file():
            assert token.encode() not in file.read_bytes(), file


def test_second_server_on_same_data_dir_refused(server: Server, tmp_path: Path) -> None:
    data = server.data_dir
    result = subprocess.run(
        [str(CALLGATE), "serve", "--data", str(data), "--port", "1"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1 and "another callgate server" in result.stderr


def test_config_change_from_cli_reaches_running_server(server: Server, tmp_path: Path) -> None:
    import urllib.request

    srv = server
    config: AccountConfig = demo_config()
    ana = next(u for u in config.users if u.id == "ana")
    config = msgspec.structs.replace(
        config,
        users=tuple(msgspec.structs.replace(u, default_caller_id="+13125550120") if u is ana else u
                    for u in config.users),
    )
    path = tmp_path / "changed.toml"
    path.write_bytes(configfile.encode(config, "toml"))
    assert callgate("import", str(path), data=srv.data_dir).returncode == 0

    def caller_id() -> str:
        request = urllib.request.Request(
            srv.url + "/v1/explain",
            data=b'{"user": "ana", "to": "(212) 555-0187"}',
            headers={**srv.headers, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["caller_id"])

    import time

    deadline = time.monotonic() + 5
    while caller_id() != "+13125550120":
        assert time.monotonic() < deadline, "the running server never picked up the change"
        time.sleep(0.2)
