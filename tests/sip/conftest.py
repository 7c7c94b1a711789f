"""A real ``callgate serve`` with its SIP front end on free ports (UDP, TCP and TLS, with a
throwaway certificate), on the demo account given a SIP domain and SIP credentials; and a
small SIP client for each transport."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig
from sip.credentials import make_credential
from sip.parser import Keepalive, StreamFramer
from tests.conftest import CALLGATE, NO_DRAIN, Server, demo_config, free_port, write_account

DOMAIN = "demo.sip.example"
PASSWORDS = {"ana": "Ana-desk-phone-2026", "lee": "Lee-softphone-2026", "sam": "Sam-desk-2026!"}
"""SIP logins of the test account: username = user id; sam's VoIP is switched off."""
TRUSTED = "127.0.0.2"
"""A loopback address configured as a trusted peer (Linux answers on all of 127/8)."""


def sip_account() -> AccountConfig:
    config = demo_config()
    users = []
    for user in config.users:
        if user.id in PASSWORDS:
            login = make_credential(user.id, DOMAIN, PASSWORDS[user.id], now_ms=0,
                                    enabled=user.id != "sam")
            user = msgspec.structs.replace(user, sip=login)
        if user.id == "lee":
            user = msgspec.structs.replace(user, max_channels=3)
        users.append(user)
    return msgspec.structs.replace(config, sip_domain=DOMAIN, users=tuple(users))


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid a day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=callgate-test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@dataclass
class SipService:
    server: Server
    sip_port: int
    tls_port: int
    cert: Path
    data_dir: Path
    owner_token: str

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sip_port)

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample of ``/metrics``: 0 when the sample is absent (a labelled
        counter not counted yet), an error when its family is (a misspelt name)."""
        with urllib.request.urlopen(f"{self.server.url}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        family = name.removesuffix("_total")
        assert re.search(rf"^# TYPE {re.escape(family)}(_total)? ", text, re.MULTILINE), name
        pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
        found = re.search(rf"^{pattern} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def leases(self) -> int:
        return int(self.metric("callgate_active_leases", 'account="demo"'))

    def client(self, transport: str = "udp", *, source: str = "127.0.0.1") -> SipClient:
        port = self.tls_port if transport == "tls" else self.sip_port
        return SipClient(transport, ("127.0.0.1", port), source=source, cert=self.cert)


@dataclass(frozen=True)
class SipSeed:
    """The start every SIP server on the embedded store shares: a data directory with the SIP
    account imported and two tokens created by the CLI, and a certificate. Made once a session
    and copied for each server, so a test starts from the same state without paying for three
    CLI runs and openssl."""

    data_dir: Path
    token: str
    owner_token: str
    cert: Path
    key: Path


def _set_up_account(directory: Path, store: tuple[str, ...]) -> tuple[str, str]:
    """Import the SIP account and create a dialer's token and the owner's, with the CLI as an
    operator would; the two tokens."""
    account = write_account(directory / "account.toml", sip_account())

    def callgate(*command: str) -> str:
        return subprocess.run([str(CALLGATE), *command, *store], check=True,
                              capture_output=True, text=True, timeout=60).stdout.strip()

    callgate("import", str(account))
    token = callgate("token", "create", "demo", "--name", "dialer")
    owner = callgate("token", "create", "demo", "--name", "owner", "--user", "olivia")
    return token, owner


def make_seed(directory: Path) -> SipSeed:
    data = directory / "data"
    token, owner = _set_up_account(directory, ("--data", str(data)))
    cert, key = make_certificate(directory)
    return SipSeed(data, token, owner, cert, key)


@pytest.fixture(scope="session")
def sip_seed(tmp_path_factory: pytest.TempPathFactory) -> SipSeed:
    return make_seed(tmp_path_factory.mktemp("sip-seed"))


def start_sip_service(tmp_path: Path, *args: str, seed: SipSeed | None = None,
                      store: tuple[str, ...] = ()) -> SipService:
    """A server on the embedded store in ``tmp_path/data``, a copy of ``seed`` when given; or,
    given ``store``, the store options of every command (e.g. ``("--redis-url", url)``), on
    that store set up afresh. No SIP test is about draining: the server stops at once on
    SIGTERM (``args`` may say ``--drain`` again)."""
    data = tmp_path / "data"
    if store:
        assert seed is None, "a seed is a data directory: for the embedded store only"
        token, owner = _set_up_account(tmp_path, store)
        cert, key = make_certificate(tmp_path)
    else:
        if seed is None:
            seed = make_seed(tmp_path)
        else:
            shutil.copytree(seed.data_dir, data)
        token, owner, cert, key = seed.token, seed.owner_token, seed.cert, seed.key
        store = ("--data", str(data))
    sip_port, tls_port = free_port(), free_port()
    server = Server(data, demo=None, token=token, args=[
        *NO_DRAIN, "--sip", f"127.0.0.1:{sip_port}", "--sip-tls", f"127.0.0.1:{tls_port}",
        "--sip-cert", str(cert), "--sip-key", str(key), "--sip-gateway", "gw.example:5080",
        "--sip-trusted", f"{TRUSTED}/32=demo", *store, *args,
    ]).start()
    return SipService(server, sip_port, tls_port, cert, data, owner)


@pytest.fixture
def sip_service(tmp_path: Path, sip_seed: SipSeed) -> Iterator[SipService]:
    service = start_sip_service(tmp_path, seed=sip_seed)
    yield service
    service.server.kill()


class SipClient:
    """One socket (or connection) to the server: send requests, read whole responses."""

    def __init__(self, transport: str, server: tuple[str, int], *, source: str,
                 cert: Path | None = None) -> None:
        self.transport = transport
        self.server = server
        self._framer = StreamFramer()
        self._pending: list[bytes] = []
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((source, 0))
        else:
            raw = socket.create_connection(server, timeout=10, source_address=(source, 0))
            if transport == "tls":
                context = ssl.create_default_context(cafile=str(cert))
                raw = context.wrap_socket(raw, server_hostname="127.0.0.1")
            self.sock = raw
        self.sock.settimeout(5)

    @property
    def local(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def receive(self, timeout_s: float = 5.0) -> bytes:
        """The next whole message; ``TimeoutError`` if none comes in time."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            if self.transport == "udp":
                self._pending.append(self.sock.recv(65536))
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._pending += [m for m in self._framer.feed(data) if not isinstance(m, Keepalive)]
        return self._pending.pop(0)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.receive(seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()
