"""The redirect server's logic without sockets: bytes in, replies and decisions to make out.
The accounts are the demo's, compiled as the engine compiles them."""

from __future__ import annotations

import re

import msgspec
import pytest

from callerid import AccountSnapshot, Attestation, Reason, Rule, compile_account
from engine.errors import Conflict, NotFound
from engine.wire import Decision
from sip.credentials import make_credential
from sip.redirect import DENIAL_STATUS, Dial, EndCall, Redirector, Reply, SipSettings, TrustedPeer
from tests.conftest import demo_config

from .sipmsg import answer_challenge, header, invite, request, status_of

DOMAIN = "demo.sip.example"
ANA_PASSWORD = "Ana-desk-phone-2026"
SAM_PASSWORD = "Sam-desk-phone-2026"
LEE_PASSWORD = "Lee-softphone-2026!"
URI = f"sip:+12125550187@{DOMAIN}"
PEER = ("192.0.2.10", 5062)
PBX = ("10.1.2.3", 5060)


class Accounts:
    """The engine's lookups, over compiled snapshots."""

    def __init__(self, *snapshots: AccountSnapshot) -> None:
        self._by_id = {s.account_id: s for s in snapshots}

    def account(self, account_id: str) -> AccountSnapshot | None:
        return self._by_id.get(account_id)

    def account_for_domain(self, domain: str) -> AccountSnapshot | None:
        return next((s for s in self._by_id.values() if s.sip_domain == domain), None)


def _demo() -> AccountSnapshot:
    config = demo_config()
    users = []
    for user in config.users:
        if user.id == "ana":
            user = msgspec.structs.replace(user, sip=make_credential(
                "ana", DOMAIN, ANA_PASSWORD, now_ms=0))
        elif user.id == "sam":
            user = msgspec.structs.replace(user, sip=make_credential(
                "sam.desk", DOMAIN, SAM_PASSWORD, now_ms=0, enabled=False))
        elif user.id == "lee":
            user = msgspec.structs.replace(user, sip=make_credential(
                "lee", DOMAIN, LEE_PASSWORD, now_ms=0))
        users.append(user)
    return compile_account(msgspec.structs.replace(config, sip_domain=DOMAIN,
                                                   users=tuple(users)), 1)


ACCOUNT = _demo()


@pytest.fixture
def redirector() -> Redirector:
    settings = SipSettings(gateway="gw.example:5080", ban_after=3,
                           trusted=(TrustedPeer(network="10.1.2.0/24", account="demo"),))
    return Redirector(settings, Accounts(ACCOUNT))


def _one_reply(outputs: list[object]) -> bytes:
    assert len(outputs) == 1 and isinstance(outputs[0], Reply), outputs
    return outputs[0].data


def _dial(outputs: list[object]) -> Dial:
    assert len(outputs) == 1 and isinstance(outputs[0], Dial), outputs
    return outputs[0]


def _authenticated(r: Redirector, *, password: str = ANA_PASSWORD, username: str = "ana",
                   now: float = 0.0, call_id: str = "call-1@192.0.2.10",
                   **kw: object) -> list[object]:
    challenge = _one_reply(r.receive(invite(call_id=call_id, **kw), PEER, reliable=False,
                                     now_s=now))
    assert status_of(challenge) == 401
    auth = answer_challenge(challenge, username=username, password=password, uri=URI)
    again = invite(call_id=call_id, cseq=2, extra=(f"Authorization: {auth}",), **kw)
    return r.receive(again, PEER, reliable=False, now_s=now + 0.1)  # type: ignore[return-value]


# -- digest authentication -----------------------------------------------------------------------


def test_an_invite_without_credentials_is_challenged(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    assert status_of(reply) == 401
    offers = header(reply, "WWW-Authenticate")
    assert [re.search(r"algorithm=([\w-]+)", o).group(1) for o in offers] == ["MD5", "SHA-256"]  # type: ignore[union-attr]
    assert all(f'realm="{DOMAIN}"' in o and 'qop="auth"' in o for o in offers)


def test_a_correct_answer_is_decided_for_that_user(redirector: Redirector) -> None:
    dial = _dial(_authenticated(redirector))
    assert dial.account.account_id == "demo"
    assert (dial.request.user, dial.request.to) == ("ana", "+12125550187")
    assert dial.request.call_id is not None and dial.request.call_id.startswith("sip-")


def test_a_sha256_answer_works_too(redirector: Redirector) -> None:
    challenge = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    auth = answer_challenge(challenge, username="ana", password=ANA_PASSWORD, uri=URI,
                            algorithm="SHA-256")
    _dial(redirector.receive(invite(cseq=2, extra=(f"Authorization: {auth}",)), PEER,
                             reliable=False, now_s=0.1))


def _masked(data: bytes) -> bytes:
    data = re.sub(rb'nonce="[^"]*"', b'nonce="-"', data)
    return re.sub(rb"branch=[^;\r]*", b"branch=-", data)


def test_an_unknown_user_and_a_wrong_password_get_the_same_401(
    redirector: Redirector,
) -> None:
    """Byte for byte, apart from the nonce (and the branch, which each request chooses); the
    same as the first challenge, and for a user without SIP credentials."""
    first = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    wrong = _one_reply(_authenticated(redirector, password="Not-the-password-1"))
    unknown = _one_reply(_authenticated(redirector, username="nobody-here"))
    no_credentials = _one_reply(_authenticated(redirector, username="olivia"))
    assert status_of(wrong) == 401
    assert _masked(wrong) == _masked(unknown) == _masked(no_credentials)
    assert wrong != unknown  # the nonces differ
    assert _masked(first) == _masked(wrong).replace(b"CSeq: 2", b"CSeq: 1")


def test_voip_switched_off_refuses_the_user(redirector: Redirector) -> None:
    reply = _one_reply(_authenticated(redirector, username="sam.desk", password=SAM_PASSWORD,
                                      user="sam"))
    assert status_of(reply) == 403


def test_a_replayed_authorization_is_challenged_again(redirector: Redirector) -> None:
    challenge = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    auth = answer_challenge(challenge, username="ana", password=ANA_PASSWORD, uri=URI)
    _dial(redirector.receive(invite(cseq=2, extra=(f"Authorization: {auth}",)), PEER,
                             reliable=False, now_s=0.1))
    replay = invite(call_id="other@x", extra=(f"Authorization: {auth}",))
    refused = _one_reply(redirector.receive(replay, PEER, reliable=False, now_s=0.2))
    assert status_of(refused) == 401
    assert redirector.counters["auth_failures"] == 1


def test_an_expired_nonce_is_answered_stale(redirector: Redirector) -> None:
    challenge = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    auth = answer_challenge(challenge, username="ana", password=ANA_PASSWORD, uri=URI)
    late = invite(cseq=2, extra=(f"Authorization: {auth}",))
    reply = _one_reply(redirector.receive(late, PEER, reliable=False, now_s=301.0))
    assert status_of(reply) == 401
    assert all("stale=true" in o for o in header(reply, "WWW-Authenticate"))


def _guess(r: Redirector, attempts: int, *, username: str = "ana", user: str = "ana") -> None:
    """``attempts`` wrong passwords for ``username`` from PEER, each answered 401."""
    for attempt in range(attempts):
        reply = _authenticated(r, password="Not-the-password-1", username=username, user=user,
                               call_id=f"guess-{username}-{attempt}", now=attempt)
        assert status_of(_one_reply(reply)) == 401


def test_repeated_failures_ban_that_login_at_that_address(redirector: Redirector) -> None:
    _guess(redirector, 3)
    assert redirector.counters["bans:user"] == 1 and "bans:address" not in redirector.counters
    # Nothing at all for ana from there: no challenge, and no answer to a right password.
    assert redirector.receive(invite(call_id="banned-1"), PEER, reliable=False, now_s=4.0) == []
    challenge = _one_reply(redirector.receive(invite(call_id="banned-2", user="lee"), PEER,
                                              reliable=False, now_s=4.0))
    auth = answer_challenge(challenge, username="ana", password=ANA_PASSWORD, uri=URI)
    right = invite(call_id="banned-2", user="lee", cseq=2, extra=(f"Authorization: {auth}",))
    assert redirector.receive(right, PEER, reliable=False, now_s=4.1) == []
    assert redirector.counters["dropped:banned"] == 2


def test_a_banned_login_leaves_the_other_users_at_that_address_working(
    redirector: Redirector,
) -> None:
    _guess(redirector, 3)
    dial = _dial(_authenticated(redirector, username="lee", password=LEE_PASSWORD, user="lee",
                                call_id="lee-call", now=5.0))
    assert dial.request.user == "lee"
    assert status_of(_one_reply(redirector.receive(request("OPTIONS"), PEER, reliable=False,
                                                   now_s=6.0))) == 200


def test_a_ban_of_a_login_silences_its_retransmissions_too(redirector: Redirector) -> None:
    early = invite(call_id="early", branch="z9hG4bKearly")
    assert status_of(_one_reply(redirector.receive(early, PEER, reliable=False,
                                                   now_s=0.0))) == 401
    _guess(redirector, 3)  # six more 401s to ana's INVITEs, none acknowledged
    lee = _one_reply(redirector.receive(invite(call_id="lee-call", user="lee"), PEER,
                                        reliable=False, now_s=2.5))
    assert redirector.due(3.0) == [(lee, PEER)]
    assert redirector.receive(early, PEER, reliable=False, now_s=3.1) == []  # resent by ana


def test_a_banned_login_is_answered_again_once_the_ban_ends(redirector: Redirector) -> None:
    _guess(redirector, 3)  # the third answer, at 2.1 s, starts a 300 s ban
    assert redirector.receive(invite(call_id="late"), PEER, reliable=False, now_s=302.0) == []
    _dial(_authenticated(redirector, call_id="later", now=302.1))


def test_failures_for_many_usernames_ban_the_whole_address(redirector: Redirector) -> None:
    for username in ("ana", "lee", "nobody-here"):
        _guess(redirector, 1, username=username)
    assert redirector.counters["bans:address"] == 1
    assert redirector.receive(request("OPTIONS"), PEER, reliable=False, now_s=4.0) == []
    assert redirector.counters["dropped:banned"] == 1
    other = ("192.0.2.99", 5060)
    assert redirector.receive(request("OPTIONS"), other, reliable=False, now_s=4.0) != []


def test_guessing_at_an_unknown_username_is_banned_as_at_a_real_one(
    redirector: Redirector,
) -> None:
    """Were the whole address banned for it, what still answers would tell real usernames
    from made-up ones."""
    _guess(redirector, 3, username="nobody-here")
    assert redirector.counters["bans:user"] == 1 and "bans:address" not in redirector.counters
    assert status_of(_one_reply(redirector.receive(request("OPTIONS"), PEER, reliable=False,
                                                   now_s=4.0))) == 200


# -- trusted peers -------------------------------------------------------------------------------


def test_a_trusted_peer_names_the_user_without_a_challenge(redirector: Redirector) -> None:
    dial = _dial(redirector.receive(invite(extra=("X-Callgate-User: gina",)), PBX,
                                    reliable=False, now_s=0.0))
    assert dial.request.user == "gina"


def test_the_user_header_from_an_untrusted_address_is_ignored(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(invite(extra=("X-Callgate-User: gina",)), PEER,
                                          reliable=False, now_s=0.0))
    assert status_of(reply) == 401


def test_a_trusted_peer_may_name_the_user_in_from() -> None:
    settings = SipSettings(user_header="From", trusted=(TrustedPeer(network="10.1.2.3"),))
    r = Redirector(settings, Accounts(ACCOUNT))
    dial = _dial(r.receive(invite(user="dev"), PBX, reliable=False, now_s=0.0))
    assert (dial.account.account_id, dial.request.user) == ("demo", "dev")


def test_a_trusted_peer_naming_nobody_or_an_unknown_user_is_refused(
    redirector: Redirector,
) -> None:
    assert status_of(_one_reply(redirector.receive(invite(), PBX, reliable=False,
                                                   now_s=0.0))) == 403
    unknown = invite(call_id="c2", extra=("X-Callgate-User: ghost",))
    assert status_of(_one_reply(redirector.receive(unknown, PBX, reliable=False,
                                                   now_s=0.0))) == 404


# -- the decision's answer -----------------------------------------------------------------------


def test_an_allowed_decision_is_a_302_to_the_gateway(redirector: Redirector) -> None:
    dial = _dial(_authenticated(redirector))
    decision = Decision(allowed=True, call_id=dial.request.call_id or "", caller_id="+12125550101",
                        rule=Rule.USER_DEFAULT, to="+12125550187")
    reply = _one_reply(redirector.decided(dial, decision, 0.2))
    assert status_of(reply) == 302
    assert header(reply, "Contact") == ["<sip:+12125550187@gw.example:5080;user=phone>"]
    assert header(reply, "P-Asserted-Identity") == [f"<sip:+12125550101@{DOMAIN};user=phone>"]
    assert header(reply, "X-Callgate-Call-Id") == [dial.request.call_id]
    assert header(reply, "X-Callgate-Attestation") == []  # none given, none sent


@pytest.mark.parametrize("level", list(Attestation))
def test_a_302_carries_the_attestation_for_the_sbc(
    redirector: Redirector, level: Attestation
) -> None:
    dial = _dial(_authenticated(redirector))
    decision = Decision(allowed=True, call_id=dial.request.call_id or "", caller_id="+12125550101",
                        rule=Rule.EMERGENCY, to="+12125550187", attestation=level)
    reply = _one_reply(redirector.decided(dial, decision, 0.2))
    assert header(reply, "X-Callgate-Attestation") == [level.value]


@pytest.mark.parametrize(("reason", "status"), [
    (Reason.CHANNEL_LIMIT, 486), (Reason.PERMISSION_DENIED, 403),
    (Reason.CALLER_ID_NOT_ALLOWED, 403), (Reason.INVALID_NUMBER, 484),
    (Reason.NO_CALLER_ID, 480), (Reason.STORE_UNAVAILABLE, 503),
    (Reason.CALLER_ID_CAPPED, 403), (Reason.OUTSIDE_CALLING_HOURS, 480),
    (Reason.DO_NOT_CALL, 403),
])
def test_a_denial_is_its_sip_status(redirector: Redirector, reason: Reason, status: int) -> None:
    """Every reason a dial can be denied has its status (none falls to the default)."""
    assert set(DENIAL_STATUS) == set(Reason)
    dial = _dial(_authenticated(redirector))
    denial = Decision(allowed=False, call_id="c", reason=reason, detail="why")
    reply = _one_reply(redirector.decided(dial, denial, 0.2))
    assert status_of(reply) == status
    assert header(reply, "X-Callgate-Reason") == [str(reason)]


@pytest.mark.parametrize(("error", "status"), [(NotFound("no user"), 404),
                                               (Conflict("reused"), 400)])
def test_an_error_deciding_is_its_sip_status(
    redirector: Redirector, error: Exception, status: int
) -> None:
    dial = _dial(_authenticated(redirector))
    assert status_of(_one_reply(redirector.decided(dial, error, 0.2))) == status  # type: ignore[arg-type]


@pytest.mark.parametrize("identity", [
    "<sip:+13105550110@demo.sip.example>",
    '"Doe, John" <sip:+13105550110@demo.sip.example;user=phone>',  # a comma in the name
    "<sip:+13105550110;npdi@demo.sip.example>, <tel:+13105550110>",  # RFC 3325: sip, then tel
], ids=["plain", "quoted-comma", "two-identities"])
def test_p_preferred_identity_asks_for_a_caller_id(redirector: Redirector, identity: str) -> None:
    extra = ("X-Callgate-User: chris", f"P-Preferred-Identity: {identity}")
    dial = _dial(redirector.receive(invite(extra=extra), PBX, reliable=False, now_s=0.0))
    assert dial.request.caller_id == "+13105550110"


@pytest.mark.parametrize(("to", "status"), [
    ("1" * 64, None), ("1" * 65, 484), ("alice", 484), ("-", 484),
], ids=["at the limit", "over the limit", "a name", "no digits"])
def test_a_destination_is_held_to_the_decision_apis_type(
    redirector: Redirector, to: str, status: int | None
) -> None:
    sent = invite(to=to, extra=("X-Callgate-User: gina",))
    outputs = redirector.receive(sent, PBX, reliable=False, now_s=0.0)
    if status is None:
        assert _dial(outputs).request.to == to
    else:
        assert status_of(_one_reply(outputs)) == status


def test_a_preferred_identity_that_is_not_a_number_is_asked_for_as_it_is(
    redirector: Redirector,
) -> None:
    # Not refused before the engine: it denies the caller ID (caller_id_not_allowed) unless
    # the call is an emergency one, which always goes through (tests/sip/test_server.py).
    extra = ("X-Callgate-User: chris", "P-Preferred-Identity: <sip:1001@pbx.example>")
    dial = _dial(redirector.receive(invite(extra=extra), PBX, reliable=False, now_s=0.0))
    assert dial.request.caller_id == "1001"


def test_voip_switched_off_refuses_the_user_a_trusted_peer_names(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(invite(extra=("X-Callgate-User: sam",)), PBX,
                                          reliable=False, now_s=0.0))
    assert status_of(reply) == 403
    assert "VoIP is switched off" in header(reply, "Warning")[0]


# -- transactions --------------------------------------------------------------------------------


def test_a_retransmitted_invite_gets_the_same_answer_and_no_second_decision(
    redirector: Redirector,
) -> None:
    sent = invite(extra=("X-Callgate-User: gina",))
    dial = _dial(redirector.receive(sent, PBX, reliable=False, now_s=0.0))
    assert redirector.receive(sent, PBX, reliable=False, now_s=0.05) == []  # still deciding
    decision = Decision(allowed=True, call_id="c", caller_id="+12125550101",
                        rule=Rule.USER_DEFAULT, to="+12125550187")
    answer = _one_reply(redirector.decided(dial, decision, 0.1))
    assert _one_reply(redirector.receive(sent, PBX, reliable=False, now_s=0.2)) == answer
    assert _one_reply(redirector.receive(sent, PBX, reliable=False, now_s=0.3)) == answer


def test_the_ack_is_absorbed(redirector: Redirector) -> None:
    sent = invite(branch="z9hG4bKack")
    assert status_of(_one_reply(redirector.receive(sent, PEER, reliable=False, now_s=0.0))) == 401
    ack = request("ACK", branch="z9hG4bKack")
    assert redirector.receive(ack, PEER, reliable=False, now_s=0.1) == []
    assert redirector.due(5.0) == []  # acknowledged: not retransmitted
    stray = request("ACK", branch="z9hG4bKnothing")
    assert redirector.receive(stray, PEER, reliable=False, now_s=0.1) == []


def test_an_unacknowledged_udp_answer_is_retransmitted(redirector: Redirector) -> None:
    answer = _one_reply(redirector.receive(invite(), PEER, reliable=False, now_s=0.0))
    assert redirector.due(0.6) == [(answer, PEER)]


# -- where responses go (RFC 3261 section 18.2.2, RFC 3581) ----------------------------------


def _no_rport(data: bytes) -> bytes:
    return data.replace(b";rport", b"")


NATTED = ("203.0.113.5", 40123)
"""A phone behind NAT: the socket address it is seen from."""


@pytest.mark.parametrize(("via", "rport", "expected"), [
    ("192.0.2.10:5070", False, ("203.0.113.5", 5070)),
    ("192.0.2.10", False, ("203.0.113.5", 5060)),
    ("192.0.2.10:5070", True, NATTED),
    ("192.0.2.10", True, NATTED),
], ids=["sent-by port", "default port", "rport", "rport without a port"])
def test_a_udp_answer_goes_to_the_source_ip_and_the_sent_by_port_unless_rport(
    redirector: Redirector, via: str, rport: bool, expected: tuple[str, int]
) -> None:
    sent = invite(via=via) if rport else _no_rport(invite(via=via))
    outputs = redirector.receive(sent, NATTED, reliable=False, now_s=0.0)
    assert len(outputs) == 1 and isinstance(outputs[0], Reply)
    assert outputs[0].to == expected
    assert redirector.due(0.6) == [(outputs[0].data, expected)]  # retransmissions too
    again = redirector.receive(sent, NATTED, reliable=False, now_s=0.7)  # and a resent INVITE
    assert again == [Reply(outputs[0].data, expected)]


def test_the_via_of_the_answer_still_reports_the_source(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(_no_rport(invite(via="192.0.2.10:5070")), NATTED,
                                          reliable=False, now_s=0.0))
    assert header(reply, "Via")[0].endswith(";received=203.0.113.5")


def test_a_udp_answer_to_a_decided_invite_goes_to_the_sent_by_port(
    redirector: Redirector,
) -> None:
    sent = _no_rport(invite(via="10.1.2.3:5070", extra=("X-Callgate-User: gina",)))
    dial = _dial(redirector.receive(sent, PBX, reliable=False, now_s=0.0))
    allowed = Decision(allowed=True, call_id="sip-x", caller_id="+12125550101",
                       rule=Rule.USER_DEFAULT, to="+12125550187")
    out = redirector.decided(dial, allowed, 0.01)
    assert isinstance(out[0], Reply) and status_of(out[0].data) == 302
    assert out[0].to == ("10.1.2.3", 5070)


def test_a_malformed_udp_request_is_answered_at_the_sent_by_port(redirector: Redirector) -> None:
    broken = _no_rport(request("OPTIONS", via="192.0.2.10:5070")).replace(
        b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    outputs = redirector.receive(broken, NATTED, reliable=False, now_s=0.0)
    assert isinstance(outputs[0], Reply) and status_of(outputs[0].data) == 400
    assert outputs[0].to == ("203.0.113.5", 5070)


def test_over_a_connection_the_answer_goes_back_on_it(redirector: Redirector) -> None:
    sent = _no_rport(invite(via="192.0.2.10:5070", transport="TCP"))
    outputs = redirector.receive(sent, NATTED, reliable=True, now_s=0.0)
    assert isinstance(outputs[0], Reply) and outputs[0].to is None


def test_cancel_of_a_pending_invite_ends_it_with_487_and_gives_back_the_channel(
    redirector: Redirector,
) -> None:
    sent = invite(branch="z9hG4bKc", extra=("X-Callgate-User: gina",))
    dial = _dial(redirector.receive(sent, PBX, reliable=False, now_s=0.0))
    cancel = request("CANCEL", branch="z9hG4bKc")
    assert status_of(_one_reply(redirector.receive(cancel, PBX, reliable=False,
                                                   now_s=0.01))) == 200
    allowed = Decision(allowed=True, call_id="sip-x", caller_id="+12125550101",
                       rule=Rule.USER_DEFAULT, to="+12125550187")
    out = redirector.decided(dial, allowed, 0.02)
    assert isinstance(out[0], Reply) and status_of(out[0].data) == 487
    assert out[1:] == [EndCall("demo", "sip-x")]


def test_cancel_matching_nothing_gets_481(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(request("CANCEL"), PEER, reliable=False, now_s=0.0))
    assert status_of(reply) == 481


def test_an_invite_inside_a_dialog_gets_481(redirector: Redirector) -> None:
    sent = invite().replace(b"To: <sip:+12125550187@demo.sip.example>",
                            b"To: <sip:+12125550187@demo.sip.example>;tag=abc")
    assert status_of(_one_reply(redirector.receive(sent, PEER, reliable=False, now_s=0.0))) == 481


# -- other methods and bad messages --------------------------------------------------------------


def test_options_gets_200_with_allow(redirector: Redirector) -> None:
    reply = _one_reply(redirector.receive(request("OPTIONS"), PEER, reliable=False, now_s=0.0))
    assert status_of(reply) == 200 and header(reply, "Allow") == ["INVITE, ACK, CANCEL, OPTIONS"]


@pytest.mark.parametrize(("method", "status"), [("REGISTER", 405), ("BYE", 405),
                                                ("NEWMETHOD", 501)])
def test_other_methods_are_refused_with_allow(
    redirector: Redirector, method: str, status: int
) -> None:
    reply = _one_reply(redirector.receive(request(method), PEER, reliable=False, now_s=0.0))
    assert status_of(reply) == status and header(reply, "Allow")


def test_a_required_extension_gets_420(redirector: Redirector) -> None:
    sent = request("OPTIONS", extra=("Require: nothingreal",))
    reply = _one_reply(redirector.receive(sent, PEER, reliable=False, now_s=0.0))
    assert status_of(reply) == 420 and header(reply, "Unsupported") == ["nothingreal"]


def test_a_malformed_request_is_answered_400_and_an_unanswerable_one_dropped(
    redirector: Redirector,
) -> None:
    broken = request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    assert status_of(_one_reply(redirector.receive(broken, PEER, reliable=False,
                                                   now_s=0.0))) == 400
    no_via = re.sub(rb"Via: [^\r]*\r\n", b"", request("OPTIONS"))
    assert redirector.receive(no_via, PEER, reliable=False, now_s=0.0) == []
    assert redirector.receive(b"\x00\xff garbage", PEER, reliable=False, now_s=0.0) == []
    assert redirector.counters["dropped:malformed"] == 2
