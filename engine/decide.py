"""The decision pipeline: may this user call this number now, and from which number?

``Engine.dial`` reads as the steps of DESIGN.md, in order:

1. normalise the destination (``numbers.normalise``; cached per input);
2. destination policy (``policy.check_destination``); emergency calls skip it;
3. caller ID (``callerid.resolve``), given the sticky caller ID the store reads;
4. channel lease, taken by the store in the same step as the sticky read;
5. the answer.

Steps 1-3 are pure and run here, giving a ``Plan``: the answer without a sticky caller ID,
and the answer a sticky hit would give instead. The store reads the sticky caller ID, picks
between the two and takes the channel as one atomic step (on Redis, in one script call); a
retry with the same call id gets the stored answer. ``explain`` runs the same steps with a
trace and takes no channel.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

import msgspec

from callerid import (
    AccountConfig,
    AccountSnapshot,
    Attestation,
    Destination,
    NumberStatus,
    Outcome,
    Permission,
    Reason,
    Reputation,
    Rule,
    TraceStep,
    UserView,
    attest,
    candidate_steps,
    compile_account,
    resolve,
    resolve_emergency,
    resting_at,
    sticky_numbers,
)
from callerid.resolve import Step, StepResult
from callerid.rotation import ALL_CAPPED, capped
from callerid.sms import not_for_texts, sticky_contact, texting

from .days import local_day
from .errors import NotFound, StoreUnavailable
from .hours import judge
from .metrics import Metrics
from .numbers import normalise
from .policy import check_destination
from .resting import AutoRester
from .service import AccountService
from .store import Plan, Rotation, Store, TextTicket, Ticket
from .store.protocol import AnswerWindow, channel_denial, channel_refusal, dnc_denial
from .wire import (
    Decision,
    DialRequest,
    EndResult,
    HeartbeatResult,
    InboundAnswer,
    InboundRequest,
    SenderRequest,
    TextSender,
    rfc3339,
)

__all__ = ["Engine", "decide"]

log = logging.getLogger("callgate.engine")



def decide(
    account: AccountSnapshot,
    user: UserView,
    dialled: str,
    dest: Destination | None,
    requested: str | None,
    call_id: str,
    sticky: str | None,
    lease_expires_at: str | None = None,
    trace: list[TraceStep] | None = None,
    resting: frozenset[str] = frozenset(),
    counts: dict[str, int] | None = None,
    now_ms: int | None = None,
) -> Decision:
    """Steps 1-3 for one dial, pure but for the clock: the decision before any channel is
    taken (an allowed one carries ``lease_expires_at``, the expiry its lease would get).
    ``counts``: the calls each number placed today (None: none yet); ``now_ms``: the time
    the user's calling hours are judged at (None: now)."""
    if dest is None:
        detail = (
            f"{dialled!r} is not a valid phone number "
            f"(national numbers are read as {account.default_region})"
        )
        if trace is not None:
            trace.append(TraceStep(step=Step.NORMALISE, result=StepResult.DENIED, detail=detail))
        return Decision(
            allowed=False, call_id=call_id, reason=Reason.INVALID_NUMBER, detail=detail
        )
    if trace is not None:
        what = "emergency number" if dest.emergency else f"{dest.kind} in {dest.region}"
        trace.append(TraceStep(step=Step.NORMALISE, result=StepResult.OK,
                               detail=f"{dialled!r} is {dest.e164} ({what})"))
    if dest.emergency:
        resolution = resolve_emergency(account, user, trace)
    else:
        denial = check_destination(account, user, dest)
        if denial is not None:
            if trace is not None:
                trace.append(TraceStep(step=Step.POLICY, result=StepResult.DENIED,
                                       detail=denial.detail))
            return Decision(
                allowed=False,
                call_id=call_id,
                reason=Reason.PERMISSION_DENIED,
                detail=denial.detail,
                permission=denial.permission,
                to=dest.e164,
            )
        if trace is not None:
            trace.append(TraceStep(step=Step.POLICY, result=StepResult.OK,
                                   detail="destination permitted"))
        if user.hours is not None:
            at = time.time_ns() // 1_000_000 if now_ms is None else now_ms
            outside = judge(user.hours, dest, at, account.time_zone)
            if outside is not None:
                if trace is not None:
                    trace.append(TraceStep(step=Step.CALLING_HOURS, result=StepResult.DENIED,
                                           detail=outside.detail))
                return Decision(
                    allowed=False, call_id=call_id, reason=Reason.OUTSIDE_CALLING_HOURS,
                    detail=outside.detail, to=dest.e164, callee_time=outside.callee_time,
                    next_allowed_at=None if outside.next_allowed_ms is None
                    else rfc3339(outside.next_allowed_ms),
                    next_allowed_local=outside.next_allowed_local,
                )
            if trace is not None:
                trace.append(TraceStep(step=Step.CALLING_HOURS, result=StepResult.OK,
                                       detail="within the callee's calling hours"))
        elif trace is not None:
            trace.append(TraceStep(
                step=Step.CALLING_HOURS, result=StepResult.SKIPPED,
                detail="the user may call at any hour (dial.any_hour)"
                if Permission.DIAL_ANY_HOUR in user.permissions
                else "no calling hours apply to the user"))
        resolution = resolve(account, user, dest, requested=requested, sticky=sticky,
                             trace=trace, resting=resting, counts=counts)
    if resolution.reason is not None:
        return Decision(
            allowed=False,
            call_id=call_id,
            reason=resolution.reason,
            detail=resolution.detail,
            choices=resolution.choices or None,
            to=dest.e164,
        )
    caller_id = resolution.caller_id
    return Decision(
        allowed=True,
        call_id=call_id,
        caller_id=caller_id,
        rule=resolution.rule,
        to=dest.e164,
        lease_expires_at=lease_expires_at,
        settings=user.settings,
        attestation=attest(account, user, caller_id) if caller_id is not None else None,
    )


def _rotation(
    account: AccountSnapshot, user: UserView, dest: Destination | None, fallback: Decision,
    resting: frozenset[str],
) -> Rotation | None:
    """The rotation a dial's caller ID depends on, given its answer before today's counts
    are read, or None when the counts cannot change it: no number it could go out from is
    capped, and no rule offers it more than one number to take turns with."""
    rule = fallback.rule
    if not fallback.allowed or dest is None or rule is Rule.EMERGENCY:
        return None
    caps = account.caps
    if rule is Rule.REQUESTED:
        number = fallback.caller_id
        if number is None or not caps or account.requested_over_cap or caps.of(number) is None:
            return None
        denial = Decision(allowed=False, call_id=fallback.call_id, to=fallback.to,
                          reason=Reason.CALLER_ID_CAPPED, detail=capped(number, caps.of(number)))
        return Rotation(steps=((rule, (number,)),), answer=fallback, exhausted=denial)
    if caps:
        steps = candidate_steps(account, user, dest, resting)
    elif rule is Rule.LOCAL_PRESENCE:  # the first step that offers any is local presence's
        steps = candidate_steps(account, user, dest, resting, first=True)
        if len(steps[0][1]) < 2:
            return None
    else:
        return None
    denial = Decision(allowed=False, call_id=fallback.call_id, to=fallback.to,
                      reason=Reason.CALLER_ID_CAPPED, detail=ALL_CAPPED)
    return Rotation(steps=steps, answer=fallback, exhausted=denial)


def _text_answer(decision: Decision) -> TextSender:
    detail = decision.detail
    if decision.reason is Reason.NO_CALLER_ID:
        detail = "no number that can send texts applies: give the user a default one (SMS-" \
            "capable)" + (" or pick one of the choices" if decision.choices else "")
    return TextSender(allowed=decision.allowed, sender=decision.caller_id, rule=decision.rule,
                      to=decision.to, reason=decision.reason, detail=detail,
                      permission=decision.permission, choices=decision.choices,
                      callee_time=decision.callee_time, next_allowed_at=decision.next_allowed_at,
                      next_allowed_local=decision.next_allowed_local)


_DESTINATION_DENIALS = frozenset({Reason.INVALID_NUMBER, Reason.PERMISSION_DENIED,
                                  Reason.OUTSIDE_CALLING_HOURS})
"""Denials of the destination itself (steps 1-2: the number, the policy, the calling hours):
they come before the caller ID and the do-not-call list, so no sticky caller ID overturns
them and a dial they deny is not looked up in the list."""


def _dnc_number(dest: Destination | None, fallback: Decision) -> str | None:
    """The number to look up in the account's do-not-call list for a dial (or a text) whose
    answer before the list is ``fallback``: None for an emergency call (never blocked) and
    after a denial that comes first."""
    if dest is None or dest.emergency or fallback.reason in _DESTINATION_DENIALS:
        return None
    return dest.e164


def _dnc_step(trace: list[TraceStep], listed: bool, number: str) -> None:
    """Put the do-not-call step in ``trace`` after the destination's steps (normalise,
    policy, calling hours); listed, the steps after it are dropped (they did not decide)."""
    at = next((i for i, s in enumerate(trace) if s.step not in (
        Step.NORMALISE, Step.POLICY, Step.CALLING_HOURS)), len(trace))
    if listed:
        del trace[at:]
    trace.insert(at, TraceStep(
        step=Step.DO_NOT_CALL, result=StepResult.DENIED if listed else StepResult.OK,
        detail=f"{number} is on the account's do-not-call list" if listed
        else f"{number} is not on the account's do-not-call list"))


_CALL_ID_PREFIX = secrets.token_hex(6)
_call_numbers = itertools.count(1)


def _new_call_id() -> str:
    """A call id unique across processes and restarts: a random per-process prefix and a
    counter (a uuid4 per dial costs a system call for randomness)."""
    return f"{_CALL_ID_PREFIX}-{next(_call_numbers)}"


class Engine:
    def __init__(self, store: Store, *, metrics: Metrics | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._snapshots: dict[str, AccountSnapshot] = {}
        self._sip_lease_ttl_ms: dict[str, int] = {}
        """The lease of a dial decided over SIP, per account (installed with its snapshot)."""
        self._domains: dict[str, str] = {}
        self._windows: dict[str, AnswerWindow] = {}
        """The answer window of each account with ``auto_rest`` (``engine.resting``)."""
        self._retired: dict[str, frozenset[str]] = {}
        """Each account's retired numbers (its snapshot leaves them out), for the metrics."""
        self._rester = AutoRester(AccountService(store, on_saved=self.install))
        if metrics is not None:
            metrics.number_states = self.number_states

    # -- configuration -----------------------------------------------------------------------

    def install(self, config: AccountConfig, version: int) -> None:
        """Compile ``config`` and serve it from now on, unless a newer version is installed."""
        current = self._snapshots.get(config.id)
        if current is None or current.version < version:
            self._snapshots[config.id] = compile_account(config, version)
            self._sip_lease_ttl_ms[config.id] = (
                min(config.sip_lease_ttl_s, config.lease_ttl_s) * 1000)
            if config.auto_rest is not None:
                self._windows[config.id] = AnswerWindow.of(config.auto_rest)
            else:
                self._windows.pop(config.id, None)
            self._retired[config.id] = frozenset(
                n.number for n in config.numbers
                if n.status is NumberStatus.ACTIVE and n.reputation is Reputation.RETIRED)
            if config.sip_domain != (current.sip_domain if current else None):
                self._index_domains()

    def _index_domains(self) -> None:
        claimed: dict[str, list[str]] = {}
        for snapshot in self._snapshots.values():
            if snapshot.sip_domain is not None:
                claimed.setdefault(snapshot.sip_domain, []).append(snapshot.account_id)
        for domain, accounts in claimed.items():
            if len(accounts) > 1:
                log.warning("SIP domain %r is claimed by accounts %s: SIP requests for it are "
                            "refused until only one does", domain, ", ".join(sorted(accounts)))
        self._domains = {d: accounts[0] for d, accounts in claimed.items() if len(accounts) == 1}

    def versions(self) -> dict[str, int]:
        return {account_id: s.version for account_id, s in self._snapshots.items()}

    def number_states(self) -> list[tuple[str, str, Reputation]]:
        """(account, number, reputation now) for each number of every account installed
        that is not released; a resting number whose rest has ended is ``active``."""
        now_ms = time.time_ns() // 1_000_000
        states = []
        for account_id, snapshot in sorted(self._snapshots.items()):
            resting = resting_at(snapshot, now_ms)
            for number in sorted(snapshot.active_numbers):
                states.append((account_id, number,
                               Reputation.RESTING if number in resting else Reputation.ACTIVE))
            states += [(account_id, n, Reputation.RETIRED)
                       for n in sorted(self._retired.get(account_id, ()))]
        return states

    def account(self, account_id: str) -> AccountSnapshot | None:
        return self._snapshots.get(account_id)

    def account_for_domain(self, domain: str) -> AccountSnapshot | None:
        """The one account whose SIP domain is ``domain`` (lower case), if exactly one."""
        account_id = self._domains.get(domain)
        return self._snapshots.get(account_id) if account_id is not None else None

    def domain_claimed_by(self, domain: str) -> list[str]:
        """Every account whose SIP domain is ``domain``."""
        return sorted(s.account_id for s in self._snapshots.values() if s.sip_domain == domain)

    def snapshot(self, account_id: str) -> AccountSnapshot:
        snapshot = self._snapshots.get(account_id)
        if snapshot is None:
            raise NotFound(f"no account {account_id!r}", field="account")
        return snapshot

    # -- the hot path ------------------------------------------------------------------------

    def _ticket(
        self, account_id: str, request: DialRequest, *, sip: bool = False
    ) -> tuple[AccountSnapshot, UserView, Destination | None, Ticket, frozenset[str] | None,
               frozenset[str]]:
        """The dial's account, user, destination and ticket, the numbers a sticky caller ID
        may answer it with (None: sticky does not apply, and no contact is read), and the
        numbers resting now."""
        account = self.snapshot(account_id)
        user = self._user(account, request.user)
        dest = normalise(request.to, account.default_region)
        requested = request.caller_id
        emergency = dest is not None and dest.emergency
        now_ms = time.time_ns() // 1_000_000
        resting = resting_at(account, now_ms)
        usable = sticky_numbers(user, dest, requested, resting) if dest is not None else None
        ticket = Ticket(
            account_id=account_id,
            call_id=request.call_id or _new_call_id(),
            user_id=user.id,
            fingerprint=f"{user.id}\n{dest.e164 if dest else request.to}\n{requested or ''}",
            remember=request.call_id is not None,
            contact=dest.e164 if dest is not None and usable is not None else None,
            counted=not emergency,
            user_limit=user.max_channels,
            account_limit=account.max_channels,
            ttl_ms=self._sip_lease_ttl_ms[account_id] if sip else account.lease_ttl_ms,
            sticky_ttl_ms=account.sticky_ttl_ms,
            day=local_day(account.time_zone, now_ms),
        )
        return account, user, dest, ticket, usable, resting

    async def dial(self, account_id: str, request: DialRequest, *, sip: bool = False) -> Decision:
        """Decide one dial and, when allowed, take its channel. Raises ``NotFound`` for an
        unknown user and ``Conflict`` for a call id reused for another request; a store that
        cannot answer within its deadline gives a ``store_unavailable`` decision.

        ``sip``: the SIP front end decided it (a 302). Its lease is the account's
        ``sip_lease_ttl_s`` (at most ``lease_ttl_s``), because a phone that follows a
        redirect never says when the call ends; a heartbeat extends it like any lease."""
        started = time.perf_counter()
        account, user, dest, ticket, usable, resting = self._ticket(account_id, request, sip=sip)
        fallback = decide(
            account, user, request.to, dest, request.caller_id, ticket.call_id, None,
            resting=resting,
        )
        plan = Plan(decision=fallback)
        if usable is not None and fallback.reason not in _DESTINATION_DENIALS:
            # The answer a sticky hit gives instead: it replaces the caller-ID step's outcome
            # (callerid.sticky_numbers says when, and from which numbers), never a denial of
            # the destination (its policy, its calling hours), which comes before it.
            plan = Plan(
                decision=fallback,
                sticky=Decision(
                    allowed=True,
                    call_id=ticket.call_id,
                    rule=Rule.STICKY,
                    to=ticket.contact,
                    settings=user.settings,
                    attestation=Attestation.FULL,  # a sticky hit is one of ``usable``
                ),
                sticky_ids=usable,
            )
        rotation = _rotation(account, user, dest, fallback, resting)
        if rotation is not None or (account.caps and plan.sticky is not None):
            plan = msgspec.structs.replace(plan, rotation=rotation, caps=account.caps)
        if self._store.dnc_active(account_id):  # an account without a list pays nothing
            dnc = _dnc_number(dest, fallback)
            if dnc is not None:
                ticket = msgspec.structs.replace(ticket, dnc=dnc)
        try:
            decision = await self._store.admit(ticket, plan)
        except StoreUnavailable as exc:
            decision = Decision(
                allowed=False,
                call_id=ticket.call_id,
                reason=Reason.STORE_UNAVAILABLE,
                detail=exc.detail,
            )
        elapsed = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.observe(decision, elapsed)
            if decision.allowed and ticket.counted and decision.caller_id is not None:
                self._metrics.attempt(account_id, decision.caller_id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("decision", extra={"fields": {
                "account": account_id, "user": user.id, "to": request.to,
                "allowed": decision.allowed, "rule": decision.rule, "reason": decision.reason,
                "caller_id": decision.caller_id, "call_id": decision.call_id,
                "seconds": round(elapsed, 6)}})
        return decision

    async def explain(self, account_id: str, request: DialRequest) -> Decision:
        """The decision ``dial`` would make now, with the trace of every step; no channel is
        taken and nothing is written."""
        account, user, dest, ticket, _, resting = self._ticket(account_id, request)
        peek = await self._store.peek(ticket)
        if peek.known is not None:
            replayed = TraceStep(
                step=Step.REPLAY,
                result=StepResult.OK,
                detail=f"call id {ticket.call_id!r} was decided already: a retry gets this answer",
            )
            return msgspec.structs.replace(peek.known, trace=(replayed,))
        trace: list[TraceStep] = []
        counts = await self._store.usage(account_id, ticket.day)
        decision = decide(
            account, user, request.to, dest, request.caller_id, ticket.call_id, peek.sticky,
            trace=trace, resting=resting, counts=counts,
        )
        dnc = _dnc_number(dest, decision)
        if dnc is not None and await self._store.dnc_count(account_id):
            listed = await self._store.dnc_contains(account_id, dnc)
            _dnc_step(trace, listed, dnc)
            if listed:
                return msgspec.structs.replace(dnc_denial(ticket.call_id, dnc),
                                               trace=tuple(trace))
        if decision.allowed and ticket.counted:
            refusal = channel_refusal(ticket, peek.user_leases, peek.account_leases)
            in_use = f"{peek.user_leases} of {user.max_channels} channels in use"
            trace.append(
                TraceStep(
                    step=Step.CHANNEL,
                    result=StepResult.DENIED if refusal else StepResult.OK,
                    detail=refusal or f"{in_use} (explain takes none)",
                )
            )
            if refusal:
                decision = channel_denial(ticket.call_id, refusal)
        return msgspec.structs.replace(decision, trace=tuple(trace))

    # -- call lifecycle ----------------------------------------------------------------------

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None
    ) -> EndResult:
        """End a call; with ``user_id`` (a user's own token), only one of that user's.

        With the account's ``auto_rest``, the store adds the outcome to the window of the
        call's caller ID; a window that says the number is due a rest has the number rested
        in the background (``engine.resting``), when it is in use now: the answer does not
        wait for that write."""
        account = self.snapshot(account_id)
        ended = await self._store.end(account_id, call_id, outcome, user_id,
                                      self._windows.get(account_id))
        number = ended.number
        if number is not None:
            if outcome.connected and self._metrics is not None:
                self._metrics.answered(account_id, number)
            if (ended.rest_due and number in account.active_numbers
                    and account.resting.get(number, 0) <= time.time_ns() // 1_000_000):
                self._rester.rest(account_id, number)
        return ended.answer

    async def settle(self) -> None:
        """Until the automatic rests this engine started are written (or given up)."""
        await self._rester.settle()

    async def heartbeat(
        self, account_id: str, call_id: str, user_id: str | None = None
    ) -> HeartbeatResult:
        account = self.snapshot(account_id)
        expires = await self._store.heartbeat(
            account_id, call_id, account.lease_ttl_ms, user_id
        )
        return HeartbeatResult(call_id=call_id, lease_expires_at=rfc3339(expires))

    async def text_sender(self, account_id: str, request: SenderRequest) -> TextSender:
        """Which number a text from the user to ``request.to`` goes out from: a call's
        precedence among the numbers that can send texts (``callerid.sms``). The text counts
        against its sender's texts today and makes the sender the contact's sticky number;
        no channel is taken. Raises ``NotFound`` for an unknown user; a store that cannot
        answer in time gives a ``store_unavailable`` denial."""
        account = self.snapshot(account_id)
        user = texting(account, self._user(account, request.user))
        dest = normalise(request.to, account.default_region)
        requested = request.sender
        if dest is not None and dest.emergency:
            return TextSender(allowed=False, to=dest.e164, reason=Reason.INVALID_NUMBER,
                              detail=f"{dest.e164} is an emergency number: call it, do not "
                              "text it from here")
        why = not_for_texts(account, requested) if requested is not None else None
        if why is not None:
            return TextSender(allowed=False, to=dest.e164 if dest else None,
                              reason=Reason.CALLER_ID_NOT_ALLOWED, detail=why)
        now_ms = time.time_ns() // 1_000_000
        resting = resting_at(account, now_ms)
        fallback = decide(account, user, request.to, dest, requested, "", None, resting=resting)
        if dest is None or fallback.reason in _DESTINATION_DENIALS:
            return _text_answer(fallback)
        plan = Plan(decision=fallback)
        usable = sticky_numbers(user, dest, requested, resting)
        if usable:
            plan = Plan(decision=fallback, sticky_ids=usable, sticky=Decision(
                allowed=True, call_id="", rule=Rule.STICKY, to=dest.e164))
        rotation = _rotation(account, user, dest, fallback, resting)
        if rotation is not None or account.caps:
            plan = msgspec.structs.replace(plan, rotation=rotation, caps=account.caps)
        ticket = TextTicket(account_id=account_id, contact=sticky_contact(account, dest.e164),
                            day=local_day(account.time_zone, now_ms),
                            sticky_ttl_ms=account.sticky_ttl_ms,
                            dnc=_dnc_number(dest, fallback)
                            if self._store.dnc_active(account_id) else None)
        try:
            return _text_answer(await self._store.send_text(ticket, plan))
        except StoreUnavailable as exc:
            return TextSender(allowed=False, to=dest.e164, reason=Reason.STORE_UNAVAILABLE,
                              detail=exc.detail)

    async def inbound(self, account_id: str, request: InboundRequest) -> InboundAnswer:
        """An incoming call to the user takes one of their channels, under the same limits
        and leases as their outgoing calls (``channel_limit`` when none is free); it is ended
        and kept alive like them. Raises ``NotFound`` for an unknown user and ``Conflict`` for
        a call id reused for another request."""
        started = time.perf_counter()
        account = self.snapshot(account_id)
        user = self._user(account, request.user)
        caller = request.caller
        if caller is not None:
            dest = normalise(caller, account.default_region)
            caller = dest.e164 if dest is not None else caller.strip()
        now_ms = time.time_ns() // 1_000_000
        call_id = request.call_id or _new_call_id()
        ticket = Ticket(
            account_id=account_id, call_id=call_id, user_id=user.id,
            fingerprint=f"{user.id}\ninbound\n{caller or ''}",
            remember=request.call_id is not None, contact=None, counted=True,
            user_limit=user.max_channels, account_limit=account.max_channels,
            ttl_ms=account.lease_ttl_ms, sticky_ttl_ms=account.sticky_ttl_ms,
            day=local_day(account.time_zone, now_ms),
        )
        # The other party rides in ``to``, where an outgoing call keeps its callee: no
        # caller ID, so nothing counts against a number or becomes a sticky caller ID.
        plan = Plan(decision=Decision(allowed=True, call_id=call_id, rule=Rule.INBOUND,
                                      to=caller))
        try:
            decision = await self._store.admit(ticket, plan)
        except StoreUnavailable as exc:
            decision = Decision(allowed=False, call_id=call_id,
                                reason=Reason.STORE_UNAVAILABLE, detail=exc.detail)
        if self._metrics is not None:
            self._metrics.observe(decision, time.perf_counter() - started)
        return InboundAnswer(allowed=decision.allowed, call_id=decision.call_id,
                             direction="inbound",
                             caller=decision.to if decision.allowed else caller,
                             lease_expires_at=decision.lease_expires_at,
                             reason=decision.reason, detail=decision.detail)

    @staticmethod
    def _user(account: AccountSnapshot, user_id: str) -> UserView:
        user = account.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r} in this account", field="user")
        return user

