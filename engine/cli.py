"""The ``callgate`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgspec

from callerid import User
from sip.digest import ALGORITHMS
from sip.redirect import SipSettings
from sip.server import SipServeSettings, parse_listen, parse_trusted

from . import changes, configfile
from .errors import CallgateError, ConfigurationError, NotFound, RequestError
from .service import AccountService
from .store import AuditEntry, Store, open_store
from .store.redis_store import RedisSettings, parse_redis_url
from .tokens import described, issue_token

__all__ = ["main"]

DEFAULT_DATA_DIR = ".callgate"


def _data_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("CALLGATE_DATA") or DEFAULT_DATA_DIR)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def _count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 256:
        raise argparse.ArgumentTypeError(f"not a number of processes from 1 to 256: {value!r}")
    return int(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.05 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"out of range 0.05-3600 seconds: {value!r}")
    return seconds


def _redis(value: str | None) -> RedisSettings | None:
    url = value or os.environ.get("CALLGATE_REDIS_URL")
    return parse_redis_url(url) if url else None


def _env_float(name: str, default: float) -> float:
    return _seconds(os.environ.get(name, str(default)))


def _sip_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    sip = p.add_argument_group("SIP front end (a redirect server for softphones and PBXs)")
    sip.add_argument("--sip", metavar="HOST:PORT", default=env("CALLGATE_SIP"),
                     help="listen for SIP over UDP and TCP here, e.g. 0.0.0.0:5060 (env "
                     "CALLGATE_SIP; default: no SIP)")
    sip.add_argument("--sip-tls", metavar="HOST:PORT", default=env("CALLGATE_SIP_TLS"),
                     help="listen for SIP over TLS here, e.g. 0.0.0.0:5061; needs --sip-cert "
                     "and --sip-key (env CALLGATE_SIP_TLS)")
    sip.add_argument("--sip-cert", metavar="FILE", default=env("CALLGATE_SIP_CERT"),
                     help="PEM certificate chain for --sip-tls (env CALLGATE_SIP_CERT)")
    sip.add_argument("--sip-key", metavar="FILE", default=env("CALLGATE_SIP_KEY"),
                     help="PEM private key for --sip-tls (env CALLGATE_SIP_KEY)")
    sip.add_argument("--sip-gateway", metavar="HOST[:PORT]", default=env("CALLGATE_SIP_GATEWAY"),
                     help="where a 302 sends the call (its Contact host); default: the "
                     "Request-URI's host (env CALLGATE_SIP_GATEWAY)")
    sip.add_argument("--sip-trusted", metavar="CIDR[=ACCOUNT]", action="append",
                     default=[t for t in env("CALLGATE_SIP_TRUSTED", "").split(",") if t],
                     help="a trusted peer network (a PBX that authenticates its own users): "
                     "its INVITEs name the user instead of passing digest auth; repeat for "
                     "more (env CALLGATE_SIP_TRUSTED, comma-separated)")
    sip.add_argument("--sip-user-header", metavar="HEADER", default=env(
        "CALLGATE_SIP_USER_HEADER", "X-Callgate-User"),
                     help="how a trusted peer names the user: this header, or 'From' for the "
                     "From URI's user part (env CALLGATE_SIP_USER_HEADER; default "
                     "X-Callgate-User)")
    sip.add_argument("--sip-digest", metavar="ALGORITHMS", default=env(
        "CALLGATE_SIP_DIGEST", "MD5,SHA-256"),
                     help="digest algorithms every challenge offers, in this order (env "
                     "CALLGATE_SIP_DIGEST; default MD5,SHA-256: clients that read only the "
                     "first challenge mostly know only MD5)")
    sip.add_argument("--sip-ban-after", metavar="N", type=_count,
                     default=_count(env("CALLGATE_SIP_BAN_AFTER", "10")),
                     help="failed digest answers from one address that ban it (env "
                     "CALLGATE_SIP_BAN_AFTER; default 10)")
    sip.add_argument("--sip-ban-window", metavar="SECONDS", type=_seconds,
                     default=_env_float("CALLGATE_SIP_BAN_WINDOW_S", 60),
                     help="...within this many seconds (env CALLGATE_SIP_BAN_WINDOW_S; "
                     "default 60)")
    sip.add_argument("--sip-ban-for", metavar="SECONDS", type=_seconds,
                     default=_env_float("CALLGATE_SIP_BAN_S", 300),
                     help="how long a banned address gets no answer (env CALLGATE_SIP_BAN_S; "
                     "default 300)")
    sip.add_argument("--sip-nonce-ttl", metavar="SECONDS", type=_seconds,
                     default=_env_float("CALLGATE_SIP_NONCE_TTL_S", 300),
                     help="how long a digest nonce stays valid (env CALLGATE_SIP_NONCE_TTL_S; "
                     "default 300)")


def _digest_algorithms(value: str) -> tuple[str, ...]:
    chosen = tuple(a.strip().upper() for a in value.split(",") if a.strip())
    if not chosen or len(set(chosen)) != len(chosen) or set(chosen) - set(ALGORITHMS):
        raise ConfigurationError(
            f"--sip-digest {value!r}: expected some of {', '.join(ALGORITHMS)}, comma-separated"
        )
    return chosen


def _sip_settings(args: argparse.Namespace) -> SipServeSettings | None:
    if not args.sip and not args.sip_tls:
        return None
    if (args.sip_cert or args.sip_key) and not args.sip_tls:
        raise ConfigurationError("--sip-cert and --sip-key are for --sip-tls, which is not set")
    return SipServeSettings(
        listen=parse_listen(args.sip, "--sip") if args.sip else None,
        tls=parse_listen(args.sip_tls, "--sip-tls") if args.sip_tls else None,
        cert=Path(args.sip_cert) if args.sip_cert else None,
        key=Path(args.sip_key) if args.sip_key else None,
        redirect=SipSettings(
            gateway=args.sip_gateway or None,
            trusted=tuple(parse_trusted(t) for t in args.sip_trusted),
            user_header=args.sip_user_header,
            nonce_ttl_s=args.sip_nonce_ttl,
            digest_algorithms=_digest_algorithms(args.sip_digest),
            ban_after=args.sip_ban_after,
            ban_window_s=args.sip_ban_window,
            ban_s=args.sip_ban_for,
        ),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callgate", description="Outbound-call decisions: permissions, channels, caller ID."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--data",
            metavar="DIR",
            help=f"data directory of the embedded store (env CALLGATE_DATA; default "
            f"{DEFAULT_DATA_DIR})",
        )
        p.add_argument(
            "--redis-url",
            metavar="URL",
            help="use the Redis store at this URL instead of the embedded store (env "
            "CALLGATE_REDIS_URL): redis://, rediss:// or unix://, with the options "
            "cluster=yes, sentinel=<master>, pool=<n>, timeout_ms=<n>",
        )
        return p

    serve_p = with_data(sub.add_parser("serve", help="run the decision API"))
    serve_p.add_argument("--host", default=os.environ.get("CALLGATE_HOST", "127.0.0.1"))
    serve_p.add_argument(
        "--port", type=_port, default=_port(os.environ.get("CALLGATE_PORT", "8080"))
    )
    serve_p.add_argument(
        "--workers",
        type=_count,
        default=_count(os.environ.get("CALLGATE_WORKERS", "1")),
        help="worker processes sharing the port (SO_REUSEPORT); more than 1 needs --redis-url "
        "(env CALLGATE_WORKERS; default 1)",
    )
    serve_p.add_argument(
        "--config-poll",
        type=_seconds,
        metavar="SECONDS",
        default=_seconds(os.environ.get("CALLGATE_CONFIG_POLL_S", "1")),
        help="how often each process checks for configuration changes it was not notified of "
        "(env CALLGATE_CONFIG_POLL_S; default 1)",
    )
    _sip_arguments(serve_p)
    serve_p.add_argument(
        "--demo",
        metavar="FILE",
        help="import this account when the store is empty, and print a fresh token for it",
    )

    boot_p = with_data(sub.add_parser(
        "bootstrap", help="create an account and its owner; print the owner's token, once"))
    boot_p.add_argument("account", help="the new account's id")
    boot_p.add_argument("--name", required=True, help="the account's name")
    boot_p.add_argument("--owner", required=True, metavar="USER_ID", help="the owner's user id")
    boot_p.add_argument("--email", required=True, help="the owner's email")
    boot_p.add_argument("--region", default="US",
                        help="default region for national numbers (default US)")

    import_p = with_data(sub.add_parser("import", help="create or replace an account from a file"))
    import_p.add_argument("file", help="a .toml or .json account file")

    export_p = with_data(sub.add_parser("export", help="write an account's configuration"))
    export_p.add_argument("account")
    export_p.add_argument("--format", choices=["toml", "json"], default="toml")
    export_p.add_argument("--output", "-o", metavar="FILE", help="default: standard output")

    sub.add_parser("schema", help="print the JSON Schema of account files")

    token_p = sub.add_parser("token", help="manage API tokens")
    token_sub = token_p.add_subparsers(dest="token_command", required=True)
    create_p = with_data(token_sub.add_parser("create", help="create a token, shown once"))
    create_p.add_argument("account")
    create_p.add_argument("--name", default="default")
    create_p.add_argument(
        "--user", metavar="USER_ID",
        help="a token acting as this user (both APIs, with the user's permissions); without "
        "it, a service token (the decision API only)",
    )
    list_p = with_data(token_sub.add_parser("list", help="list an account's tokens"))
    list_p.add_argument("account")
    revoke_p = with_data(token_sub.add_parser("revoke", help="revoke tokens by name"))
    revoke_p.add_argument("account")
    revoke_p.add_argument("name")
    return parser


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


async def _export(store: Store, account: str, fmt: configfile.Format, out: str | None) -> int:
    config, _ = await AccountService(store).get(account)
    data = configfile.encode(config, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        await asyncio.to_thread(Path(out).write_bytes, data)
    return 0


async def _token_create(store: Store, account: str, name: str, user: str | None) -> int:
    config, _ = await AccountService(store).get(account)
    if user is not None and all(u.id != user for u in config.users):
        raise NotFound(f"no user {user!r} in account {account!r}", field="user")
    print(await issue_token(store, account, name, user, actor="cli"))
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
        print(f"{record.name}\tcreated_ms={record.created_ms}\tsha256={record.hash[:12]}...")
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = _data_dir(getattr(args, "data", None))
    try:
        redis = _redis(getattr(args, "redis_url", None))
        if args.command == "serve":
            # aiohttp loads only for the server
            from .server import ServeSettings, serve, serve_workers

            settings = ServeSettings(
                data_dir=data,
                host=args.host,
                port=args.port,
                demo=Path(args.demo) if args.demo else None,
                redis=redis,
                workers=args.workers,
                poll_s=args.config_poll,
                sip=_sip_settings(args),
            )
            if settings.workers > 1:
                serve_workers(settings)
            else:
                asyncio.run(serve(settings))
            return 0
        if args.command == "schema":
            sys.stdout.buffer.write(
                msgspec.json.format(msgspec.json.encode(configfile.json_schema()), indent=2)
            )
            print()
            return 0
        if args.command == "bootstrap":
            return asyncio.run(_with_store(data, redis, lambda s: _bootstrap(s, args)))
        if args.command == "import":
            return asyncio.run(_with_store(data, redis, lambda s: _import(s, Path(args.file))))
        if args.command == "export":
            return asyncio.run(
                _with_store(data, redis, lambda s: _export(s, args.account, args.format, args.output))
            )
        if args.token_command == "create":
            return asyncio.run(_with_store(
                data, redis, lambda s: _token_create(s, args.account, args.name, args.user)))
        if args.token_command == "list":
            return asyncio.run(_with_store(data, redis, lambda s: _token_list(s, args.account)))
        return asyncio.run(_with_store(data, redis, lambda s: _token_revoke(s, args.account, args.name)))
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
