"""The SIP parser over real messages: RFC 4475's torture messages and ordinary ones as sipp and
softphones send them (``tests/data/sip``), plus the framing of TCP streams."""

from __future__ import annotations

import itertools
import re
import time
import tomllib
from pathlib import Path

import pytest

from sip.errors import SipMessageError
from sip.message import Request, Response, build_response
from sip.parser import (
    KEEPALIVE,
    MAX_MESSAGE_BYTES,
    StreamFramer,
    parse_message,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
TORTURE = DATA / "rfc4475"
INDEX = tomllib.loads((TORTURE / "index.toml").read_text())

# What callgate makes of each RFC 4475 message: "request" (accepted), "response" (a response:
# ignored by the redirector), a status (answered with it: 400 malformed, 505 version, 416
# scheme), or "drop" (not answerable: no Via to answer to, or a status line we cannot read).
# Where RFC 4475 allows either accepting or refusing, the comment says which we chose.
OUTCOME = {
    "wsinv.sip": "request",
    "intmeth.sip": "request",
    "esc01.sip": "request",
    "escnull.sip": "request",
    "esc02.sip": "request",
    "lwsdisp.sip": "request",
    "longreq.sip": "request",
    "dblreq.sip": "request",
    "semiuri.sip": "request",
    "transports.sip": "request",
    "mpart01.sip": "request",
    "unreason.sip": "response",
    "noreason.sip": "response",
    "badinv01.sip": 400,
    "clerr.sip": 400,
    "ncl.sip": 400,
    "scalar02.sip": 400,
    "scalarlg.sip": "response",
    "quotbal.sip": 400,
    "ltgtruri.sip": 400,
    "lwsruri.sip": 400,
    "lwsstart.sip": 400,
    "trws.sip": 400,
    "escruri.sip": "request",  # allowed: the escaped headers of the Request-URI are ignored
    "baddate.sip": "request",  # allowed: Date plays no part in a decision
    "regbadct.sip": "request",  # a REGISTER: answered 405 whatever its Contact says
    "badaspec.sip": "request",  # allowed: the spaces inside <> are ignored
    "baddn.sip": 400,
    "badvers.sip": 505,
    "mismatch01.sip": 400,
    "mismatch02.sip": 400,  # allowed instead of 501
    "bigcode.sip": "drop",
    "badbranch.sip": "request",
    "insuf.sip": 400,
    "unkscm.sip": 416,
    "novelsc.sip": 416,
    "unksm2.sip": "request",
    "bext01.sip": "request",  # the redirector answers 420 for its Require
    "invut.sip": "request",
    "regaut01.sip": "request",
    "multi01.sip": 400,
    "mcl01.sip": 400,
    "bcast.sip": "response",
    "zeromf.sip": "request",
    "cparam01.sip": "request",
    "cparam02.sip": "request",
    "regescrt.sip": "request",
    "sdp01.sip": "request",
    "inv2543.sip": "request",
    "test.sip": "drop",  # no Via at all
}


def _outcome(data: bytes) -> object:
    try:
        message = parse_message(data)
    except SipMessageError as exc:
        assert exc.status is None
        return "drop"
    if isinstance(message, Response):
        return "response"
    return message.defect_status if message.defect is not None else "request"


def test_every_torture_message_has_an_expected_outcome() -> None:
    assert set(OUTCOME) == set(INDEX)
    for name, meta in INDEX.items():
        if meta["valid"] and meta["kind"] == "request":
            assert OUTCOME[name] in ("request", 416), name


@pytest.mark.parametrize("name", sorted(OUTCOME))
def test_rfc4475_torture_message(name: str) -> None:
    assert _outcome((TORTURE / name).read_bytes()) == OUTCOME[name], INDEX[name]["note"]


def _request(name: str) -> Request:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, Request) and message.defect is None, message
    return message


def test_compact_and_long_header_names_mean_the_same() -> None:
    compact = _request("invite_compact.sip")
    assert compact.call_id and compact.from_ is not None and compact.to is not None
    assert compact.header("content-type") == "application/sdp"
    assert compact.header("contact") is not None
    assert len(compact.body) == int(compact.header("content-length") or 0)


def test_several_via_headers_and_values_keep_their_order() -> None:
    compact = _request("invite_compact.sip")
    assert len(compact.vias) == 3
    assert compact.vias[0].branch is not None and compact.vias[0].branch.startswith("z9hG4bK")
    wsinv = parse_message((TORTURE / "longreq.sip").read_bytes())
    assert isinstance(wsinv, Request) and len(wsinv.vias) == 34


def test_a_folded_header_is_joined_with_one_space() -> None:
    compact = _request("invite_compact.sip")
    subject = compact.header("subject")
    assert subject is not None and "\t" not in subject and "  " not in subject


def test_lws_around_separators_is_allowed() -> None:
    wsinv = parse_message((TORTURE / "wsinv.sip").read_bytes())
    assert isinstance(wsinv, Request) and wsinv.defect is None
    assert wsinv.to is not None and wsinv.to.tag == "1918181833n"
    assert wsinv.cseq == 9 and wsinv.max_forwards == 68


def test_the_request_uri_user_is_unescaped() -> None:
    esc = parse_message((TORTURE / "esc01.sip").read_bytes())
    assert isinstance(esc, Request) and esc.request_uri is not None
    assert esc.request_uri.user == "sips:user@example.com"


def test_a_datagram_body_is_cut_at_content_length() -> None:
    double = parse_message((TORTURE / "dblreq.sip").read_bytes())
    assert isinstance(double, Request) and double.method == "REGISTER" and double.body == b""


@pytest.mark.parametrize("header", ["Content-Length", "CSeq", "Max-Forwards"])
def test_a_number_of_5000_digits_is_an_answerable_defect(header: str) -> None:
    message = (DATA / "options.sip").read_bytes()
    huge = "9" * 5000 + (" OPTIONS" if header == "CSeq" else "")
    lines = [line for line in message.split(b"\r\n")
             if not line.lower().startswith(header.lower().encode() + b":")]
    lines.insert(1, f"{header}: {huge}".encode())
    request = parse_message(b"\r\n".join(lines))
    assert isinstance(request, Request) and request.defect_status == 400
    assert request.defect is not None and f"bad {header}" in request.defect


def test_a_binary_body_is_framed_by_length_not_lines() -> None:
    mpart = parse_message((TORTURE / "mpart01.sip").read_bytes())
    assert isinstance(mpart, Request) and len(mpart.body) == 553 and b"\x00" in mpart.body


def test_a_message_over_the_limit_is_answered_513() -> None:
    head = (DATA / "options.sip").read_bytes().split(b"\r\n\r\n")[0]
    big = head + b"\r\nX-Padding: " + b"a" * MAX_MESSAGE_BYTES + b"\r\n\r\n"
    message = parse_message(big)
    assert isinstance(message, Request) and message.defect_status == 513


def test_a_response_copies_via_from_to_call_id_and_cseq() -> None:
    invite = _request("invite_sipp.sip")
    data = build_response(invite, 486, "Busy Here", source=("192.0.2.7", 5070), to_tag="t1")
    lines = data.decode().split("\r\n")
    assert lines[0] == "SIP/2.0 486 Busy Here"
    assert lines[1].startswith(f"Via: {invite.vias[0].raw}")
    assert "received=192.0.2.7" in lines[1]
    for name in ("from", "call-id", "cseq"):
        assert any(line.lower() == f"{name}: {invite.header(name)}".lower() for line in lines)
    assert f"To: {invite.header('to')};tag=t1" in lines
    assert data.endswith(b"Content-Length: 0\r\n\r\n")


def test_rport_is_filled_in_with_the_source_port() -> None:
    request = parse_message(
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKr\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\n"
        b"Call-ID: r1\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert isinstance(request, Request)
    data = build_response(request, 200, "OK", source=("203.0.113.9", 40000), to_tag=None)
    assert (b"Via: SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bKr;received=203.0.113.9"
            in data)


# -- framing a stream ------------------------------------------------------------------------------


def test_a_stream_is_cut_into_messages_by_content_length() -> None:
    invite = (DATA / "invite_sipp.sip").read_bytes()
    options = (DATA / "options.sip").read_bytes()
    stream = invite + options + invite
    framer = StreamFramer()
    out: list[object] = []
    for i in range(0, len(stream), 97):  # arbitrary chunk boundaries
        out += framer.feed(stream[i:i + 97])
    assert out == [invite, options, invite]


def test_a_crlf_keepalive_on_a_stream_is_reported() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KEEPALIVE]
    assert framer.feed(b"\r\n") == []  # maybe the start of another
    assert framer.feed(b"\r\n") == [KEEPALIVE]


@pytest.mark.parametrize("length", [b"-999", b"abc", b"5\r\nContent-Length: 13", b"9" * 5000],
                         ids=["negative", "not a number", "two values", "5,000 digits"])
def test_a_stream_with_a_bad_content_length_cannot_be_framed(length: bytes) -> None:
    message = (b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
               b"Content-Length: " + length + b"\r\n\r\nbody")
    with pytest.raises(SipMessageError):
        StreamFramer().feed(message)


def test_a_stream_without_an_end_of_headers_is_cut_off_at_the_limit() -> None:
    framer = StreamFramer()
    assert framer.feed(b"OPTIONS sip:x SIP/2.0\r\n") == []
    with pytest.raises(SipMessageError):
        framer.feed(b"X: " + b"a" * MAX_MESSAGE_BYTES)


def test_a_stream_fed_byte_by_byte_stays_linear() -> None:
    # A peer picks the segment size: one byte per segment must cost us no more than a
    # constant per byte, or one connection stalls the event loop.
    head = (DATA / "options.sip").read_bytes().split(b"\r\n\r\n")[0]  # has Content-Length: 0
    padding = MAX_MESSAGE_BYTES - len(head) - len(b"\r\nX-Padding: \r\n\r\n")
    biggest = head + b"\r\nX-Padding: " + b"a" * padding + b"\r\n\r\n"
    assert len(biggest) == MAX_MESSAGE_BYTES  # the largest head the framer lets through
    names = ("invite_sipp.sip", "options.sip", "register.sip", "invite_compact.sip")
    expected: list[object] = []
    stream = b""
    for message in itertools.cycle([(DATA / name).read_bytes() for name in names]):
        if len(stream) >= 32 * 1024:
            break
        expected += [message, KEEPALIVE]
        stream += message + b"\r\n\r\n"
    expected.append(biggest)
    stream += biggest
    assert len(stream) >= 64 * 1024
    pieces = [stream[i:i + 1] for i in range(len(stream))]

    # The least any framer does per call: keep the byte, look for an end of head near it.
    head_end = re.compile(rb"\r?\n\r?\n")
    started = time.process_time()
    kept = bytearray()
    for piece in pieces:
        kept += piece
        head_end.search(kept, max(0, len(kept) - 3))
    reference_s = time.process_time() - started

    framer = StreamFramer()
    out: list[object] = []
    started = time.process_time()
    for piece in pieces:
        out += framer.feed(piece)
    cost_s = time.process_time() - started

    assert out == expected
    assert StreamFramer().feed(stream) == expected
    # Linear: about 2x the reference. Rescanning the buffer on each call (quadratic) was
    # over 150x. 20x leaves room for a noisy shared machine.
    assert cost_s < 20 * reference_s, f"{cost_s:.3f} s of CPU, reference {reference_s:.3f} s"
