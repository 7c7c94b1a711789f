"""Fuzzing: nothing a peer sends makes the parser or the redirector raise, and random
datagrams at a running server leave it answering OPTIONS."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import SipMessageError
from sip.parser import StreamFramer, parse_message
from sip.redirect import Dial, EndCall, Redirector, Reply, SipSettings, TrustedPeer

from .conftest import SipService
from .sipmsg import request, status_of
from .test_redirect import ACCOUNT, Accounts

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
SEEDS = sorted(p.read_bytes() for p in DATA.rglob("*.sip"))

# Mutations of real messages reach far deeper into the parser than random bytes do.
_TOKENS = [b"\r\n", b" ", b":", b";", b",", b"<", b">", b'"', b"\\", b"=", b"@", b"%", b"\t",
           b"\x00", b"\xff", b"0", b"99999999999999999999", b"-1", b"SIP/2.0", b"Via:", b"l:",
           b"Content-Length: 5", b"branch=z9hG4bK", b"tag=", b"Digest ", b"sip:", b"tel:"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    message = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not message:
            break
        at = draw(st.integers(0, len(message) - 1))
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if action == "insert":
            message[at:at] = draw(st.sampled_from(_TOKENS))
        elif action == "delete":
            del message[at:at + draw(st.integers(1, 20))]
        elif action == "replace":
            message[at] = draw(st.integers(0, 255))
        else:
            del message[at:]
    return bytes(message)


messages = st.one_of(mutated(), st.binary(max_size=2000))


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_the_parser_never_raises_anything_but_its_own_error(data: bytes) -> None:
    with contextlib.suppress(SipMessageError):
        parse_message(data)
    with contextlib.suppress(SipMessageError):
        StreamFramer().feed(data)


REDIRECTOR = Redirector(
    SipSettings(trusted=(TrustedPeer(network="10.0.0.0/8", account="demo"),)), Accounts(ACCOUNT))


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.sampled_from([("192.0.2.1", 5060), ("10.0.0.1", 5060)]), st.booleans())
def test_the_redirector_answers_or_drops_anything(
    data: bytes, peer: tuple[str, int], reliable: bool
) -> None:
    for output in REDIRECTOR.receive(data, peer, reliable=reliable, now_s=0.0):
        assert isinstance(output, (Reply, Dial, EndCall)), output
        if isinstance(output, Reply):  # a whole response: status line to empty line
            assert output.data.startswith(b"SIP/2.0 ") and output.data.endswith(b"\r\n\r\n")


def test_random_datagrams_leave_the_server_answering(sip_service: SipService) -> None:
    rng = random.Random(4475)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.01)
    for i in range(3000):
        if i % 2:
            seed = bytearray(rng.choice(SEEDS))
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(seed))
                seed[at:at + rng.randint(0, 10)] = rng.choice(_TOKENS)
            data = bytes(seed)
        else:
            data = rng.randbytes(rng.randint(0, 1400))
        sock.sendto(data, sip_service.address)
        if i % 100 == 0:  # keep the answers from piling up in our receive buffer
            try:
                while sock.recv(65536):
                    pass
            except TimeoutError:
                pass
    sock.close()
    client = sip_service.client()
    client.send(request("OPTIONS", via=client.local))
    assert status_of(client.receive(10.0)) == 200
    assert sip_service.server.process is not None and sip_service.server.process.poll() is None
    assert sip_service.metric("callgate_sip_dropped_total", 'why="error"') == 0
