"""The ``callgate`` command line.

Settings (the store, the server's ports, SIP, logs...) are ``callgate.settings``: each a flag,
a ``CALLGATE_*`` variable and a config-file key, resolved and checked before any command
runs. A bad one is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from callerid import User
from engine import changes, configfile, dnc, loadtest, logs
from engine.errors import CallgateError, ConfigurationError, NotFound, RequestError
from engine.service import AccountService
from engine.store import AuditEntry, Store, open_store
from engine.store.redis_store import RedisSettings
from engine.tokens import described, issue_token
from engine.wire import rfc3339

from . import settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callgate", description="Outbound-call decisions: permissions, channels, caller ID."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help)
        settings.add_arguments(p, name)
        return p

    command("serve", "run the decision API, the admin API and (with --sip) the SIP front end")

    boot_p = command("bootstrap", "create an account and its owner; print the owner's token, "
                     "once")
    boot_p.add_argument("account", help="the new account's id")
    boot_p.add_argument("--name", required=True, help="the account's name")
    boot_p.add_argument("--owner", required=True, metavar="USER_ID", help="the owner's user id")
    boot_p.add_argument("--email", required=True, help="the owner's email")
    boot_p.add_argument("--region", default="US",
                        help="default region for national numbers (default US)")

    import_p = command("import", "create or replace an account from a file")
    import_p.add_argument("file", help="a .toml or .json account file")

    export_p = command("export", "write an account's configuration")
    export_p.add_argument("account")
    export_p.add_argument("--format", choices=["toml", "json"], default="toml")
    export_p.add_argument("--output", "-o", metavar="FILE", help="default: standard output")

    sub.add_parser("schema", help="print the JSON Schema of account files")

    loadtest_p = command("loadtest", "load a running callgate with dials and report what it "
                         "answered: rate, latency percentiles, outcomes")
    loadtest.add_arguments(loadtest_p)

    config_p = sub.add_parser("config", help="the effective settings")
    config_sub = config_p.add_subparsers(dest="config_command", required=True)
    show_p = config_sub.add_parser(
        "show", help="print every setting of `callgate serve` given these flags, the "
        "environment and the config file, with where each came from (secrets masked)")
    settings.add_arguments(show_p, "serve")
    show_p.add_argument("--format", choices=["text", "json"], default="text",
                        dest="show_format")

    token_p = sub.add_parser("token", help="manage API tokens")
    token_sub = token_p.add_subparsers(dest="token_command", required=True)
    create_p = command("create", "create a token, shown once", token_sub)
    create_p.add_argument("account")
    create_p.add_argument("--name", default="default")
    create_p.add_argument(
        "--user", metavar="USER_ID",
        help="a token acting as this user (both APIs, with the user's permissions); without "
        "it, a service token (the decision API only)",
    )
    create_p.add_argument(
        "--expires-in", metavar="DAYS", type=_days,
        help="the token stops working this many days from now (default: never)",
    )
    list_p = command("list", "list an account's tokens", token_sub)
    list_p.add_argument("account")
    revoke_p = command("revoke", "revoke tokens by name", token_sub)
    revoke_p.add_argument("account")
    revoke_p.add_argument("name")

    dnc_p = sub.add_parser("dnc", help="an account's do-not-call list")
    dnc_sub = dnc_p.add_subparsers(dest="dnc_command", required=True)
    dnc_import_p = command("import", "add the numbers of a file (one a line, as dialled) to "
                           "the list; a bad line adds none of them", dnc_sub)
    dnc_import_p.add_argument("account")
    dnc_import_p.add_argument("file", help="a text file of numbers, one a line ('-': stdin)")
    dnc_remove_p = command("remove", "take the numbers of a file off the list", dnc_sub)
    dnc_remove_p.add_argument("account")
    dnc_remove_p.add_argument("file")
    dnc_count_p = command("count", "how many numbers the list holds", dnc_sub)
    dnc_count_p.add_argument("account")
    return parser


def _show(values: Mapping[str, settings.Resolved], fmt: str) -> int:
    if fmt == "json":
        shown = [{"key": key, "flag": r.setting.flag, "env": r.setting.env,
                  "value": settings.mask(r), "source": r.source, "secret": r.setting.secret}
                 for key, r in values.items()]
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode({"settings": shown})))
        print()
        return 0
    width = max(len(key) for key in values)
    for key, r in values.items():
        print(f"{key:<{width}}  {settings.mask(r) or '-':<40}  ({r.source})")
    return 0


async def _with_store(
    data: Path, redis: RedisSettings | None, work: Callable[[Store], Awaitable[int]]
) -> int:
    store = open_store(data, redis, serving=False)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def _import(store: Store, path: Path) -> int:
    data = await asyncio.to_thread(path.read_bytes)
    config = configfile.decode(data, configfile.format_for(path), source=str(path))
    entry = AuditEntry(at_ms=time.time_ns() // 1_000_000, actor="cli", action="account.import",
                       target=f"account:{config.id}", after={"file": str(path)})
    version = await AccountService(store).put(config, [entry])
    print(f"imported account {config.id!r} (version {version})")
    return 0


def _read_numbers(path: str, region: str) -> list[str]:
    """The numbers of the file at ``path`` (``-``: stdin), as E.164, read in a thread."""
    if path == "-":
        return dnc.parse_numbers(sys.stdin, region)
    with open(path, encoding="utf-8", errors="replace") as lines:
        return dnc.parse_numbers(lines, region)


async def _dnc(store: Store, command: str, account: str, path: str | None) -> int:
    config, _ = await AccountService(store).get(account)
    if command == "count":
        print(await store.dnc_count(account))
        return 0
    assert path is not None
    started = time.monotonic()
    # Every line is read and checked before anything is written: a bad one changes nothing.
    numbers = await asyncio.to_thread(_read_numbers, path, config.default_region)
    adding = command == "import"
    entry = AuditEntry(at_ms=time.time_ns() // 1_000_000, actor="cli",
                       action="dnc.import" if adding else "dnc.remove", target="dnc",
                       after={"file": path, "numbers": len(numbers)})
    write = store.dnc_add if adding else store.dnc_remove
    changed = await write(account, numbers, [entry])
    took = time.monotonic() - started
    print(f"{len(numbers)} numbers read, {changed} {'added' if adding else 'removed'}; the list "
          f"of {account!r} holds {await store.dnc_count(account)} ({took:.1f} s)")
    return 0


async def _export(store: Store, account: str, fmt: configfile.Format, out: str | None) -> int:
    config, _ = await AccountService(store).get(account)
    data = configfile.encode(config, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        await asyncio.to_thread(Path(out).write_bytes, data)
    return 0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 3650:
        raise argparse.ArgumentTypeError(f"{text!r}: a token expires in 0 to 3650 days")
    return days


async def _token_create(
    store: Store, account: str, name: str, user: str | None, expires_in_days: float | None
) -> int:
    config, _ = await AccountService(store).get(account)
    if user is not None and all(u.id != user for u in config.users):
        raise NotFound(f"no user {user!r} in account {account!r}", field="user")
    expires_ms = None
    if expires_in_days is not None:
        expires_ms = time.time_ns() // 1_000_000 + round(expires_in_days * 86_400_000)
    print(await issue_token(store, account, name, user, actor="cli", expires_ms=expires_ms))
    return 0


async def _bootstrap(store: Store, args: argparse.Namespace) -> int:
    owner = User(id=args.owner, email=args.email)
    config = changes.create_account(
        account_id=args.account, name=args.name, owner=owner, default_region=args.region
    )
    entry = AuditEntry(at_ms=time.time_ns() // 1_000_000, actor="cli", action="account.create",
                       target=f"account:{config.id}", after={"name": config.name,
                                                             "owner": owner.id})
    await AccountService(store).create(config, [entry])
    token = await issue_token(store, config.id, "owner", owner.id, actor="cli")
    print(f"created account {config.id!r} with owner {owner.id!r}; the owner's token "
          "(shown this once):", file=sys.stderr)
    print(token)
    return 0


async def _token_list(store: Store, account: str) -> int:
    for record in await store.list_tokens(account):
        expires = "never" if record.expires_ms is None else rfc3339(record.expires_ms)
        used = "never" if record.last_used_ms is None else rfc3339(record.last_used_ms)
        print(f"{record.name}\tcreated_ms={record.created_ms}\tsha256={record.hash[:12]}..."
              f"\texpires={expires}\tlast_used={used}")
    return 0


async def _token_revoke(store: Store, account: str, name: str) -> int:
    count = 0
    for record in await store.list_tokens(account):
        if record.name != name:
            continue
        entry = AuditEntry(at_ms=time.time_ns() // 1_000_000, actor="cli", action="token.revoke",
                           target=f"token:{record.id}", before=described(record))
        count += await store.remove_token(account, record.hash, entry)
    if not count:
        raise NotFound(f"no token named {name!r} in account {account!r}")
    print(f"revoked {count} token(s) named {name!r}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        command = "serve" if args.command == "config" else args.command
        if args.command == "token":
            command = args.token_command
        if args.command == "dnc":
            command = args.dnc_command
        values = settings.resolve(command, vars(args), os.environ)
        logs.configure(values["log_level"].value, values["log_format"].value)
        settings.warn_unknown(os.environ)
        if args.command == "config":
            return _show(values, args.show_format)
        if args.command == "loadtest":
            from engine.loadtest.run import main as run_loadtest  # aiohttp loads only for a run

            return run_loadtest(args)
        if args.command == "schema":
            sys.stdout.buffer.write(
                msgspec.json.format(msgspec.json.encode(configfile.json_schema()), indent=2)
            )
            print()
            return 0
        if args.command == "serve":
            from .server import serve, serve_workers  # the servers load only to serve

            serve_settings = settings.serve_settings(values)
            if serve_settings.workers > 1:
                serve_workers(serve_settings)
            else:
                asyncio.run(serve(serve_settings))
            return 0
        data: Path = values["data"].value
        redis: RedisSettings | None = values["redis_url"].value
        if args.command == "bootstrap":
            return asyncio.run(_with_store(data, redis, lambda s: _bootstrap(s, args)))
        if args.command == "import":
            return asyncio.run(_with_store(data, redis, lambda s: _import(s, Path(args.file))))
        if args.command == "export":
            return asyncio.run(_with_store(
                data, redis, lambda s: _export(s, args.account, args.format, args.output)))
        if args.command == "dnc":
            return asyncio.run(_with_store(data, redis, lambda s: _dnc(
                s, args.dnc_command, args.account, getattr(args, "file", None))))
        if args.token_command == "create":
            return asyncio.run(_with_store(
                data, redis,
                lambda s: _token_create(s, args.account, args.name, args.user, args.expires_in)))
        if args.token_command == "list":
            return asyncio.run(_with_store(data, redis, lambda s: _token_list(s, args.account)))
        return asyncio.run(
            _with_store(data, redis, lambda s: _token_revoke(s, args.account, args.name))
        )
    except (ConfigurationError, RequestError) as exc:
        print(f"callgate: error: {exc.detail}", file=sys.stderr)
        return 2
    except CallgateError as exc:
        print(f"callgate: error: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
