"""What each dial calls: ``NumberSource`` makes fresh valid numbers of some regions, none twice,
and ``Destinations`` hands out a listed number, a fresh one or one dialled already.

A region's numbers come from blocks: a prefix taken from one of phonenumbers' example numbers
(``engine.numbers.example_numbers``), then free digits walked by a permutation. What is
valid is ``normalise``'s to say, as on the server."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Sequence

import msgspec

from ..errors import ConfigurationError
from ..numbers import example_numbers, normalise

__all__ = ["Destinations", "NumberSource"]

_RECENT = 10_000
"""How many dialled numbers a repeated dial picks from."""

_DIALLABLE = frozenset({"fixed_line", "mobile", "fixed_line_or_mobile"})


class _Block(msgspec.Struct, frozen=True):
    """Numbers ``+{prefix}`` followed by ``free`` digits, walked by a permutation of
    ``10**free`` so that none comes twice."""

    prefix: str
    free: int
    region: str


def _seeds(region: str) -> list[tuple[int, str]]:
    """(country code, national significant number) of the example fixed-line and mobile
    numbers of ``region``: the seeds of its generated numbers."""
    out = []
    for e164 in example_numbers(region):
        dest = normalise(e164, region)
        if dest is not None:
            out.append((dest.country_code, dest.national_number))
    return out


def _diallable(number: str, region: str) -> bool:
    dest = normalise(number, region)
    return dest is not None and dest.region == region and dest.kind in _DIALLABLE


_STEP = 6_364_136_223_846_793_005  # odd, not a multiple of 5: coprime to every 10**k


def _candidate(block: _Block, j: int, offset: int) -> str:
    size = 10**block.free
    return f"+{block.prefix}{(offset + j * _STEP) % size:0{block.free}d}"


def _blocks(region: str, sample: int = 200, min_valid: float = 0.25) -> list[_Block]:
    """Per example number, the widest block (fewest leading digits kept) in which at least
    ``min_valid`` of a sample are valid fixed-line or mobile numbers of ``region``; nested
    blocks are dropped so that no number can come from two."""
    found: list[_Block] = []
    for code, national in _seeds(region):
        for keep in range(1, len(national)):
            free = min(len(national) - keep, 9)
            block = _Block(f"{code}{national[:len(national) - free]}", free, region)
            tries = min(sample, 10**free)
            valid = sum(_diallable(_candidate(block, j, 0), region) for j in range(tries))
            if valid >= max(1, min_valid * tries):
                found.append(block)
                break
    found.sort(key=lambda b: (len(b.prefix), b.prefix))
    kept: list[_Block] = []
    for block in found:
        total = len(block.prefix) + block.free
        if not any(block.prefix.startswith(k.prefix) and total == len(k.prefix) + k.free
                   for k in kept):
            kept.append(block)
    return kept


class NumberSource:
    """Valid fixed-line and mobile numbers (E.164) of ``regions``, taken in turn from each
    region, none given twice until a region's blocks are exhausted (tens of millions of
    numbers for most regions). Checked with callgate's own ``normalise``: every number is one
    the server reads as diallable in that region (a premium-rate or shared-cost number would
    be a ``permission_denied`` of no interest here). ``seed`` None: a random start, so that
    two runs dial different numbers. Raises ``ConfigurationError`` for a region with no such
    numbers."""

    def __init__(self, regions: Sequence[str], seed: int | None = None) -> None:
        self._regions: list[list[_Block]] = []
        for region in regions:
            blocks = _blocks(region)
            if not blocks:
                raise ConfigurationError(f"--region {region}: cannot generate valid numbers "
                                         "there; give --destinations FILE")
            self._regions.append(blocks)
        self._taken = [0] * len(self._regions)
        self._offset = random.Random(seed).randrange(10**9)
        self._next = 0
        self._ready: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def prefill(self, count: int) -> None:
        """Make the next ``count`` numbers now, before a run, so that the run does not spend
        its time on them (each costs a few ``normalise`` calls)."""
        self._ready.extend(self._make() for _ in range(count))

    def __next__(self) -> str:
        return self._ready.popleft() if self._ready else self._make()

    def _make(self) -> str:
        which = self._next % len(self._regions)
        self._next += 1
        blocks = self._regions[which]
        for _ in range(100_000):
            n = self._taken[which]
            self._taken[which] = n + 1
            block = blocks[n % len(blocks)]
            number = _candidate(block, n // len(blocks), self._offset)
            if _diallable(number, block.region):
                return number
        raise RuntimeError(f"no valid number in 100,000 candidates in {blocks[0].region}")


class Destinations:
    """What each dial calls: with a list, its numbers in turn; else a fresh number, or with
    probability ``repeat_share`` one of the last ``_RECENT`` numbers dialled (as a dialer
    retries its list: callgate's normalise and sticky caches meet them again)."""

    def __init__(self, *, listed: Sequence[str] = (), fresh: Iterator[str] | None = None,
                 repeat_share: float = 0.0) -> None:
        if not listed and fresh is None:
            raise ValueError("Destinations needs a list or a source of fresh numbers")
        self._listed = tuple(listed)
        self._fresh = fresh
        self._repeat_share = repeat_share
        self._recent: list[str] = []
        self._next = 0

    def take(self, rng: random.Random) -> str:
        if self._listed:
            number = self._listed[self._next % len(self._listed)]
            self._next += 1
            return number
        assert self._fresh is not None
        if self._recent and rng.random() < self._repeat_share:
            return self._recent[rng.randrange(len(self._recent))]
        number = next(self._fresh)
        if len(self._recent) < _RECENT:
            self._recent.append(number)
        else:
            self._recent[self._next % _RECENT] = number
            self._next += 1
        return number
