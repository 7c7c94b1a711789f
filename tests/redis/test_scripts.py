"""The Redis store's scripts as built (no Redis needed): names become positions, constants
are filled in, and only trailing keys and arguments may be left out of a call."""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from engine.store.protocol import RETENTION_MS
from engine.store.redis_store import scripts as S
from engine.store.redis_store.scripts import _positions


def test_every_script_is_built_with_positions_and_constants() -> None:
    for script in S.SCRIPTS:
        assert not re.search(r"\b[KA]\.[a-z_]+\b", script.source), script.name
        assert "RETENTION_MS" not in script.source and "AUDIT_KEPT" not in script.source
        assert not any(line.lstrip().startswith("--") for line in script.source.splitlines())
    assert f"+ {RETENTION_MS}" in S.ADMIT.source


def test_a_misspelt_name_fails_when_the_script_is_built() -> None:
    class Keys(NamedTuple):
        record: str

    class Args(NamedTuple):
        user: str

    assert _positions("return {K.record, A.user}", Keys, Args) == "return {KEYS[1], ARGV[1]}"
    with pytest.raises(ValueError, match=r"no A\.usr"):
        _positions("return A.usr", Keys, Args)


def _admit_args(**optional: object) -> S.AdmitArgs:
    return S.AdmitArgs(
        skew_ms=0, deadline_ms=1, flags="011", user="ann", call_id="c1", user_limit=2,
        account_limit="", ttl_ms=1000, keep="", tail="1 n1 f1 ann +12125550100 0|",
        answer=b"x", **optional,  # type: ignore[arg-type]
    )


def test_a_plain_dial_sends_only_what_its_path_reads() -> None:
    keys = S.AdmitKeys(record="r", leases="l", counts="c", usage="u")
    sent = S.ADMIT.call_args(keys, _admit_args())
    assert sent[0] == 4 and sent[1:5] == ("r", "l", "c", "u")
    assert len(sent) == 1 + 4 + 11  # no denied key; no fingerprint, nonce, sticky or rotation


def test_a_sticky_dial_sends_every_key_and_argument_in_place() -> None:
    keys = S.AdmitKeys(record="r", leases="l", counts="c", usage="u", denied="d", sticky="s")
    args = _admit_args(fingerprint="f1", nonce="n1", contact="+12125550100",
                       sticky_answer=b"y", sticky_ids=",+12125550111,")
    sent = S.ADMIT.call_args(keys, args)
    assert sent[:7] == (6, "r", "l", "c", "u", "d", "s")
    assert sent[7:] == tuple(args)[:len(sent) - 7]  # the rotation's arguments left out


def test_a_key_or_argument_left_out_before_a_given_one_is_refused() -> None:
    with pytest.raises(ValueError, match="only trailing"):
        S.ADMIT.call_args(S.AdmitKeys(record="r", leases="l", counts="c", usage="u", sticky="s"),
                          _admit_args())
    with pytest.raises(ValueError, match="only trailing"):
        S.ADMIT.call_args(S.AdmitKeys(record="r", leases="l", counts="c", usage="u"),
                          _admit_args(contact="+12125550100"))
