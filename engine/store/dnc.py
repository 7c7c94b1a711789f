"""Do-not-call lists as the stores keep them: each number as an integer (its E.164 digits),
and the embedded store's in-memory index of an account's list.

Memory per entry
----------------
An account may list 10 million numbers, so neither store keeps a set of strings (a Python
set of ``str`` costs about 120 bytes an entry, a Redis set of strings about 70).

- **Embedded** (``DncIndex``): the numbers in 4,096 buckets by their low 12 bits, each bucket
  a sorted ``array`` of the rest of the number, 32 bits wide (64 only for a bucket holding a
  number of 14 digits or more): about 4 bytes an entry, and a lookup is a dictionary get and
  a binary search in a bucket of about N/4096 numbers (12 steps at 10 million). SQLite keeps
  the durable copy, an indexed ``WITHOUT ROWID`` table keyed by (list, number); the index is
  built from it at start, reading the rows in key order straight into the arrays.
- **Redis** (``redis_bucket``): 65,536 sets per account, ``…:dnc:<low 16 bits>``, holding the
  rest of the number as an integer. A set of at most ``set-max-intset-entries`` (512) integers
  is an *intset*, a sorted array of 32-bit integers (64 for longer numbers): 4 bytes an entry
  plus each key's overhead, so about 5 bytes an entry at 10 million (a bucket holds 153 on
  average, and overflows 512 only past about 30 million numbers: it then becomes a hash
  table, bigger but still right). ``SISMEMBER`` on an intset is a binary search of its few
  hundred entries.

``bench/dnc_memory.py`` measures both.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

__all__ = ["DncIndex", "number_key", "redis_bucket"]

_BITS = 12
_MASK = (1 << _BITS) - 1
_REDIS_BITS = 16
_REDIS_MASK = (1 << _REDIS_BITS) - 1


def number_key(e164: str) -> int:
    """An E.164 number (``+`` and up to 15 digits) as the integer a list keeps."""
    return int(e164[1:])


def redis_bucket(number: int) -> tuple[int, int]:
    """(the bucket, the member in it) of a number on Redis."""
    return number & _REDIS_MASK, number >> _REDIS_BITS


def _array(values: Iterable[int]) -> array[int]:
    listed = values if isinstance(values, list) else list(values)
    try:
        return array("I", listed)
    except OverflowError:  # a number of 14 digits or more: this bucket takes 64 bits
        return array("Q", listed)


class DncIndex:
    """One account's list in memory: ``number in index`` in a few hundred nanoseconds."""

    __slots__ = ("_buckets", "count")

    def __init__(self) -> None:
        self._buckets: dict[int, array[int]] = {}
        self.count = 0

    def __contains__(self, number: int) -> bool:
        bucket = self._buckets.get(number & _MASK)
        if bucket is None:
            return False
        rest = number >> _BITS
        i = bisect_left(bucket, rest)
        return i < len(bucket) and bucket[i] == rest

    def append_sorted(self, number: int) -> None:
        """Add ``number``, greater than every number added so far (loading a list in key
        order: each bucket is appended to in order)."""
        key, rest = number & _MASK, number >> _BITS
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = _array([rest])
        else:
            try:
                bucket.append(rest)
            except OverflowError:
                self._buckets[key] = wide = array("Q", bucket)
                wide.append(rest)
        self.count += 1

    def add(self, numbers: Iterable[int]) -> int:
        """Add ``numbers``; how many were not listed before."""
        return self._change(numbers, adding=True)

    def remove(self, numbers: Iterable[int]) -> int:
        """Remove ``numbers``; how many were listed."""
        return self._change(numbers, adding=False)

    def _change(self, numbers: Iterable[int], *, adding: bool) -> int:
        grouped: dict[int, set[int]] = {}
        for number in numbers:
            grouped.setdefault(number & _MASK, set()).add(number >> _BITS)
        changed = 0
        for key, rests in grouped.items():
            bucket = self._buckets.get(key)
            old = set(bucket) if bucket is not None else set()
            new = old | rests if adding else old - rests
            if len(new) == len(old):
                continue
            changed += abs(len(new) - len(old))
            if new:
                self._buckets[key] = _array(sorted(new))
            else:
                del self._buckets[key]
        self.count += changed if adding else -changed
        return changed
