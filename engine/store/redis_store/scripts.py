"""The Redis store's scripts: one ``.lua`` file each (in ``lua/``), with named keys and
arguments.

Each script's ``KEYS`` and ``ARGV`` are described once, by a ``NamedTuple`` here; the script
reads them by name (``K.leases``, ``A.deadline_ms``), and each name is replaced by its
position (``KEYS[3]``, ``ARGV[2]``) when the source is built, so the Lua and the Python
cannot disagree on a position, a misspelt name fails at import, and a call builds no table
of names (on the dial path that was a tenth of the script's time). Every key a script
touches is in ``KEYS`` (a Cluster proxy routes by them), and all of a call's keys share its
account's hash tag. A trailing ``audit`` argument takes the rest
of ``ARGV``. Replies open with an integer code, listed at the top of each file and mirrored
by an ``IntEnum`` here.

Scripts run by ``EVALSHA``; a server that does not know one (new, restarted, failed over,
another cluster node) gets its source once, by ``SCRIPT LOAD``, and the call is repeated.
"""

from __future__ import annotations

import enum
import hashlib
import re
from importlib import resources
from typing import Any, NamedTuple

from ..protocol import RETENTION_MS, USAGE_KEPT_DAYS

__all__ = [
    "ADD_TOKEN", "ADMIT", "ANNOUNCE", "AUDIT_KEPT", "CLAIM_NUMBERS", "DNC_ADD", "DNC_REMOVE",
    "END", "FEED", "HEARTBEAT",
    "LIVE", "PEEK", "RELEASE_NUMBERS", "REMOVE_TOKEN", "SAVE_CONFIG", "SCRIPTS", "SEND_TEXT",
    "UNDO_ADMIT", "AdmitArgs", "AdmitCode", "AdmitKeys", "EndCode", "HeartbeatCode", "Script",
    "TextArgs", "TextCode", "TextKeys",
]

AUDIT_KEPT = 100_000
"""Entries of an account's audit log Redis keeps (about: the stream is trimmed in blocks)."""


class Script:
    """One script: its source (the preludes it asks for, then its file, without their
    comment lines, names replaced by positions) and its SHA-1."""

    def __init__(
        self, name: str, keys: type[Any], args: type[Any], *, preludes: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.keys = keys
        self.args = args
        text = "\n".join(_read(p) for p in (*preludes, name))
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        self.source = _positions(body, keys, args)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def call_args(self, keys: tuple[Any, ...], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """``EVALSHA``'s arguments after the SHA: the key count, the keys (trailing Nones
        left out), the arguments (trailing Nones left out too: ``ARGV[i]`` is then nil; a
        trailing ``audit`` or ``numbers`` spread)."""
        present = list(keys)
        while present and present[-1] is None:
            present.pop()
        values = list(args)
        if self.args._fields and self.args._fields[-1] in _SPREAD:
            values[-1:] = list(values[-1])
        while values and values[-1] is None:
            values.pop()
        if None in present or None in values:  # a gap would move every later position
            raise ValueError(f"{self.name}: only trailing keys and arguments may be left out")
        return (len(present), *present, *values)


def _read(name: str) -> str:
    text = resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()
    return (text.replace("AUDIT_KEPT", str(AUDIT_KEPT))
            .replace("RETENTION_MS", str(RETENTION_MS))
            .replace("USAGE_KEPT_S", str(USAGE_KEPT_DAYS * 86400)))


_NAME = re.compile(r"\b([KA])\.([a-z_]+)\b")
_SPREAD = ("audit", "numbers")
"""A last argument of these names is a sequence, spread over the rest of ``ARGV``."""


def _positions(body: str, keys: type[Any], args: type[Any]) -> str:
    """``body`` with each ``K.<name>``/``A.<name>`` replaced by its ``KEYS``/``ARGV`` index.
    A trailing ``audit`` argument is ``A.audit_entries``, a table of the rest of ``ARGV``; a
    trailing ``numbers`` one starts at ``ARGV[A.numbers_from]`` (as many as there are: no
    table, whose ``unpack`` is limited to a few thousand values)."""
    names = {"K": list(keys._fields), "A": list(args._fields)}
    last = names["A"][-1] if names["A"] else None
    prologue = ""
    if last == "audit":
        prologue = f"local audit_entries = {{unpack(ARGV, {len(names['A'])})}}\n"

    def position(match: re.Match[str]) -> str:
        table, name = match.groups()
        if table == "A" and name == "audit_entries" and last == "audit":
            return "audit_entries"
        if table == "A" and name == "numbers_from" and last == "numbers":
            return str(len(names["A"]))
        try:
            index = names[table].index(name) + 1
        except ValueError:
            raise ValueError(f"{body.splitlines()[0]}: no {table}.{name}") from None
        return f"{'KEYS' if table == 'K' else 'ARGV'}[{index}]"

    return prologue + _NAME.sub(position, body)


# -- the dial and the call lifecycle --------------------------------------------------------

class AdmitKeys(NamedTuple):
    record: str
    leases: str
    counts: str
    usage: str
    denied: str | None = None
    """When the dial remembers (a call id the client chose) or ``sticky`` is given."""
    sticky: str | None = None
    """Only when the plan may take a sticky caller ID."""


class AdmitArgs(NamedTuple):
    """What ADMIT reads (lua/admit.lua says which path reads what): each argument costs Redis
    about a tenth of the script's own work, so the optional ones are left out at the end."""

    skew_ms: int
    deadline_ms: int
    flags: str
    """Three of '1'/'0': remember, counted, allowed; a fourth '1' when the dial is looked up
    in the do-not-call list (``Ticket.dnc``): then the last key is the number's set
    (``keys.dnc``) and the last argument the number, after every other one."""
    user: str
    call_id: str
    user_limit: int
    account_limit: int | str
    ttl_ms: int
    keep: str
    tail: str
    """The call record's fields after ``k``: '<c> <n> <f> <u> <t> <l>|' (lua/record.lua)."""
    answer: bytes
    fingerprint: str | None = None
    nonce: str | None = None
    contact: str | None = None
    sticky_answer: bytes | None = None
    sticky_ids: str | None = None
    cap: int | str | None = None
    """The account's daily cap per number ('' none); with ``caps``, only when a number's
    cap matters: a sticky caller ID over its cap is passed over."""
    caps: str | None = None
    """The numbers with a cap of their own: ',<number>=<cap>,...'."""
    steps: str | None = None
    """A rotation (``Plan.rotation``): '<rule> <number> <number>...;' per step, in order."""
    pick: bytes | None = None
    """The rotation's answer after its rule (``answers.pick_tail``)."""


class AdmitCode(enum.IntEnum):
    LATE = 0
    REPLAY = 1
    REPLAY_DENIAL = 2
    ALLOWED = 3
    DENIED = 4
    LIMIT = 5
    DO_NOT_CALL = 6


class TextKeys(NamedTuple):
    texts: str
    sticky: str
    sticky_expiry: str
    dnc: str | None = None
    """With ``TextArgs.dnc``: the contact's set of the do-not-call list (``keys.dnc``)."""


class TextArgs(NamedTuple):
    """What SEND_TEXT reads (lua/send_text.lua)."""

    skew_ms: int
    deadline_ms: int
    contact: str
    sticky_ids: str
    """',<number>,...' the contact's sticky number may be, '' when sticky cannot answer."""
    sticky_ttl_ms: int
    cap: int | str
    caps: str
    steps: str
    """As ADMIT's: the rotation, '' for none."""
    sender: str
    """Without steps (or a sticky hit), the sender; '' when the text is denied."""
    dnc: str | None = None
    """The contact's number, looked up in the do-not-call list first (``TextTicket.dnc``)."""


class TextCode(enum.IntEnum):
    LATE = 0
    NONE = 1
    SENT = 2
    DO_NOT_CALL = 3


class UndoKeys(NamedTuple):
    record: str
    leases: str
    counts: str
    usage: str


class UndoArgs(NamedTuple):
    skew_ms: int
    call_id: str
    nonce: str


class EndKeys(NamedTuple):
    record: str
    denied: str
    leases: str
    counts: str
    sticky: str
    sticky_expiry: str
    answers: str | None = None
    """With ``window``: the numbers' windows of last ended calls (``auto_rest``)."""


class EndArgs(NamedTuple):
    skew_ms: int
    call_id: str
    outcome: str
    connected: str
    user: str
    window: str | None = None
    """'<calls> <least>' (``protocol.AnswerWindow``) when the account has ``auto_rest``."""


class EndCode(enum.IntEnum):
    MISSING = 0
    DENIED = 1
    ENDED = 2
    OK = 3


class HeartbeatKeys(NamedTuple):
    record: str
    denied: str
    leases: str


class HeartbeatArgs(NamedTuple):
    skew_ms: int
    call_id: str
    ttl_ms: int
    user: str


class HeartbeatCode(enum.IntEnum):
    MISSING = 0
    DENIED = 1
    ENDED = 2
    EXPIRED = 3
    OK = 4
    EMERGENCY = 5


class PeekKeys(NamedTuple):
    record: str
    denied: str
    leases: str
    counts: str
    sticky: str


class PeekArgs(NamedTuple):
    skew_ms: int
    remember: str
    user: str
    contact: str


class LiveKeys(NamedTuple):
    leases: str


class LiveArgs(NamedTuple):
    skew_ms: int
    after: str
    """'' for the first page, else the last lease expiry the page before ended at"""
    skip: int
    """Calls with lease expiry ``after`` the pages before listed already"""
    most: int


# -- configuration, tokens and the change feed ----------------------------------------------

class ConfigKeys(NamedTuple):
    config: str
    audit: str


class SaveConfigArgs(NamedTuple):
    expected_version: int
    config: bytes
    audit: tuple[bytes, ...]


class TokenKeys(NamedTuple):
    tokens: str
    audit: str
    use: str


class AddTokenArgs(NamedTuple):
    hash: str
    record: bytes
    audit: tuple[bytes, ...]


class RemoveTokenArgs(NamedTuple):
    hash: str
    audit: tuple[bytes, ...]


class NumberKeys(NamedTuple):
    owners: str
    mine: str


class NumbersArgs(NamedTuple):
    account: str
    numbers: tuple[str, ...]


class DncKeys(NamedTuple):
    """Then the sets of the numbers (``keys.dnc``), one for each number, in order."""

    listed: str
    """The list's count (``keys.dnc_count``)."""
    audit: str


class DncArgs(NamedTuple):
    audit: bytes | str
    """One audit entry (JSON), or '' for none."""
    numbers: tuple[str, ...]
    """Each number's member of its set (``dnc.redis_bucket``), as the keys order them."""


class FeedKeys(NamedTuple):
    version: str
    feed: str


class AnnounceArgs(NamedTuple):
    kind: str
    subject: str
    value: str
    channel: str
    kept: int


class FeedArgs(NamedTuple):
    since: int
    most: int


_RECORD = ("clock", "record")
ADMIT = Script("admit", AdmitKeys, AdmitArgs, preludes=(*_RECORD, "leases", "rotation"))
UNDO_ADMIT = Script("undo_admit", UndoKeys, UndoArgs, preludes=(*_RECORD, "leases"))
END = Script("end", EndKeys, EndArgs, preludes=(*_RECORD, "kept", "leases"))
HEARTBEAT = Script("heartbeat", HeartbeatKeys, HeartbeatArgs, preludes=(*_RECORD, "kept"))
PEEK = Script("peek", PeekKeys, PeekArgs, preludes=(*_RECORD, "leases"))
LIVE = Script("live", LiveKeys, LiveArgs, preludes=("clock",))
SEND_TEXT = Script("send_text", TextKeys, TextArgs, preludes=("clock", "rotation"))
SAVE_CONFIG = Script("save_config", ConfigKeys, SaveConfigArgs, preludes=("audit",))
ADD_TOKEN = Script("add_token", TokenKeys, AddTokenArgs, preludes=("audit",))
REMOVE_TOKEN = Script("remove_token", TokenKeys, RemoveTokenArgs, preludes=("audit",))
ANNOUNCE = Script("announce", FeedKeys, AnnounceArgs)
CLAIM_NUMBERS = Script("claim_numbers", NumberKeys, NumbersArgs)
RELEASE_NUMBERS = Script("release_numbers", NumberKeys, NumbersArgs)
FEED = Script("feed", FeedKeys, FeedArgs)
DNC_ADD = Script("dnc_add", DncKeys, DncArgs, preludes=("audit",))
DNC_REMOVE = Script("dnc_remove", DncKeys, DncArgs, preludes=("audit",))

SCRIPTS = (ADMIT, UNDO_ADMIT, END, HEARTBEAT, PEEK, LIVE, SEND_TEXT, SAVE_CONFIG, ADD_TOKEN,
           REMOVE_TOKEN, ANNOUNCE, FEED, CLAIM_NUMBERS, RELEASE_NUMBERS, DNC_ADD, DNC_REMOVE)
