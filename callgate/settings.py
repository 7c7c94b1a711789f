"""callgate's settings: each one a flag, an environment variable and a config-file key.

One naming rule: the key is the flag without its dashes, ``-`` becoming ``_``; the variable is
``CALLGATE_`` and the key in upper case (``--sip-ban-after``, ``CALLGATE_SIP_BAN_AFTER``,
``sip_ban_after``). One precedence order: a flag, else the environment, else the config file
(``--config FILE`` or ``CALLGATE_CONFIG``: TOML, flat keys), else the default.

Every value is read at start by its setting's parser; the first bad one stops the command
with one line naming the setting, the value and where it came from (``ConfigurationError``,
exit status 2). ``callgate config show`` prints them all with their sources, secrets masked.

A default is written once, on the structure that owns the value: ``ServeSettings`` (below)
for the server's, ``AuthLimits`` for HTTP authentication bans, ``SipSettings`` for the SIP
redirect (whose digest algorithms are ``sip.digest.ALGORITHMS``). The table here reads each
from there, so ``--help``, ``config show`` and a server built without this module agree.
``serve_settings`` turns the resolved values into the ``ServeSettings`` that ``callgate
serve`` runs with.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import ConfigurationError
from engine.store.redis_store import RedisSettings, parse_redis_url
from engine.sync import POLL_S
from engine.tokens import AuthLimits
from sip.digest import ALGORITHMS
from sip.redirect import SipSettings, TrustedPeer
from sip.server import Listen, SipServeSettings

__all__ = [
    "CONFIG",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "SETTINGS",
    "Resolved",
    "ServeSettings",
    "Setting",
    "add_arguments",
    "mask",
    "read_file",
    "resolve",
    "serve_settings",
    "warn_unknown",
]

log = logging.getLogger("callgate.settings")

OTHER_VARIABLES = frozenset({"CALLGATE_URL", "CALLGATE_TOKEN", "CALLGATE_DETECT_BLOCKING"})
"""CALLGATE_* variables that are not settings of the server: the load generator's target
and token, and the test suite's switch."""
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")


class ServeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What ``callgate serve`` runs with. Its defaults are the settings' defaults: the table
    below reads them from here."""

    data_dir: Path = Path(".callgate")
    host: str = "127.0.0.1"
    port: int = 8080
    demo: Path | None = None
    """Import this account on first start (empty store) and print a fresh token."""
    redis: RedisSettings | None = None
    """Serve on this Redis store instead of the embedded one."""
    workers: int = 1
    poll_s: float = POLL_S
    """How often each process checks the stored configuration versions."""
    sip: SipServeSettings | None = None
    """Run the SIP redirect front end too."""
    drain_s: float = 5.0
    """After SIGTERM: answering still, /healthz saying not ready, for this long."""
    shutdown_timeout_s: float = 10.0
    """Then: how long requests in flight may take to finish."""
    log_level: str = "info"
    log_format: str = "json"
    auth_limits: AuthLimits = AuthLimits()
    """Failed HTTP authentications that get an address or a token refused for a while."""


_SERVE = ServeSettings()
_SIP = SipSettings()
"""The structures' own defaults, which the settings table below reads."""


class Setting(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    help: str
    parse: Callable[[str], Any]
    """Raw text -> value; raises ``ValueError`` saying what was expected."""
    default: Any = None
    metavar: str | None = None
    many: bool = False
    """A list: a repeated flag, comma-separated in the environment, a list in the file."""
    secret: bool = False
    commands: tuple[str, ...] = ("serve",)
    """The commands that take it (``*`` for every one)."""

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return "CALLGATE_" + self.key.upper()

    def applies_to(self, command: str) -> bool:
        return "*" in self.commands or command in self.commands


class Resolved(msgspec.Struct, frozen=True, kw_only=True):
    setting: Setting
    value: Any
    source: str
    """``flag``, ``env``, ``file <path>`` or ``default``."""


# -- parsers: text -> value, or ValueError saying what was expected ------------------------------


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise ValueError("is not a port number (1-65535)")
    return int(text)


def _int_range(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise ValueError(f"is not {what} from {low} to {high}")
        return int(text)
    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("is not a number of seconds") from None
        if not low <= value <= high:
            raise ValueError(f"is out of range {low:g}-{high:g} seconds")
        return value
    return parse


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return text.strip().lower()
    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty")
    return text.strip()


def _path(text: str) -> Path:
    return Path(_text(text))


def _redis_url(text: str) -> RedisSettings:
    try:
        return parse_redis_url(_text(text))
    except ValueError as exc:
        raise ValueError(f"is not a usable Redis URL: {exc}") from None


def _listen(text: str) -> Listen:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("is not HOST:PORT, e.g. 0.0.0.0:5060")
    return Listen(host, int(port))


def _trusted(text: str) -> TrustedPeer:
    network, _, account = text.strip().partition("=")
    try:
        ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise ValueError("is not an address or CIDR network, optionally =ACCOUNT "
                         "(e.g. 10.0.0.0/24=acme)") from None
    return TrustedPeer(network=network, account=account or None)


def _digest(text: str) -> tuple[str, ...]:
    chosen = tuple(a.strip().upper() for a in text.split(",") if a.strip())
    if not chosen or len(set(chosen)) != len(chosen) or set(chosen) - set(ALGORITHMS):
        raise ValueError(f"is not some of {', '.join(ALGORITHMS)}, comma-separated")
    return chosen


_STORE = ("serve", "bootstrap", "import", "export", "create", "list", "revoke", "remove",
          "count")
"""The commands that open a store."""

CONFIG = Setting(key="config", parse=_path, metavar="FILE", commands=("*",),
                 help="a TOML file of settings (flat keys, as in `callgate config show`)")

SETTINGS: tuple[Setting, ...] = (
    CONFIG,
    Setting(key="data", parse=_path, default=_SERVE.data_dir, metavar="DIR", commands=_STORE,
            help="data directory of the embedded store"),
    Setting(key="redis_url", parse=_redis_url, metavar="URL", secret=True, commands=_STORE,
            help="use the Redis store at this URL instead of the embedded store: redis://, "
            "rediss:// or unix://, with the options cluster=yes, sentinel=<master>, pool=<n>, "
            "inflight=<n>, timeout_ms=<n>"),
    Setting(key="log_level", parse=_choice(LOG_LEVELS), default=_SERVE.log_level,
            commands=("*",), metavar="LEVEL",
            help=f"{', '.join(LOG_LEVELS)}: debug logs every decision"),
    Setting(key="log_format", parse=_choice(LOG_FORMATS), default=_SERVE.log_format,
            commands=("*",), metavar="FORMAT", help="json (one object a line) or text"),
    Setting(key="host", parse=_text, default=_SERVE.host, help="address of the HTTP APIs"),
    Setting(key="port", parse=_port, default=_SERVE.port, help="port of the HTTP APIs"),
    Setting(key="workers", parse=_int_range(1, 256, "a number of processes"),
            default=_SERVE.workers, metavar="N",
            help="worker processes sharing the ports (SO_REUSEPORT); more than 1 needs the "
            "Redis store"),
    Setting(key="config_poll", parse=_seconds(0.05, 3600), default=_SERVE.poll_s,
            metavar="SECONDS",
            help="how often each process checks for configuration changes it was not told of"),
    Setting(key="drain", parse=_seconds(0, 3600), default=_SERVE.drain_s, metavar="SECONDS",
            help="after SIGTERM, how long to keep answering while /healthz says not ready, so "
            "load balancers move away first"),
    Setting(key="shutdown_timeout", parse=_seconds(0, 3600),
            default=_SERVE.shutdown_timeout_s, metavar="SECONDS",
            help="then, how long requests in flight may take to finish"),
    Setting(key="demo", parse=_path, metavar="FILE",
            help="import this account when the store is empty, and print a fresh token for it"),
    Setting(key="http_ban_after", parse=_int_range(1, 100_000, "a number of failures"),
            default=_SERVE.auth_limits.failures, metavar="N",
            help="failed authentications (a missing, unknown or revoked token) from one "
            "address, or with one token from anywhere, that refuse it with 429..."),
    Setting(key="http_ban_window", parse=_seconds(1, 86400),
            default=_SERVE.auth_limits.window_s, metavar="SECONDS",
            help="...within this many seconds"),
    Setting(key="http_ban_for", parse=_seconds(1, 86400),
            default=_SERVE.auth_limits.ban_s, metavar="SECONDS",
            help="how long; a token this process knows is never refused"),
    Setting(key="sip", parse=_listen, metavar="HOST:PORT",
            help="listen for SIP over UDP and TCP here, e.g. 0.0.0.0:5060 (default: no SIP)"),
    Setting(key="sip_tls", parse=_listen, metavar="HOST:PORT",
            help="listen for SIP over TLS here, e.g. 0.0.0.0:5061; needs --sip-cert and "
            "--sip-key"),
    Setting(key="sip_cert", parse=_path, metavar="FILE",
            help="PEM certificate chain for --sip-tls"),
    Setting(key="sip_key", parse=_path, metavar="FILE", help="PEM private key for --sip-tls"),
    Setting(key="sip_gateway", parse=_text, metavar="HOST[:PORT]",
            help="where a 302 sends the call (its Contact host); default: the Request-URI's host"),
    Setting(key="sip_trusted", parse=_trusted, many=True, default=_SIP.trusted,
            metavar="CIDR[=ACCOUNT]",
            help="a trusted peer network (a PBX that authenticates its own users): its INVITEs "
            "name the user instead of passing digest auth; repeat for more"),
    Setting(key="sip_user_header", parse=_text, default=_SIP.user_header, metavar="HEADER",
            help="how a trusted peer names the user: this header, or 'From' for the From "
            "URI's user part"),
    Setting(key="sip_digest", parse=_digest, default=_SIP.digest_algorithms,
            metavar="ALGORITHMS",
            help="digest algorithms every challenge offers, in this order (clients that read "
            "only the first challenge mostly know only MD5)"),
    Setting(key="sip_nonce_ttl", parse=_seconds(1, 86400), default=_SIP.nonce_ttl_s,
            metavar="SECONDS", help="how long a digest nonce stays valid"),
    Setting(key="sip_ban_after", parse=_int_range(1, 10_000, "a number of failures"),
            default=_SIP.ban_after, metavar="N",
            help="failed digest answers for one login at one address that ban that login "
            "there (or for as many different usernames, that ban the address)..."),
    Setting(key="sip_ban_window", parse=_seconds(1, 86400),
            default=_SIP.ban_window_s, metavar="SECONDS",
            help="...within this many seconds"),
    Setting(key="sip_ban_for", parse=_seconds(1, 86400),
            default=_SIP.ban_s, metavar="SECONDS",
            help="how long a banned login or address gets no answer at all"),
)


def _shown(value: Any) -> str:
    """A value as it would be written back: ``0.0.0.0:5060``, ``10.0.0.0/8=acme``."""
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    if hasattr(value, "host") and hasattr(value, "port"):  # a listening address
        return f"{value.host}:{value.port}"
    if hasattr(value, "network"):  # a trusted peer
        return str(value.network) + (f"={value.account}" if value.account else "")
    return str(value)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of every setting ``command`` takes (defaults stay None: the source of a value
    is resolved afterwards)."""
    for setting in SETTINGS:
        if not setting.applies_to(command):
            continue
        default = "" if setting.default in (None, ()) else f"; default {_shown(setting.default)}"
        parser.add_argument(
            setting.flag, dest=setting.key, metavar=setting.metavar,
            action="append" if setting.many else "store", default=None,
            help=f"{setting.help} (env {setting.env}{default})",
        )


def read_file(path: Path) -> dict[str, Any]:
    """The settings of a config file; ``ConfigurationError`` if it cannot be read, is not TOML
    or names a setting that does not exist. (Read at start-up, before any event loop.)"""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"--config {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"--config {path}: not TOML ({exc})") from None
    known = {s.key for s in SETTINGS} - {CONFIG.key}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigurationError(f"--config {path}: no setting named {unknown[0]!r}")
    return data


def _raw_items(setting: Setting, raw: Any) -> list[str]:
    if setting.many:
        if isinstance(raw, str):
            return [part for part in raw.split(",") if part.strip()]
        if isinstance(raw, (list, tuple)):
            return [_file_text(v) for v in raw]
    return [_file_text(raw)]


def _file_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_file_text(v) for v in value)
    return str(value)


def resolve(
    command: str, flags: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Resolved]:
    """Every setting ``command`` takes, from its flags, ``environ`` and the config file (named
    by ``--config`` or ``CALLGATE_CONFIG``), parsed; ``ConfigurationError`` at the first bad
    value, naming it."""
    config_path = flags.get(CONFIG.key) or environ.get(CONFIG.env)
    file_values = read_file(Path(config_path)) if config_path else {}
    out: dict[str, Resolved] = {}
    for setting in SETTINGS:
        if not setting.applies_to(command):
            continue
        raw: Any = flags.get(setting.key)
        source = "flag"
        if raw is None and setting.env in environ:
            raw, source = environ[setting.env], "env"
        if raw is None and setting.key in file_values:
            raw, source = file_values[setting.key], f"file {config_path}"
        if raw is None:
            value, source = setting.default, "default"
        else:
            items = _raw_items(setting, raw)
            try:
                parsed = [setting.parse(item) for item in items]
            except ValueError as exc:
                where = {"flag": setting.flag, "env": setting.env}.get(source, source)
                shown = repr(_without_password(_file_text(raw)) if setting.secret
                             else _file_text(raw))
                raise ConfigurationError(
                    f"setting {setting.key} = {shown} (from {where}) {exc}"
                ) from None
            value = tuple(parsed) if setting.many else parsed[0]
        out[setting.key] = Resolved(setting=setting, value=value, source=source)
    return out


def serve_settings(values: Mapping[str, Resolved]) -> ServeSettings:
    """What ``callgate serve`` runs with, from its resolved settings; ``ConfigurationError``
    for a combination no single value shows wrong (a certificate without TLS)."""

    def get(key: str) -> Any:
        return values[key].value

    sip = None
    if get("sip") is not None or get("sip_tls") is not None:
        sip = SipServeSettings(
            listen=get("sip"), tls=get("sip_tls"), cert=get("sip_cert"), key=get("sip_key"),
            redirect=SipSettings(
                gateway=get("sip_gateway"), trusted=get("sip_trusted"),
                user_header=get("sip_user_header"), nonce_ttl_s=get("sip_nonce_ttl"),
                digest_algorithms=get("sip_digest"), ban_after=get("sip_ban_after"),
                ban_window_s=get("sip_ban_window"), ban_s=get("sip_ban_for"),
            ),
        )
    elif get("sip_cert") is not None or get("sip_key") is not None:
        raise ConfigurationError("settings sip_cert and sip_key are for sip_tls, which is not set")
    return ServeSettings(
        data_dir=get("data"), host=get("host"), port=get("port"), demo=get("demo"),
        redis=get("redis_url"), workers=get("workers"), poll_s=get("config_poll"),
        drain_s=get("drain"), shutdown_timeout_s=get("shutdown_timeout"), sip=sip,
        log_level=get("log_level"), log_format=get("log_format"),
        auth_limits=AuthLimits(failures=get("http_ban_after"), window_s=get("http_ban_window"),
                               ban_s=get("http_ban_for")),
    )


def warn_unknown(environ: Mapping[str, str]) -> None:
    """Log each ``CALLGATE_*`` variable that is no setting (a typo would otherwise go
    unnoticed). Called once logging is set up."""
    known = {s.env for s in SETTINGS} | OTHER_VARIABLES
    for name in sorted(n for n in environ if n.startswith("CALLGATE_") and n not in known):
        log.warning("%s is not a callgate setting: ignored (a typo?)", name)


def mask(resolved: Resolved) -> str:
    """How ``config show`` prints a value: a secret's password part hidden."""
    if resolved.value is None:
        return ""
    if resolved.setting.secret:
        where = getattr(resolved.value, "where", None)  # a Redis URL: without its password
        return str(where) if where is not None else "***"
    return _shown(resolved.value)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0] if ":" in credentials else ""
    return f"{scheme}://{user}:***@{host}" if user else f"{scheme}://***@{host}"
