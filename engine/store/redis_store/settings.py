"""The Redis store's settings, read from a ``--redis-url``.

``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix:///path``, plus
callgate's own query options:

- ``cluster=yes``: the host is any node of a Redis Cluster;
- ``sentinel=<master name>``: the hosts (comma-separated) are Sentinels;
- ``pool=<n>``: pipelined connections per Redis node for dials (default 1: one connection
  carries thousands of dials a second; configuration and tokens use one more, the
  configuration channel one);
- ``inflight=<n>``: dials waiting on one Redis server at once, per process (default 256);
  more wait in line, and what cannot be sent in time is answered ``store_unavailable``
  unsent;
- ``timeout_ms=<n>``: the deadline of a dial, from its arrival (default 100).

TLS options pass through: ``ssl_cert_reqs`` (``none``, ``optional``, ``required``),
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``; and ``client_name``.
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import msgspec

__all__ = ["Address", "RedisSettings", "parse_redis_url"]

DEADLINE_S = 0.1
POOL_SIZE = 1
INFLIGHT = 256

_YES = {"1", "true", "yes", "on"}
_NO = {"0", "false", "no", "off"}
_PASSED_ON = {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "client_name"}
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class Address(msgspec.Struct, frozen=True, gc=False):
    """Where one Redis server listens: ``host``/``port``, or a unix socket ``path``."""

    host: str = ""
    port: int = 6379
    path: str = ""

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    """The URL as given, without callgate's options (for messages: see ``where``)."""
    hosts: tuple[Address, ...]
    """The server; for a cluster, the nodes to ask for the others; with ``sentinel``, the
    Sentinels."""
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0
    cluster: bool = False
    sentinel: str | None = None
    """The master's name, when the hosts are Sentinels."""
    pool: int = POOL_SIZE
    inflight: int = INFLIGHT
    deadline_s: float = DEADLINE_S
    client_name: str | None = None
    cert_reqs: str = "required"
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        if self.sentinel:
            return f"{parts.scheme}://{netloc} (Sentinel master {self.sentinel!r})"
        return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + (
            " (cluster)" if self.cluster else ""
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a ``rediss://`` URL (built at start-up: it reads files)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_certs)
        context.verify_mode = _CERT_REQS[self.cert_reqs]
        if context.verify_mode == ssl.CERT_NONE:
            context.check_hostname = False
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


def _address(host: str, default_port: int) -> Address:
    name, colon, port = host.rpartition(":")
    if not colon:
        return Address(host=host, port=default_port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a port number")
    return Address(host=name.strip("[]"), port=int(port))


def parse_redis_url(url: str) -> RedisSettings:
    """Read a ``--redis-url``; a ``ValueError`` says what is wrong with it, without the URL
    (which may hold a password: the caller shows it masked)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("the scheme must be redis://, rediss:// or unix://")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    if parts.scheme != "unix" and not hostlist:
        raise ValueError("no host")
    options: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("cluster", "sentinel", "pool", "inflight", "timeout_ms", "db", "password"):
            options[key] = value
        elif key in _PASSED_ON:
            options[key] = value
            kept.append((key, value))
        else:
            raise ValueError(f"unknown option {key!r}")
    cluster = options.get("cluster", "no").lower()
    if cluster not in _YES | _NO:
        raise ValueError(f"cluster={options['cluster']!r} is not yes or no")
    sentinel = options.get("sentinel")
    if sentinel is not None and not sentinel:
        raise ValueError("sentinel= needs the master's name")
    numbers = {"pool": POOL_SIZE, "inflight": INFLIGHT, "timeout_ms": round(DEADLINE_S * 1000)}
    for key in numbers:
        if key in options:
            value = options[key]
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{key}={value!r} is not a positive number")
            numbers[key] = int(value)
    if cluster in _YES and sentinel:
        raise ValueError("cluster and sentinel cannot be combined")
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs={cert_reqs!r} is not none, optional or required")
    user, _, password = userinfo.partition(":")
    if parts.scheme == "unix":
        hosts: tuple[Address, ...] = (Address(path=parts.path),)
        db_text = options.get("db", "0")
    else:
        default_port = 26379 if sentinel else 6379
        hosts = tuple(_address(h, default_port) for h in hostlist.split(",") if h)
        if len(hosts) > 1 and not (sentinel or cluster in _YES):
            raise ValueError("several hosts need sentinel=<master> or cluster=yes")
        db_text = options.get("db", parts.path.strip("/") or "0")
    if not db_text.isdigit():
        raise ValueError(f"database {db_text!r} is not a number")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
    return RedisSettings(
        url=clean,
        hosts=hosts,
        tls=parts.scheme == "rediss",
        username=unquote(user) or None,
        password=unquote(password) or options.get("password") or None,
        db=int(db_text),
        cluster=cluster in _YES,
        sentinel=sentinel,
        pool=numbers["pool"],
        inflight=numbers["inflight"],
        deadline_s=numbers["timeout_ms"] / 1000,
        client_name=options.get("client_name"),
        cert_reqs=cert_reqs,
        ca_certs=options.get("ssl_ca_certs"),
        certfile=options.get("ssl_certfile"),
        keyfile=options.get("ssl_keyfile"),
    )
