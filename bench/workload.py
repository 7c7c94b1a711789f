"""What the benchmarks dial: the bench account and fresh US numbers."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import phonenumbers

from callerid import AccountConfig
from engine import configfile

__all__ = ["BENCH_USER", "DEMO", "ROOT", "FreshNumbers", "bench_account", "demo_config"]

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.toml"

BENCH_USER = "ana"
"""The user every full-decision benchmark dials as: allowed by her user default, no sticky
lookup, no geo; the plainest allowed path through the pipeline."""

# The schema's ceiling on max channels (callerid.model.Channels).
_MAX_CHANNELS = 100_000


def demo_config() -> AccountConfig:
    return configfile.decode(DEMO.read_bytes(), "toml", source=str(DEMO))


def bench_account(lease_ttl_s: int = 7 * 86400) -> AccountConfig:
    """The demo account with room for every lease a benchmark takes: the demo users hold 2-4
    channels, so a benchmark on them would mostly measure ``channel_limit`` denials (which
    write nothing) instead of admissions. Each benchmark round uses a fresh store, so
    100,000 channels per user are never reached."""
    config = demo_config()
    users = tuple(msgspec.structs.replace(u, max_channels=_MAX_CHANNELS) for u in config.users)
    return msgspec.structs.replace(config, users=users, max_channels=None, lease_ttl_s=lease_ttl_s)


class FreshNumbers:
    """Valid New York numbers (+1 212 NXX XXXX), each handed out once per instance, so a
    phonenumbers parse is never repeated and ``normalise``'s cache always misses."""

    def __init__(self, seed: int = 20240501) -> None:
        self._rng = random.Random(seed)
        self._seen: set[str] = set()

    def take(self, count: int) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            number = f"+1212{self._rng.randint(2_000_000, 9_999_999)}"
            if number in self._seen:
                continue
            self._seen.add(number)
            # Checked once, outside any timing: an invalid number would take the cheap
            # invalid_number path and flatter callgate.
            if phonenumbers.is_valid_number(phonenumbers.parse(number, "US")):
                out.append(number)
        return out
