"""The redirect server's logic, without I/O: datagrams and stream messages in, replies and
decisions to make out (the shape of h11's connection: the socket loop in ``sip.server`` only
moves bytes and awaits the engine).

For each request (``Redirector.receive``):

1. A source address under a ban gets nothing (``sip.throttle``). A message that cannot be
   parsed is answered 400 (or 505, 416, 513) when it has a Via header, else dropped. Over
   UDP a response goes where RFC 3261 section 18.2.2 says (``message.response_address``):
   the source port with ``rport``, else the Via's sent-by port at the source IP.
2. Retransmissions and ACKs are the transaction layer's (``sip.transactions``): the cached
   final response again, or nothing.
3. OPTIONS gets 200 with ``Allow``; CANCEL gets 200 when it matches an INVITE (which then gets
   487 and gives back its channel) and 481 when it matches nothing (RFC 3261 section 9.2);
   INVITE within a dialog gets 481 (a redirect server keeps no dialogs); another SIP method
   gets 405 and a method nobody defined 501, both with ``Allow`` (section 8.2.1); a request
   that requires an extension gets 420 listing it (we support none; section 8.2.2.3).
4. An INVITE names its caller in one of two ways. From a trusted peer (a configured network:
   a PBX or proxy that authenticated its own users), the user is named by a header
   (``X-Callgate-User`` by default) or by the From user part; anyone else must pass digest
   authentication (``sip.digest``) as a user with SIP credentials in the SIP domain of the
   From URI. Every failed answer counts towards a ban of that login at the source address,
   and each failing login towards a ban of the whole address (``sip.throttle``); a banned
   login's INVITEs get nothing.
5. The caller, the Request-URI's number and the caller ID asked for in
   ``P-Preferred-Identity`` (RFC 3325) become a ``DialRequest`` through the decision API's
   own conversion (``engine.validation``), limits included: a destination that type refuses
   (none, too long, no digits) gets 484, another refused field (a caller ID that is not
   E.164) 400 naming it in a Warning. The request becomes a ``Dial``: the engine's decision,
   the same as over HTTP, with a call id derived from the Call-ID and From tag so a resent
   INVITE gets the same decision and no second channel. ``Redirector.decided`` turns the
   decision into a 302 whose Contact is the normalised number at the gateway and whose
   P-Asserted-Identity is the chosen caller ID, or into the denial's SIP status.

An unknown user, a wrong password, a user without credentials and an unknown domain all get
the same 401, byte for byte apart from its nonce.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Iterable
from typing import Protocol

import msgspec

from callerid import AccountSnapshot, Reason, SipCredential
from engine.errors import CallgateError, InvalidField, sip_status
from engine.validation import convert
from engine.wire import Decision, DialRequest

from .abnf import split_unquoted
from .digest import ALGORITHMS, Nonces, Verdict, challenge_headers, parse_authorization, verify
from .errors import SipMessageError
from .message import Address, Request, Response, Uri, build_response, response_address
from .parser import ack_via, parse_message, parse_name_addr, parse_uri
from .throttle import AuthThrottle
from .transactions import State, Transaction, Transactions, invite_key, transaction_key

__all__ = [
    "ALLOW",
    "DENIAL_STATUS",
    "Dial",
    "Directory",
    "EndCall",
    "Redirector",
    "Reply",
    "SipSettings",
    "TrustedPeer",
]

ALLOW = "INVITE, ACK, CANCEL, OPTIONS"
DENIAL_STATUS: dict[Reason, int] = {
    Reason.INVALID_NUMBER: 484,
    Reason.PERMISSION_DENIED: 403,
    Reason.CALLER_ID_NOT_ALLOWED: 403,
    Reason.CALLER_ID_CAPPED: 403,
    Reason.NO_CALLER_ID: 480,
    Reason.OUTSIDE_CALLING_HOURS: 480,
    Reason.DO_NOT_CALL: 403,
    Reason.CHANNEL_LIMIT: 486,
    Reason.STORE_UNAVAILABLE: 503,
}
"""A denial's SIP status (DESIGN.md); a reason added later and missing here gets 403."""
REASON_PHRASES = {
    200: "OK",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
}


_ASKED_MAX = 64
"""The longest preferred identity that is not a number passed on to be refused by name."""


class TrustedPeer(msgspec.Struct, frozen=True, kw_only=True):
    network: str
    """An address or CIDR network, e.g. ``10.0.0.0/24``."""
    account: str | None = None
    """The account its calls belong to; without one, the account whose SIP domain is the
    From URI's host."""


class SipSettings(msgspec.Struct, frozen=True, kw_only=True):
    gateway: str | None = None
    """``host[:port]`` of the 302's Contact (where the caller should send the call); without
    it, the Request-URI's host and port."""
    trusted: tuple[TrustedPeer, ...] = ()
    user_header: str = "X-Callgate-User"
    """How a trusted peer names the user (their callgate id): this header, or ``From`` for the
    From URI's user part."""
    nonce_ttl_s: float = 300.0
    digest_algorithms: tuple[str, ...] = ALGORITHMS
    """Offered in this order in every 401 (see ``sip.digest.ALGORITHMS``)."""
    ban_after: int = 10
    """Failed digest answers for one login from one address within ``ban_window_s`` that ban
    the pair; as many different failing logins ban the address (``sip.throttle``)."""
    ban_window_s: float = 60.0
    ban_s: float = 300.0


class Directory(Protocol):
    """Where the redirector finds accounts (the engine's compiled snapshots)."""

    def account(self, account_id: str) -> AccountSnapshot | None: ...

    def account_for_domain(self, domain: str) -> AccountSnapshot | None: ...


class Reply(msgspec.Struct, frozen=True, gc=False):
    """Send ``data`` in answer to a request: by datagram to ``to``, or on the connection the
    request came on when ``to`` is None."""

    data: bytes
    to: Address | None = None


class Dial(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Ask the engine for a decision, and hand it to ``Redirector.decided``."""

    account: AccountSnapshot
    request: DialRequest
    sip: Request
    transaction: Transaction


class EndCall(msgspec.Struct, frozen=True, gc=False):
    """Give back the channel of a call that was canceled while being decided."""

    account_id: str
    call_id: str


Output = Reply | Dial | EndCall


def _warning(text: str) -> tuple[str, str]:
    """A ``Warning`` header (RFC 3261 section 20.43, code 399: miscellaneous) saying ``text``
    as a quoted string."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    return ("Warning", f'399 callgate "{quoted}"')


class Redirector:
    def __init__(self, settings: SipSettings, directory: Directory) -> None:
        self.settings = settings
        self._directory = directory
        self._trusted = [
            (ipaddress.ip_network(peer.network, strict=False), peer) for peer in settings.trusted
        ]
        self._nonces = Nonces(ttl_s=settings.nonce_ttl_s)
        self.throttle = AuthThrottle(
            failures=settings.ban_after, window_s=settings.ban_window_s, ban_s=settings.ban_s
        )
        self.transactions = Transactions()
        self._tag_key = secrets.token_bytes(16)
        self._user_header = settings.user_header.lower()
        self._trusted_by_host: dict[str, TrustedPeer | None] = {}
        self.counters: dict[str, int] = {}
        """Plain counts for the metrics collector: ``requests:<METHOD>``, ``responses:<status>``,
        ``auth_failures``, ``bans:<scope>`` (``sip.throttle.BanScope``), ``dropped:<why>``,
        ``retransmissions``, ``resent``."""

    # -- input -------------------------------------------------------------------------------

    def receive(self, data: bytes, peer: Address, *, reliable: bool, now_s: float) -> list[Output]:
        """Handle one datagram, or one message cut from a stream."""
        if self.throttle.banned(peer[0], now_s):
            self.count("dropped:banned")
            return []
        via = ack_via(data)
        key = invite_key(via) if via is not None else None
        if key is not None:  # an ACK, matched by its Via alone: no need to parse the rest
            self.count("requests:ACK")
            self._acknowledge(key, now_s)
            return []
        try:
            message = parse_message(data, framed=reliable)
        except SipMessageError:
            self.count("dropped:malformed")
            return []
        if isinstance(message, Response):
            self.count("dropped:response")
            return []
        known = message.method in _KNOWN
        self.count(f"requests:{message.method if known else 'other'}")
        if message.defect is not None:
            if message.method == "ACK":
                return []
            to = None if reliable else response_address(message, peer)
            return [self._reply(message, peer, to, message.defect_status,
                                (_warning(message.defect),))]
        key = transaction_key(message)
        if message.method == "ACK":
            self._acknowledge(key, now_s)
            return []
        existing = self.transactions.find(key)
        if existing is not None:
            self.count("retransmissions")
            if existing.response is None or self._silenced(existing, now_s):
                return []
            return [Reply(existing.response, None if reliable else response_address(message, peer))]
        transaction = self.transactions.start(
            key, message.method, peer, reliable, now_s,
            reply_to=None if reliable else response_address(message, peer))
        required = _required_extensions(message)
        if required and message.method != "CANCEL":
            return self._final(transaction, message, 420, now_s, (("Unsupported", required),))
        if message.method == "INVITE":
            return self._invite(transaction, message, peer, now_s)
        if message.method == "CANCEL":
            return self._cancel(transaction, message, now_s)
        if message.method == "OPTIONS":
            return self._final(transaction, message, 200, now_s, (
                ("Allow", ALLOW), ("Accept", "application/sdp")))
        return self._final(transaction, message, 405 if known else 501, now_s,
                           (("Allow", ALLOW),))

    def _acknowledge(self, key: tuple[str, ...], now_s: float) -> None:
        invite = self.transactions.find(key)
        if invite is not None:
            self.transactions.acknowledge(invite, now_s)
        else:
            self.count("dropped:unmatched_ack")

    def decided(self, dial: Dial, result: Decision | CallgateError, now_s: float) -> list[Output]:
        """The engine's answer to ``dial``: the final response (and, for a call canceled in
        the meantime, the channel to give back)."""
        transaction, request = dial.transaction, dial.sip
        if transaction.canceled:
            out: list[Output] = [self._final_reply(transaction, request, 487, now_s)]
            if isinstance(result, Decision) and result.allowed:
                out.append(EndCall(dial.account.account_id, result.call_id))
            return out
        if isinstance(result, CallgateError):
            status = sip_status(result) or 500
            return [self._final_reply(transaction, request, status, now_s,
                                      (_warning(result.detail),))]
        ids = (("X-Callgate-Call-Id", result.call_id),)
        if result.allowed:
            assert result.to is not None and result.caller_id is not None
            gateway = self._gateway(request)
            identity_host = dial.account.sip_domain or gateway.rsplit(":", 1)[0]
            allowed: tuple[tuple[str, str], ...] = (
                ("Contact", f"<sip:{result.to}@{gateway};user=phone>"),
                ("P-Asserted-Identity", f"<sip:{result.caller_id}@{identity_host};user=phone>"),
                *ids,
                ("X-Callgate-Rule", str(result.rule)),
            )
            if result.attestation is not None:  # for the SBC that signs the call (STIR/SHAKEN)
                allowed += (("X-Callgate-Attestation", str(result.attestation)),)
            return [self._final_reply(transaction, request, 302, now_s, allowed)]
        assert result.reason is not None
        status = DENIAL_STATUS.get(result.reason, 403)
        headers: tuple[tuple[str, str], ...] = (*ids, ("X-Callgate-Reason", str(result.reason)))
        if result.detail:
            headers += (_warning(result.detail),)
        if status == 503:
            headers += (("Retry-After", "1"),)
        return [self._final_reply(transaction, request, status, now_s, headers)]

    def due(self, now_s: float) -> list[tuple[bytes, Address]]:
        """Final responses to retransmit now (Timer G); forgets finished transactions."""
        resent = [(t.response, t.reply_to or t.peer) for t in self.transactions.due(now_s)
                  if t.response is not None and not self._silenced(t, now_s)]
        if resent:
            self.count("resent", len(resent))
        return resent

    def _silenced(self, transaction: Transaction, now_s: float) -> bool:
        """Whether a ban now covers ``transaction``: a ban silences retransmissions too."""
        host = transaction.peer[0]
        login = transaction.login
        return self.throttle.banned(host, now_s) or (
            login is not None and self.throttle.login_banned(host, login, now_s))

    # -- methods -----------------------------------------------------------------------------

    def _cancel(self, transaction: Transaction, request: Request, now_s: float) -> list[Output]:
        invite = self.transactions.find(transaction_key(request, "INVITE"))
        if invite is None:
            return self._final(transaction, request, 481, now_s)
        if invite.state is State.PROCEEDING:
            invite.canceled = True
        return self._final(transaction, request, 200, now_s)

    def _invite(
        self, transaction: Transaction, request: Request, peer: Address, now_s: float
    ) -> list[Output]:
        assert request.to is not None and request.from_ is not None
        assert request.request_uri is not None
        if request.to.tag is not None:
            return self._final(transaction, request, 481, now_s)
        trusted = self._trusted_peer(peer)
        caller = (self._named_caller(transaction, trusted, request, now_s) if trusted is not None
                  else self._authenticated_caller(transaction, request, peer, now_s))
        if isinstance(caller, list):  # refused or challenged
            return caller
        account, user_id = caller
        fields = {
            "user": user_id,
            "to": _without_params(request.request_uri.user or ""),
            "caller_id": _preferred_identity(request),
            "call_id": self._call_id(request),
        }
        try:
            # The decision API's type and limits: what it refuses, this refuses too.
            dial = convert(fields, DialRequest)
        except InvalidField as refused:
            if refused.field == "to":  # no destination, or not one a number can be read from
                return self._final(transaction, request, 484, now_s)
            if refused.field != "caller_id":
                return self._final(transaction, request, sip_status(refused) or 400, now_s,
                                   (_warning(refused.detail),))
            # A PBX may prefer an identity no number is (an extension, 1001): the engine
            # judges it as any caller ID asked for, so it is refused (caller_id_not_allowed)
            # except on an emergency call, which always goes through with the user's default.
            asked = fields["caller_id"]
            dial = msgspec.structs.replace(
                convert({**fields, "caller_id": None}, DialRequest),
                caller_id=asked[:_ASKED_MAX] if asked else None,
            )
        return [Dial(account=account, request=dial, sip=request, transaction=transaction)]

    # -- who is calling ----------------------------------------------------------------------

    def _trusted_peer(self, peer: Address) -> TrustedPeer | None:
        if not self._trusted:
            return None
        host = peer[0]
        if host in self._trusted_by_host:
            return self._trusted_by_host[host]
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        found = next((p for net, p in self._trusted if address in net), None)
        if len(self._trusted_by_host) < 10_000:  # peers are few; a flood of sources is not
            self._trusted_by_host[host] = found
        return found

    def _named_caller(
        self, transaction: Transaction, trusted: TrustedPeer, request: Request, now_s: float
    ) -> tuple[AccountSnapshot, str] | list[Output]:
        """The account and the user a trusted peer names, or the answer refusing it."""
        assert request.from_ is not None
        from_uri = _safe_uri(request.from_.uri)
        if self._user_header == "from":
            user_id = from_uri.user if from_uri is not None else None
        else:
            user_id = request.header(self._user_header)
        if not user_id:
            return self._final(transaction, request, 403, now_s)
        if trusted.account is not None:
            account = self._directory.account(trusted.account)
        else:
            domain = from_uri.host if from_uri is not None else None
            account = self._directory.account_for_domain(domain) if domain else None
        user_id = user_id.strip()
        if account is None or user_id not in account.users:
            return self._final(transaction, request, 404, now_s)
        credential = account.users[user_id].sip
        if credential is not None and not credential.enabled:
            return self._voip_off(transaction, request, now_s)
        return account, user_id

    def _authenticated_caller(
        self, transaction: Transaction, request: Request, peer: Address, now_s: float
    ) -> tuple[AccountSnapshot, str] | list[Output]:
        assert request.from_ is not None
        from_uri = _safe_uri(request.from_.uri)
        realm = (from_uri.host if from_uri is not None else None) or "invalid"
        account = self._directory.account_for_domain(realm)
        answers = []
        for value in request.header_values("authorization"):
            try:
                answers.append(parse_authorization(value))
            except ValueError as exc:
                return self._final(transaction, request, 400, now_s,
                                   (_warning(f"bad Authorization: {exc}"),))
        answer = next((a for a in answers if a.realm == realm), None)
        username = answer.username if answer is not None else from_uri.user if from_uri else None
        login = f"{username}@{realm}"
        transaction.login = login if username else None
        if username and self.throttle.login_banned(peer[0], login, now_s):
            self.count("dropped:banned")
            return []
        if answer is None:
            return self._challenge(transaction, request, realm, now_s, stale=False)
        if answer.uri != request.uri:
            return self._final(transaction, request, 400, now_s,
                               (_warning("the digest uri is not the Request-URI"),))
        user_id = account.sip_users.get(answer.username) if account is not None else None
        credential: SipCredential | None = None
        if account is not None and user_id is not None:
            credential = account.users[user_id].sip

        def ha1(algorithm: str) -> str | None:
            if credential is None:
                return None
            return credential.ha1_md5 if algorithm == "MD5" else credential.ha1_sha256

        verdict = verify(answer, method=request.method, ha1=ha1, nonces=self._nonces,
                         now_s=now_s, algorithms=self.settings.digest_algorithms)
        if verdict is Verdict.FAILED:
            self.count("auth_failures")
            for scope in self.throttle.failed(peer[0], login, now_s):
                self.count(f"bans:{scope}")
            return self._challenge(transaction, request, realm, now_s, stale=False)
        if verdict is Verdict.STALE:
            return self._challenge(transaction, request, realm, now_s, stale=True)
        assert account is not None and user_id is not None and credential is not None
        if not credential.enabled:
            return self._voip_off(transaction, request, now_s)
        return account, user_id

    def _voip_off(self, transaction: Transaction, request: Request, now_s: float) -> list[Output]:
        """The answer to a user whose VoIP is switched off, however they were named."""
        return self._final(transaction, request, 403, now_s,
                           (_warning("VoIP is switched off for this user"),))

    def _challenge(
        self, transaction: Transaction, request: Request, realm: str, now_s: float, *,
        stale: bool,
    ) -> list[Output]:
        nonce = self._nonces.issue(now_s)
        headers = challenge_headers(realm, nonce, stale=stale,
                                    algorithms=self.settings.digest_algorithms)
        return self._final(transaction, request, 401, now_s, headers)

    # -- answers -----------------------------------------------------------------------------

    def _gateway(self, request: Request) -> str:
        if self.settings.gateway:
            return self.settings.gateway
        uri = request.request_uri
        assert uri is not None
        host = uri.host or "invalid"
        return f"{host}:{uri.port}" if uri.port else host

    def _call_id(self, request: Request) -> str:
        assert request.from_ is not None
        seed = f"{request.call_id}\n{request.from_.tag or ''}".encode("latin-1", "replace")
        return "sip-" + hashlib.blake2b(seed, digest_size=12).hexdigest()

    def _to_tag(self, request: Request) -> str:
        from_tag = request.from_.tag if request.from_ is not None else ""
        seed = f"{request.call_id}\n{from_tag}".encode("latin-1", "replace")
        return hashlib.blake2b(seed, digest_size=5, key=self._tag_key).hexdigest()

    def _reply(
        self, request: Request, peer: Address, to: Address | None, status: int,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Reply:
        self.count(f"responses:{status}")
        return Reply(build_response(request, status, REASON_PHRASES.get(status, "Error"),
                                    source=peer, to_tag=self._to_tag(request),
                                    headers=tuple(headers)), to)

    def _final_reply(
        self, transaction: Transaction, request: Request, status: int, now_s: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Reply:
        reply = self._reply(request, transaction.peer, transaction.reply_to, status, headers)
        self.transactions.complete(transaction, reply.data, now_s)
        return reply

    def _final(
        self, transaction: Transaction, request: Request, status: int, now_s: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Output]:
        return [self._final_reply(transaction, request, status, now_s, headers)]

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to the plain count ``what`` (see ``counters``)."""
        self.counters[what] = self.counters.get(what, 0) + n


_KNOWN = frozenset({"INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "REGISTER", "INFO", "UPDATE",
                    "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"})


def _required_extensions(request: Request) -> str:
    """The option tags of the request's Require headers, comma-separated ('' for none)."""
    tags = [t.strip() for value in request.header_values("require") for t in value.split(",")]
    return ", ".join(t for t in tags if t)


def _safe_uri(text: str) -> Uri | None:
    try:
        return parse_uri(text)
    except ValueError:
        return None


def _without_params(user: str) -> str:
    """A URI's user part without its ``;`` parameters (``+12125550187;npdi`` -> the number)."""
    return user.split(";", 1)[0]


def _preferred_identity(request: Request) -> str | None:
    """The caller ID asked for in P-Preferred-Identity, if any (its first URI's user part)."""
    value = request.header("p-preferred-identity")
    if value is None:
        return None
    try:
        uri = parse_uri(parse_name_addr(split_unquoted(value, ",")[0]).uri)
    except ValueError:
        return value.strip()  # not a URI: the engine refuses it as a caller ID
    user = uri.user if uri is not None else None
    return _without_params(user or value.strip())
