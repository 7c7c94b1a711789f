"""A real PBX in front: Kamailio with ``deploy/kamailio/kamailio.cfg`` asks a real ``callgate
serve`` over HTTP about every INVITE, and sipp plays the softphone in front of it and the
gateway behind it.

Everything is a real process on free ports: callgate on the embedded store with the demo
account (one for the module), Kamailio per test (its gateway and callgate URL are fixed when
it starts), and one sipp per side of a call. Kamailio runs one worker so that it handles the
caller's ACK and BYE in the order they were sent, as a single softphone's would be in
production, where they arrive far apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALLGATE, DEMO, NO_DRAIN, ROOT, Server, free_port

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
LOCALHOST = "127.0.0.1"

READY_TIMEOUT_S = 20.0
"""Start-up and whole-call bounds, generous for a loaded 2-core machine: each is a deadline
on a readiness check or a process, never a sleep."""
CALL_TIMEOUT_S = 30.0


# -- ports -----------------------------------------------------------------------------------


def free_udp_port() -> int:
    """A UDP port free on every address (sipp binds its control socket on 0.0.0.0)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def free_media_ports() -> int:
    """A UDP port P with P + 2 free too: sipp binds its audio and video sockets there."""
    while True:
        port = free_udp_port()
        if port + 2 > 65535:
            continue
        with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as audio, closing(
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ) as video:
            try:
                audio.bind(("", port))
                video.bind(("", port + 2))
            except OSError:
                continue
        return port


def wait_udp_bound(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until something (``process``) has bound ``port`` on the loopback address."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before binding {port}")
        with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
            try:
                probe.bind((LOCALHOST, port))
            except OSError:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing bound UDP {LOCALHOST}:{port} within {timeout_s} s")


# -- callgate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callgate:
    server: Server
    service_token: str
    """What Kamailio dials with, as a PBX would."""
    owner_token: str
    """olivia's: the admin API, to see the channels held."""

    @property
    def url(self) -> str:
        return self.server.url

    def request(self, method: str, path: str, token: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status), json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def dial(self, **body: str) -> tuple[int, Any]:
        return self.request("POST", "/v1/dial", self.service_token, body)

    def end(self, call_id: str, outcome: str) -> tuple[int, Any]:
        return self.request(
            "POST", f"/v1/calls/{call_id}/end", self.service_token, {"outcome": outcome}
        )

    def live_calls(self) -> list[str]:
        status, page = self.request("GET", "/admin/v1/live-channels", self.owner_token)
        assert status == 200, page
        return [item["call_id"] for item in page["items"]]


def _token(data_dir: Path, *args: str) -> str:
    made = subprocess.run(
        [str(CALLGATE), "token", "create", "demo", "--data", str(data_dir), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip()


@pytest.fixture(scope="module")
def callgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callgate]:
    data_dir = tmp_path_factory.mktemp("callgate") / "data"
    subprocess.run(
        [str(CALLGATE), "import", str(DEMO), "--data", str(data_dir)],
        check=True,
        capture_output=True,
    )
    service = _token(data_dir, "--name", "kamailio")
    owner = _token(data_dir, "--name", "owner", "--user", "olivia")
    server = Server(data_dir, demo=None, token=service, args=NO_DRAIN).start()
    yield Callgate(server, service, owner)
    server.stop()


# -- Kamailio --------------------------------------------------------------------------------


class Kamailio:
    """``kamailio -DD -E`` on ``deploy/kamailio/kamailio.cfg``, everything it writes under
    ``workdir``, settings passed as ``-A`` defines the way an operator would."""

    def __init__(
        self,
        workdir: Path,
        *,
        callgate_url: str,
        token: str,
        gateway_port: int,
        timeout_s: int = 2,
    ) -> None:
        self.workdir = workdir
        self.port = free_udp_port()
        self.gateway_port = gateway_port
        self.log_path = workdir / "kamailio.log"
        self.defines = {
            "LISTEN": f"udp:{LOCALHOST}:{self.port}",
            "CALLGATE_URL": json.dumps(callgate_url),
            "CALLGATE_TOKEN": json.dumps(token),
            "GATEWAY": json.dumps(f"{LOCALHOST}:{gateway_port}"),
            "CALLGATE_TIMEOUT_S": str(timeout_s),
            "WORKERS": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def start(self) -> Kamailio:
        runtime = self.workdir / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        defines = [arg for name, value in self.defines.items() for arg in ("-A", f"{name}={value}")]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [KAMAILIO, "-f", str(CONFIG), "-DD", "-E", "-Y", str(runtime),
                 "-m", "32", "-M", "8", *defines],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until Kamailio answers an OPTIONS with 200 (its config answers them itself)."""
        assert self.process is not None
        with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
            sock.bind((LOCALHOST, 0))
            sock.settimeout(0.1)
            own_port = sock.getsockname()[1]
            deadline = time.monotonic() + READY_TIMEOUT_S
            attempt = 0
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"kamailio exited:\n{self.log()}")
                attempt += 1
                sock.sendto(self._options(own_port, attempt), (LOCALHOST, self.port))
                try:
                    if sock.recv(65535).startswith(b"SIP/2.0 200 "):
                        return
                except (TimeoutError, ConnectionRefusedError):
                    continue
        self.stop()
        raise RuntimeError(f"kamailio did not answer OPTIONS:\n{self.log()}")

    def _options(self, own_port: int, attempt: int) -> bytes:
        return (
            f"OPTIONS sip:{self.address} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCALHOST}:{own_port};branch=z9hG4bK-ready-{attempt}\r\n"
            f"From: <sip:test@{LOCALHOST}:{own_port}>;tag=ready\r\n"
            f"To: <sip:{self.address}>\r\n"
            f"Call-ID: ready-{own_port}@{LOCALHOST}\r\n"
            f"CSeq: {attempt} OPTIONS\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Its own process group (start_new_session): the workers go with it.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def gateway_port() -> int:
    return free_udp_port()


@pytest.fixture
def kamailio(tmp_path: Path, callgate: Callgate, gateway_port: int) -> Iterator[Kamailio]:
    proxy = Kamailio(
        tmp_path, callgate_url=callgate.url, token=callgate.service_token,
        gateway_port=gateway_port,
    ).start()
    yield proxy
    proxy.stop()


# -- sipp ------------------------------------------------------------------------------------


class Sipp:
    """One sipp process running one call of ``scenario``, its traces under ``workdir``."""

    def __init__(self, workdir: Path, name: str, scenario: str, args: Sequence[str]) -> None:
        self.workdir = workdir
        self.name = name
        self.command = [
            SIPP, "-sf", str(SCENARIOS / scenario),
            "-i", LOCALHOST, "-bind_local",
            "-mp", str(free_media_ports()), "-cp", str(free_udp_port()),
            "-m", "1", "-nostdin",
            "-timeout", f"{int(CALL_TIMEOUT_S) - 5}s", "-timeout_error",
            "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"),
            "-trace_logs", "-log_file", str(workdir / f"{name}_logs.log"),
            "-trace_msg", "-message_file", str(workdir / f"{name}_messages.log"),
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sipp:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        return self

    def wait(self) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=CALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def run(self) -> int:
        return self.start().wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def report(self) -> str:
        """What sipp logged and exchanged: the message of a failed assertion."""
        parts = []
        for kind in ("errors", "logs", "messages"):
            path = self.workdir / f"{self.name}_{kind}.log"
            if path.exists():
                parts.append(f"--- {self.name} {kind}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)


def caller(
    tmp_path: Path,
    kamailio: Kamailio,
    user: str,
    number: str,
    scenario: str = "kamailio_caller.xml",
    *,
    call_id: str | None = None,
    extra: Sequence[str] = (),
) -> Sipp:
    """The softphone: ``user`` dials ``number`` through ``kamailio``."""
    args = ["-p", str(free_udp_port()), "-s", number, "-key", "user", user]
    if call_id is not None:
        # sipp reads -cid_str as a format (%u, %p, %s); ours have no '%'.
        args += ["-cid_str", call_id]
    return Sipp(tmp_path, "caller", scenario, [*args, *extra, kamailio.address])


def gateway(tmp_path: Path, kamailio: Kamailio, scenario: str, extra: Sequence[str] = ()) -> Sipp:
    """The gateway behind ``kamailio``, started and listening. Its media and control ports
    are picked free just before sipp binds them, so another test process may take one first
    (the suite runs in two): sipp then exits at once, and is started again on new ones."""
    for attempt in range(3):
        uas = Sipp(tmp_path, "gateway", scenario, ["-p", str(kamailio.gateway_port), *extra])
        uas.start()
        assert uas.process is not None
        try:
            wait_udp_bound(kamailio.gateway_port, uas.process, READY_TIMEOUT_S)
        except RuntimeError:
            uas.kill()
            if attempt == 2:
                raise
            continue
        except BaseException:
            uas.kill()
            raise
        return uas
    raise AssertionError("unreachable")


def refused_caller(
    tmp_path: Path, kamailio: Kamailio, user: str, number: str, status: int, reason: str,
    *, call_id: str | None = None,
) -> Sipp:
    """A caller whose call must end in ``status`` with ``X-Callgate-Reason: reason`` (the
    header absent for "")."""
    return caller(
        tmp_path, kamailio, user, number, "kamailio_caller_refused.xml", call_id=call_id,
        extra=["-set", "status", str(status), "-set", "reason", reason],
    )


def a_call_id() -> str:
    return f"kamailio-test-{uuid.uuid4().hex}"


@pytest.fixture
def silent_gateway(gateway_port: int) -> Iterator[socket.socket]:
    """A plain socket where the gateway would be: a refused call must send it nothing."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind((LOCALHOST, gateway_port))
        sock.setblocking(False)
        yield sock


def assert_nothing_arrived(sock: socket.socket) -> None:
    # Kamailio relays an INVITE before any reply could come back from the gateway, so by the
    # time the caller has its final reply, whatever was relayed is in this socket's buffer.
    with pytest.raises(BlockingIOError):
        sock.recv(65535)


# -- allowed calls ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "number", "caller_id"),
    [
        ("ana", "2125550187", "+12125550101"),
        ("gina", "(310)%20555-0123", "+13105550110"),
        ("dev", "2125550187", "+18005550190"),
        ("lee", "2125550187", "+12125550100"),
    ],
    ids=["user_default", "geo_area_code", "department_default", "account_default"],
)
def test_kamailio_sets_the_chosen_caller_id(
    tmp_path: Path, kamailio: Kamailio, user: str, number: str, caller_id: str
) -> None:
    call_id = a_call_id()
    uas = gateway(tmp_path, kamailio, "kamailio_gateway.xml", [
        "-set", "caller_id", caller_id,
        "-set", "gateway_host", LOCALHOST,
        "-set", "callgate_call_id", call_id,
    ])
    try:
        uac = caller(tmp_path, kamailio, user, number, call_id=call_id)
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert uas.wait() == 0, uas.report() + kamailio.log()
    finally:
        uas.kill()


def test_kamailio_ends_the_lease_when_the_caller_hangs_up(
    tmp_path: Path, kamailio: Kamailio, callgate: Callgate
) -> None:
    call_id = a_call_id()
    uas = gateway(tmp_path, kamailio, "kamailio_gateway.xml", [
        "-set", "caller_id", "+12125550101",
        "-set", "gateway_host", LOCALHOST,
        "-set", "callgate_call_id", call_id,
    ])
    try:
        uac = caller(tmp_path, kamailio, "ana", "2125550187", call_id=call_id)
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert uas.wait() == 0, uas.report()
    finally:
        uas.kill()

    # Kamailio reports the end before relaying the BYE, so it is done by now.
    assert call_id not in callgate.live_calls()
    # Ending again with the same outcome is harmless; with another it would be a 409.
    assert callgate.end(call_id, "answered")[0] == 200


@pytest.mark.parametrize(("gateway_scenario", "caller_scenario", "outcome"), [
    ("kamailio_gateway_hangs_up.xml", "kamailio_caller_hung_up_on.xml", "answered"),
    ("kamailio_gateway_rings.xml", "kamailio_caller_cancels.xml", "canceled"),
], ids=["the callee hangs up", "the caller gives up while it rings"])
def test_kamailio_ends_the_lease_with_the_outcome(
    tmp_path: Path, kamailio: Kamailio, callgate: Callgate, gateway_scenario: str,
    caller_scenario: str, outcome: str,
) -> None:
    call_id = a_call_id()
    uas = gateway(tmp_path, kamailio, gateway_scenario)
    try:
        uac = caller(tmp_path, kamailio, "ana", "2125550187", caller_scenario, call_id=call_id)
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert uas.wait() == 0, uas.report() + kamailio.log()
    finally:
        uas.kill()

    assert call_id not in callgate.live_calls()
    # Ending again with the outcome Kamailio reported is harmless; another would be a 409.
    assert callgate.end(call_id, outcome)[0] == 200


def test_kamailio_ends_the_lease_as_busy_when_the_gateway_is_busy(
    tmp_path: Path, kamailio: Kamailio, callgate: Callgate
) -> None:
    call_id = a_call_id()
    uas = gateway(tmp_path, kamailio, "kamailio_gateway_busy.xml")
    try:
        # The gateway's own 486, passed on as it is: no X-Callgate-Reason.
        uac = refused_caller(tmp_path, kamailio, "ana", "2125550187", 486, "", call_id=call_id)
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert uas.wait() == 0, uas.report()
    finally:
        uas.kill()

    assert call_id not in callgate.live_calls()
    assert callgate.end(call_id, "busy")[0] == 200


def test_kamailio_gives_a_call_id_callgate_cannot_take_an_id_of_its_own(
    tmp_path: Path, kamailio: Kamailio, callgate: Callgate
) -> None:
    # Legal in a SIP Call-ID (RFC 3261 word), but neither a callgate call id nor safe to put
    # into JSON as it is.
    sip_call_id = f'{uuid.uuid4().hex}/"quoted"\\{{x}}@host'
    call_id = "sip-" + hashlib.md5(sip_call_id.encode()).hexdigest()
    uas = gateway(tmp_path, kamailio, "kamailio_gateway.xml", [
        "-set", "caller_id", "+12125550101",
        "-set", "gateway_host", LOCALHOST,
        "-set", "callgate_call_id", call_id,
    ])
    try:
        uac = caller(tmp_path, kamailio, "ana", "2125550187", call_id=sip_call_id)
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert uas.wait() == 0, uas.report() + kamailio.log()
    finally:
        uas.kill()

    # The BYE found the same call.
    assert call_id not in callgate.live_calls()
    assert callgate.end(call_id, "answered")[0] == 200


# -- refused calls ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "number", "status", "reason"),
    [
        ("dev", "+33142685300", 403, "permission_denied"),
        ("chris", "2125550187", 480, "no_caller_id"),
        ("ana", "12345", 484, "invalid_number"),
        ("nobody", "2125550187", 403, "unknown_user"),
        ("o'brien", "2125550187", 403, "unknown_user"),
        ("ana", "alice", 484, "invalid_number"),
    ],
    ids=[
        "permission_denied",
        "no_caller_id",
        "invalid_number",
        "unknown_user",
        "not_a_user_id",
        "not_a_number",
    ],
)
def test_kamailio_refuses_a_denied_call_with_its_mapped_status(
    tmp_path: Path,
    kamailio: Kamailio,
    silent_gateway: socket.socket,
    user: str,
    number: str,
    status: int,
    reason: str,
) -> None:
    uac = refused_caller(tmp_path, kamailio, user, number, status, reason)
    assert uac.run() == 0, uac.report() + kamailio.log()
    assert_nothing_arrived(silent_gateway)


def test_kamailio_answers_486_when_the_user_has_no_free_channel(
    tmp_path: Path, kamailio: Kamailio, callgate: Callgate, silent_gateway: socket.socket
) -> None:
    # lee has one channel; a call placed by some other means holds it.
    held = a_call_id()
    status, decision = callgate.dial(user="lee", to="2125550187", call_id=held)
    assert status == 200 and decision["allowed"], decision
    try:
        refused = a_call_id()
        uac = refused_caller(
            tmp_path, kamailio, "lee", "2125550188", 486, "channel_limit", call_id=refused
        )
        assert uac.run() == 0, uac.report() + kamailio.log()
        assert_nothing_arrived(silent_gateway)
        assert refused not in callgate.live_calls()
    finally:
        callgate.end(held, "answered")


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that takes connections and never answers, like a callgate that hangs: the
    kernel completes the handshake into the backlog, nobody accepts."""
    with closing(socket.socket()) as sock:
        sock.bind((LOCALHOST, 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("outage", ["refused", "no_answer", "token_refused"])
def test_kamailio_refuses_with_503_when_callgate_cannot_decide(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    callgate: Callgate,
    gateway_port: int,
    silent_gateway: socket.socket,
    outage: str,
) -> None:
    url, token = callgate.url, callgate.service_token
    if outage == "refused":
        url = f"http://{LOCALHOST}:{free_port()}"
    elif outage == "no_answer":
        url = f"http://{LOCALHOST}:{request.getfixturevalue('hung_port')}"
    else:
        token = "cg_not-a-token-of-this-callgate"
    proxy = Kamailio(
        tmp_path, callgate_url=url, token=token, gateway_port=gateway_port, timeout_s=1
    ).start()
    try:
        uac = refused_caller(tmp_path, proxy, "ana", "2125550187", 503, "callgate_unavailable")
        assert uac.run() == 0, uac.report() + proxy.log()
        assert_nothing_arrived(silent_gateway)
    finally:
        proxy.stop()
