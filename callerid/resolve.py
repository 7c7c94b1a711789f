"""Caller-ID resolution: which of our numbers the callee sees.

The first step that yields a number in the user's available set wins:

1. requested: the client asked for a number for this one call. Allowed only with
   ``callerid.choose`` and when the number is available; otherwise the call is denied
   (``caller_id_not_allowed``): a number the client asked for is never silently replaced.
2. sticky: when sticky caller ID is on, the number last used with this contact on a connected
   call, account-wide (the engine reads it from the store and passes it in).
3. geo (Pro, when enabled): area code (longest prefix), then country, then default geo ID.
4. local presence (the user's setting and the ``callerid.local_presence`` permission): a number
   of the user's with the callee's area code, else in its state or province, else in its
   country (``callerid.local``).
5. the user's default, 6. the department's default, 7. the account's default.
8. nothing: deny ``no_caller_id``; when the user may choose, the denial lists the choices.

A resting number (its reputation, ``Reputation.RESTING``) is passed over by every step but
the first; a retired one is in no available set. Emergency calls skip all of this: they are
always allowed, from the first default that exists.

Pure: no I/O, no clock. ``trace``, when a list is given, receives one ``TraceStep`` per step
considered, saying what it found and why it was skipped; the hot path passes None.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import msgspec

from .geo import Destination, match
from .local import local_tiers
from .model import Attestation, Reason, Rule
from .permissions import Permission
from .rotation import ALL_CAPPED, capped, least_used
from .snapshot import AccountSnapshot, UserView

__all__ = [
    "Candidates", "Resolution", "Step", "StepResult", "TraceStep", "attest", "candidate_steps",
    "resolve", "resolve_emergency", "sticky_numbers",
]


class Step(enum.StrEnum):
    """The steps of a decision, as ``explain`` names them; caller-ID steps share the names of
    the rules they apply."""

    NORMALISE = "normalise"
    POLICY = "policy"
    CALLING_HOURS = "calling_hours"
    DO_NOT_CALL = "do_not_call"
    REQUESTED = "requested"
    STICKY = "sticky"
    GEO = "geo"
    GEO_AREA_CODE = "geo_area_code"
    GEO_COUNTRY = "geo_country"
    GEO_DEFAULT = "geo_default"
    LOCAL_PRESENCE = "local_presence"
    USER_DEFAULT = "user_default"
    DEPARTMENT_DEFAULT = "department_default"
    ACCOUNT_DEFAULT = "account_default"
    NO_CALLER_ID = "none"
    EMERGENCY = "emergency"
    CHANNEL = "channel"
    REPLAY = "replay"


class StepResult(enum.StrEnum):
    OK = "ok"
    CHOSEN = "chosen"
    SKIPPED = "skipped"
    DENIED = "denied"


class TraceStep(msgspec.Struct, frozen=True, kw_only=True):
    step: Step
    result: StepResult
    detail: str
    caller_id: str | None = None


class Resolution(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    caller_id: str | None = None
    rule: Rule | None = None
    reason: Reason | None = None
    detail: str = ""
    choices: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.reason is None


def _note(
    trace: list[TraceStep] | None,
    step: Step | Rule,
    result: StepResult,
    detail: str,
    number: str | None = None,
) -> None:
    if trace is not None:
        trace.append(TraceStep(step=Step(step), result=result, detail=detail, caller_id=number))


def _unavailable(user: UserView, number: str) -> str:
    return f"{number} is not in the user's available caller IDs (or is not an active number)"


def _passed_over(user: UserView, number: str, resting: frozenset[str]) -> str:
    if number in resting:
        return f"{number} is resting: automatic rules pass it over until its rest ends"
    return _unavailable(user, number)


def attest(account: AccountSnapshot, user: UserView, caller_id: str) -> Attestation | None:
    """The attestation an allowed call from ``caller_id`` gets: ``A`` when it is in the
    user's available set (every rule but the emergency one chooses from there), ``B`` when
    the account holds it but the user is not assigned to it, None for a number the account
    does not hold (which no rule chooses)."""
    if caller_id in user.available:
        return Attestation.FULL
    if caller_id in account.active_numbers:
        return Attestation.PARTIAL
    return None


def sticky_numbers(
    user: UserView, dest: Destination, requested: str | None,
    resting: frozenset[str] = frozenset(),
) -> frozenset[str] | None:
    """The numbers a sticky caller ID may answer this dial with, or None when no sticky
    caller ID can: it comes after a requested one, only when the user has sticky caller ID
    on, and never for an emergency call (which takes its caller ID apart from all of this);
    a ``resting`` number is passed over, as by every automatic rule.

    This is the one statement of sticky's place among the rules: ``resolve`` applies it to a
    sticky caller ID it is given, and the engine hands the same set to the store, which
    reads the contact's sticky caller ID in the step that takes the channel and uses it only
    when it is one of these."""
    if requested is not None or dest.emergency or not user.settings.sticky_caller_id:
        return None
    return user.available - resting if resting else user.available


def resolve(
    account: AccountSnapshot,
    user: UserView,
    dest: Destination,
    *,
    requested: str | None = None,
    sticky: str | None = None,
    trace: list[TraceStep] | None = None,
    resting: frozenset[str] = frozenset(),
    counts: Mapping[str, int] | None = None,
) -> Resolution:
    """Choose the caller ID for ``user`` calling ``dest``.

    ``sticky`` is the number last used with this contact on a connected call, or None; it is
    considered only when the user's sticky setting is on. ``resting``: the numbers resting
    now (``resting_at``), which every rule but ``requested`` passes over. ``counts``: the
    calls each number placed today, for rotation and daily caps (``callerid.rotation``);
    None reads as none yet. Returns an allowed
    ``Resolution`` (number and rule) or a denial (``caller_id_not_allowed`` or
    ``no_caller_id``).
    """
    available = user.available
    if requested is not None:
        if Permission.CALLERID_CHOOSE not in user.permissions:
            detail = "choosing the caller ID needs the callerid.choose permission"
            _note(trace, Rule.REQUESTED, StepResult.DENIED, detail, requested)
            return Resolution(reason=Reason.CALLER_ID_NOT_ALLOWED, detail=detail)
        if requested not in available:
            detail = _unavailable(user, requested)
            _note(trace, Rule.REQUESTED, StepResult.DENIED, detail, requested)
            return Resolution(reason=Reason.CALLER_ID_NOT_ALLOWED, detail=detail)
        if (account.caps and not account.requested_over_cap
                and account.caps.over(requested, counts or {})):
            detail = capped(requested, account.caps.of(requested))
            _note(trace, Rule.REQUESTED, StepResult.DENIED, detail, requested)
            return Resolution(reason=Reason.CALLER_ID_CAPPED, detail=detail)
        _note(trace, Rule.REQUESTED, StepResult.CHOSEN, "requested for this call", requested)
        return Resolution(caller_id=requested, rule=Rule.REQUESTED)
    _note(trace, Rule.REQUESTED, StepResult.SKIPPED, "no caller ID requested")

    auto = available - resting if resting else available
    caps = account.caps
    usable = sticky_numbers(user, dest, requested, resting)
    if usable is None:
        _note(trace, Rule.STICKY, StepResult.SKIPPED, "sticky caller ID is off")
    elif sticky is None:
        _note(trace, Rule.STICKY, StepResult.SKIPPED, "no connected call with this contact yet")
    elif sticky not in usable:
        _note(trace, Rule.STICKY, StepResult.SKIPPED, _passed_over(user, sticky, resting),
              sticky)
    elif caps and caps.over(sticky, counts or {}):
        _note(trace, Rule.STICKY, StepResult.SKIPPED, capped(sticky, caps.of(sticky)), sticky)
    else:
        _note(trace, Rule.STICKY, StepResult.CHOSEN, "last number connected with this contact",
              sticky)
        return Resolution(caller_id=sticky, rule=Rule.STICKY)

    any_capped = False
    for step in _automatic(account, user, dest, trace):
        number = least_used(step.numbers, auto, counts, caps)
        if number is not None:
            if trace is not None:
                _note(trace, step.rule, StepResult.CHOSEN, _chosen(step, auto, counts), number)
            return Resolution(caller_id=number, rule=step.rule)
        if caps and any(n in auto for n in step.numbers):
            any_capped = True
            if trace is not None:
                over = [n for n in step.numbers if n in auto]
                _note(trace, step.rule, StepResult.SKIPPED,
                      f"{step.detail}: {capped(over[0], account.caps.of(over[0]))}"
                      + (f" (as are the other {len(over) - 1})" if len(over) > 1 else ""),
                      over[0])
        elif trace is not None:
            if len(step.numbers) == 1:
                why = _passed_over(user, step.numbers[0], resting)
                _note(trace, step.rule, StepResult.SKIPPED, f"{step.detail}: {why}",
                      step.numbers[0])
            else:
                _note(trace, step.rule, StepResult.SKIPPED,
                      f"no number of the user's in the callee's {step.detail}")

    if any_capped:
        _note(trace, Step.NO_CALLER_ID, StepResult.DENIED, ALL_CAPPED)
        return Resolution(reason=Reason.CALLER_ID_CAPPED, detail=ALL_CAPPED)
    choices = (
        user.available_sorted if Permission.CALLERID_CHOOSE in user.permissions else ()
    )
    detail = "no caller ID applies: set a default caller ID"
    if choices:
        detail += " or pick one of the choices"
    _note(trace, Step.NO_CALLER_ID, StepResult.DENIED, detail)
    return Resolution(reason=Reason.NO_CALLER_ID, detail=detail, choices=choices)


class Candidates(NamedTuple):
    """One automatic step's offer: the numbers it would go out from, best first (one, but
    for local presence, whose tiers offer every number there)."""

    rule: Rule
    numbers: tuple[str, ...]
    detail: str


def _automatic(
    account: AccountSnapshot, user: UserView, dest: Destination,
    trace: list[TraceStep] | None = None,
) -> Iterator[Candidates]:
    """The automatic steps after sticky, in order: geo, local presence by tier, defaults.
    Their numbers are not yet filtered by what the user may present; steps that offer
    nothing are noted in ``trace`` here."""
    if user.geo is None:
        why = "account is not Pro" if not account.pro else "geo caller ID is off"
        _note(trace, Step.GEO, StepResult.SKIPPED, why)
    else:
        candidates = match(user.geo, dest)
        if not candidates:
            _note(trace, Step.GEO, StepResult.SKIPPED, "no geo rule matches and no default geo ID")
        for candidate in candidates:
            yield Candidates(candidate.rule, (candidate.number,), candidate.detail)
    if user.local_presence:
        for tier, key, numbers in local_tiers(account.local, dest):
            yield Candidates(Rule.LOCAL_PRESENCE, numbers, f"{tier} {key}")
    else:
        why = ("local presence is off" if not user.settings.local_presence
               else "local presence needs the callerid.local_presence permission")
        _note(trace, Step.LOCAL_PRESENCE, StepResult.SKIPPED, why)
    for rule, number in (
        (Rule.USER_DEFAULT, user.default_caller_id),
        (Rule.DEPARTMENT_DEFAULT, user.department_default),
        (Rule.ACCOUNT_DEFAULT, account.account_default),
    ):
        if number is None:
            _note(trace, rule, StepResult.SKIPPED, "not set")
        else:
            yield Candidates(rule, (number,), "default caller ID")


def candidate_steps(
    account: AccountSnapshot, user: UserView, dest: Destination,
    resting: frozenset[str] = frozenset(), *, first: bool = False,
) -> tuple[tuple[Rule, tuple[str, ...]], ...]:
    """The automatic steps ``resolve`` walks after sticky, each with the numbers it offers
    this user now (resting ones left out), steps offering none left out; with ``first``,
    only the first step that offers any. A store walks these with today's counts
    (``least_used``) in the step that takes the channel; ``resolve`` given the same counts
    picks the same number."""
    auto = user.available - resting if resting else user.available
    steps = []
    for step in _automatic(account, user, dest):
        numbers = tuple(n for n in step.numbers if n in auto)
        if numbers:
            steps.append((step.rule, numbers))
            if first:
                break
    return tuple(steps)


def _chosen(step: Candidates, auto: frozenset[str], counts: Mapping[str, int] | None) -> str:
    if step.rule is not Rule.LOCAL_PRESENCE:
        return step.detail
    numbers = [n for n in step.numbers if n in auto]
    listed = ", ".join(numbers[:10]) + (", ..." if len(numbers) > 10 else "")
    if len(numbers) == 1:
        return f"{step.detail}: the only candidate ({listed})"
    how = "the least used today" if counts else "the first"
    return f"{step.detail}: {how} of {len(numbers)} candidates ({listed})"


def resolve_emergency(
    account: AccountSnapshot, user: UserView, trace: list[TraceStep] | None = None
) -> Resolution:
    """Emergency calls always go through, from the user's default caller ID (or the next
    default that exists, or any available number); with none at all, the network presents
    the trunk's own number and ``caller_id`` is None."""
    for number in (user.default_caller_id, user.department_default, account.account_default):
        if number is not None and number in account.active_numbers:
            _note(trace, Rule.EMERGENCY, StepResult.CHOSEN, "emergency call: default caller ID",
                  number)
            return Resolution(caller_id=number, rule=Rule.EMERGENCY)
    fallback = user.available_sorted[0] if user.available_sorted else None
    _note(trace, Rule.EMERGENCY, StepResult.CHOSEN, "emergency call: no default caller ID set",
          fallback)
    return Resolution(caller_id=fallback, rule=Rule.EMERGENCY)
