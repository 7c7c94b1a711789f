"""The SIP front end of a real ``callgate serve``, over UDP, TCP and TLS: digest
authentication, retransmissions, trusted peers, replays and stale nonces. (sipp drives the
same server in ``test_sipp.py``.)"""

from __future__ import annotations

import re
import secrets
import socket
import time
from pathlib import Path

import pytest

from .conftest import PASSWORDS, TRUSTED, SipClient, SipSeed, SipService, start_sip_service
from .sipmsg import ack_for, answer_challenge, header, invite, request, status_of

TRANSPORTS = ["udp", "tcp", "tls"]
TO = "+12125550187"
URI = f"sip:{TO}@demo.sip.example"


def _invite(client: SipClient, **kw: object) -> bytes:
    return invite(via=client.local, transport=client.transport.upper(), **kw)  # type: ignore[arg-type]


def _exchange(client: SipClient, data: bytes) -> bytes:
    """Send a request, read its final response, ACK it if it was an INVITE."""
    client.send(data)
    reply = client.receive()
    while status_of(reply) < 200:
        reply = client.receive()
    if data.startswith(b"INVITE") and status_of(reply) >= 300:
        client.send(ack_for(data, reply))
    return reply


def _authenticated_invite(client: SipClient, user: str = "ana", *, password: str | None = None,
                          **kw: object) -> tuple[bytes, bytes]:
    """Challenge, answer; the answered INVITE and its final response."""
    call_id = str(kw.pop("call_id", f"{secrets.token_hex(6)}@test"))
    first = _invite(client, user=user, call_id=call_id, **kw)
    challenge = _exchange(client, first)
    assert status_of(challenge) == 401, challenge
    auth = answer_challenge(challenge, username=user, password=password or PASSWORDS[user],
                            uri=URI)
    second = _invite(client, user=user, call_id=call_id, cseq=2,
                     extra=(f"Authorization: {auth}",), **kw)
    return second, _exchange(client, second)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_authenticated_invite_is_redirected_with_the_caller_id(
    sip_service: SipService, transport: str
) -> None:
    client = sip_service.client(transport)
    _, reply = _authenticated_invite(client)
    assert status_of(reply) == 302, reply
    assert header(reply, "Contact") == [f"<sip:{TO}@gw.example:5080;user=phone>"]
    assert header(reply, "P-Asserted-Identity") == [
        "<sip:+12125550101@demo.sip.example;user=phone>"
    ]
    assert re.fullmatch(r"sip-[0-9a-f]{24}", header(reply, "X-Callgate-Call-Id")[0])
    client.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_retransmitted_invite_takes_one_lease_and_gets_identical_answers(
    sip_service: SipService, transport: str
) -> None:
    client = sip_service.client(transport)
    first = _invite(client, call_id="resent@test")
    challenge = _exchange(client, first)
    auth = answer_challenge(challenge, username="ana", password=PASSWORDS["ana"], uri=URI)
    answered = _invite(client, call_id="resent@test", cseq=2, extra=(f"Authorization: {auth}",))
    answers = []
    for _ in range(3):  # the client heard nothing (it thinks), so it sends the INVITE again
        client.send(answered)
        answers.append(client.receive())
    client.send(ack_for(answered, answers[0]))
    assert status_of(answers[0]) == 302 and answers[0] == answers[1] == answers[2]
    assert sip_service.leases() == 1
    client.close()


def test_the_call_id_of_the_302_ends_the_call_over_http(sip_service: SipService) -> None:
    import urllib.request

    _, reply = _authenticated_invite(sip_service.client())
    call_id = header(reply, "X-Callgate-Call-Id")[0]
    assert sip_service.leases() == 1
    end = urllib.request.Request(
        f"{sip_service.server.url}/v1/calls/{call_id}/end", data=b'{"outcome": "answered"}',
        headers={**sip_service.server.headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(end, timeout=10) as answer:
        assert answer.status == 200
    assert sip_service.leases() == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_options_is_answered_over_every_transport(sip_service: SipService, transport: str) -> None:
    client = sip_service.client(transport)
    reply = _exchange(client, request("OPTIONS", via=client.local,
                                      transport=transport.upper()))
    assert status_of(reply) == 200 and header(reply, "Allow")
    client.close()


def test_a_trusted_peer_is_decided_without_a_challenge(sip_service: SipService) -> None:
    pbx = sip_service.client(source=TRUSTED)
    reply = _exchange(pbx, _invite(pbx, user="pbx", extra=("X-Callgate-User: ana",)))
    assert status_of(reply) == 302
    assert header(reply, "P-Asserted-Identity") == [
        "<sip:+12125550101@demo.sip.example;user=phone>"
    ]


@pytest.mark.parametrize(("to", "status"), [("911", 302), ("+12125550187", 403)],
                         ids=["emergency", "any other call"])
def test_a_preferred_identity_that_is_no_number_never_stops_an_emergency_call(
    sip_service: SipService, to: str, status: int
) -> None:
    # A PBX may prefer an extension as the identity: no caller ID a user may choose, so it is
    # refused as one asked for, but an emergency call goes through with the user's default.
    pbx = sip_service.client(source=TRUSTED)
    extra = ("X-Callgate-User: ana", "P-Preferred-Identity: <sip:1001@pbx.example>")
    reply = _exchange(pbx, _invite(pbx, user="pbx", to=to, extra=extra,
                                   call_id=f"ppi-{to}@192.0.2.10"))
    assert status_of(reply) == status
    if status == 302:
        assert header(reply, "P-Asserted-Identity") == [
            "<sip:+12125550101@demo.sip.example;user=phone>"]
    else:
        assert header(reply, "X-Callgate-Reason") == ["caller_id_not_allowed"]


def test_the_same_invite_from_outside_the_trusted_network_is_challenged(
    sip_service: SipService,
) -> None:
    outsider = sip_service.client(source="127.0.0.1")
    reply = _exchange(outsider, _invite(outsider, user="pbx", extra=("X-Callgate-User: ana",)))
    assert status_of(reply) == 401
    assert sip_service.leases() == 0


def test_a_replayed_nonce_count_is_refused(sip_service: SipService) -> None:
    client = sip_service.client()
    answered, reply = _authenticated_invite(client)
    assert status_of(reply) == 302
    auth = next(line for line in answered.decode().split("\r\n") if line.startswith("Author"))
    replay = _invite(client, call_id="replayed@test", extra=(auth,))
    refused = _exchange(client, replay)
    assert status_of(refused) == 401
    assert sip_service.metric("callgate_sip_auth_failures_total") == 1
    assert sip_service.leases() == 1


def test_a_wrong_password_is_challenged_again_never_redirected(sip_service: SipService) -> None:
    client = sip_service.client()
    _, reply = _authenticated_invite(client, password="Wrong-password-2026")
    assert status_of(reply) == 401 and header(reply, "WWW-Authenticate")
    assert sip_service.leases() == 0


def test_voip_switched_off_refuses_the_user(sip_service: SipService) -> None:
    _, reply = _authenticated_invite(sip_service.client(), user="sam")
    assert status_of(reply) == 403


def test_an_expired_nonce_gets_a_fresh_challenge_marked_stale(
    tmp_path: Path, sip_seed: SipSeed
) -> None:
    service = start_sip_service(tmp_path, "--sip-nonce-ttl", "1", seed=sip_seed)
    try:
        client = service.client()
        first = _invite(client, call_id="late@test")
        challenge = _exchange(client, first)
        auth = answer_challenge(challenge, username="ana", password=PASSWORDS["ana"], uri=URI)
        # Wait it out for real: stale once more than the TTL (1 s) has passed since it was
        # issued. Its issue time is rounded down to the second, which only makes it older.
        time.sleep(1.1)
        late = _exchange(client, _invite(client, call_id="late@test", cseq=2,
                                         extra=(f"Authorization: {auth}",)))
        assert status_of(late) == 401
        assert all("stale=true" in v for v in header(late, "WWW-Authenticate"))
        auth = answer_challenge(late, username="ana", password=PASSWORDS["ana"], uri=URI)
        fresh = _exchange(client, _invite(client, call_id="late@test", cseq=3,
                                          extra=(f"Authorization: {auth}",)))
        assert status_of(fresh) == 302
    finally:
        service.server.kill()


def test_an_invite_resent_as_a_new_transaction_gets_the_same_decision(
    sip_service: SipService,
) -> None:
    """A PBX that gave up on a transaction and sends the INVITE again (new branch, same Call-ID
    and From tag) gets the same decision and takes no second channel."""
    pbx = sip_service.client(source=TRUSTED)
    first = _exchange(pbx, _invite(pbx, call_id="again@pbx", extra=("X-Callgate-User: ana",)))
    again = _exchange(pbx, _invite(pbx, call_id="again@pbx", extra=("X-Callgate-User: ana",)))
    assert status_of(first) == status_of(again) == 302
    assert header(first, "X-Callgate-Call-Id") == header(again, "X-Callgate-Call-Id")
    assert sip_service.leases() == 1


# -- where UDP answers go (RFC 3261 section 18.2.2, RFC 3581) -----------------------------------


def _options_naming(client: SipClient, port: int, *, rport: bool) -> bytes:
    """An OPTIONS whose Via names ``port`` on the client's host, with or without ``rport``."""
    sent = request("OPTIONS", via=f"127.0.0.1:{port}")
    return sent if rport else sent.replace(b";rport", b"")


def test_without_rport_the_answer_goes_to_the_via_sent_by_port(sip_service: SipService) -> None:
    client = sip_service.client()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        client.send(_options_naming(client, listener.getsockname()[1], rport=False))
        reply = listener.recv(65536)
        assert status_of(reply) == 200
        assert client.nothing_within(0.5), "nothing goes to the source port"
    client.close()


def test_with_rport_the_answer_goes_to_the_source_port(sip_service: SipService) -> None:
    client = sip_service.client()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        client.send(_options_naming(client, listener.getsockname()[1], rport=True))
        reply = client.receive()
        assert status_of(reply) == 200
        assert f";rport={client.local.split(':')[1]};" in header(reply, "Via")[0]
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.recv(65536)
    client.close()


# -- bans ----------------------------------------------------------------------------------------


def test_a_password_guesser_is_banned_but_not_the_other_users_behind_its_address(
    tmp_path: Path, sip_seed: SipSeed
) -> None:
    service = start_sip_service(tmp_path, "--sip-ban-after", "3", seed=sip_seed)
    try:
        guesser, colleague = service.client(), service.client()  # one address, 127.0.0.1
        for _ in range(3):
            _, reply = _authenticated_invite(guesser, password="Not-Ana-s-password-1")
            assert status_of(reply) == 401
        assert service.metric("callgate_sip_bans_total", 'scope="user"') == 1
        guesser.send(_invite(guesser, call_id="after-the-ban@test"))
        assert guesser.nothing_within(1.0)
        _, reply = _authenticated_invite(colleague, "lee")
        assert status_of(reply) == 302
        assert service.metric("callgate_sip_bans_total", 'scope="address"') == 0
    finally:
        service.server.kill()
