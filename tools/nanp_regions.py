"""Regenerate ``callerid/nanp.py``, the NANP area code -> state, province or country table.

    python tools/nanp_regions.py --output callerid/nanp.py    (or: ... > callerid/nanp.py)

Two parts of the installed phonenumbers answer different halves of the question:

- its metadata says which NANP member each area code (NPA) belongs to, and whether numbers
  there are geographic at all (toll-free 8XX, 900, 5XX and Canada's 600 are not);
- its geocoding data names the places, one English description per number prefix ("New York,
  NY" for +1212, "California" for +1310, "Ontario", "Washington D.C."). For a US or Canadian
  NPA each description becomes a state or province code, and the most common one wins: an
  NPA lies in one state or province, and a stray description (a border town, a typo) is
  outvoted. Other members get their ISO country code alone, whatever the towns are called.

Anything that does not fit (a description naming no known place, an NPA whose places are in
the other country from the one the metadata gives it) is left out of the table and reported
on stderr, so an upgrade of phonenumbers that changes the data shows up when regenerating.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY",
}
"""The 50 states and DC by name, with their ISO 3166-2 codes (the postal abbreviations)."""

CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Northwest Territories": "NT", "Nova Scotia": "NS",
    "Nunavut": "NU", "Ontario": "ON", "Prince Edward Island": "PE", "Quebec": "QC",
    "Saskatchewan": "SK", "Yukon": "YT",
}
"""Canada's 10 provinces and 3 territories by name, with their ISO 3166-2 codes."""

OTHER_NAMES = {
    # How the geocoding data spells a few places besides the plain names above.
    "Washington D.C.": "US-DC",
    "Washington State": "US-WA",
    "British Colombia": "CA-BC",
    # One NPA over several provinces or territories: 902 and its overlay 782 serve Nova Scotia
    # and Prince Edward Island, 867 the three territories. Such a description counts for the
    # first place it names; the NPA's town entries (", PE", ", YT") still get their own votes.
    "Nova Scotia/Prince Edward Island": "CA-NS",
    "Northwest Territories/Nunavut/Yukon": "CA-NT",
    "Watson Lake": "CA-YT",
}

PLACES: dict[str, str] = {
    **{name: f"US-{code}" for name, code in US_STATES.items()},
    **{name: f"CA-{code}" for name, code in CA_PROVINCES.items()},
    **OTHER_NAMES,
}
"""Every bare place name (no ", ST" suffix) the generator understands, to its code."""

SUBDIVISIONS = {f"US-{code}" for code in US_STATES.values()} | {
    f"CA-{code}" for code in CA_PROVINCES.values()
}

_SUFFIX = re.compile(r", ([A-Z]{2})$")
"""'Toronto, ON': a town, then its state or province abbreviation."""

_SUBSCRIBERS = ("2345678", "9876543")
"""Two made-up local numbers (exchange and line) to try under each NPA, with exchanges of the
kind any NPA has (2-9 first, not N11 or 555). Membership can hang on the exchange (the
Dominican Republic's metadata claims 800-1XX, inside US toll-free 800), so an NPA counts only
when both land in the same member."""


def _descriptions() -> dict[str, Counter[str]]:
    """NPA -> how many geocoding prefixes carry each English description."""
    found: dict[str, Counter[str]] = {}
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 4 and "en" in names:
            found.setdefault(prefix[1:4], Counter())[names["en"]] += 1
    return found


def _member(npa: str) -> tuple[str | None, bool]:
    """The NANP member (ISO region) phonenumbers' metadata gives ``npa``, and whether its
    numbers are geographic. (None, False) for an unassigned NPA or one split by exchange.

    For the Caribbean members and the US territories, ``region_code_for_number`` goes by the
    member's leading digits and answers even for a number the member would not accept; for the
    US and Canada it needs a valid number, which is why the type is read too."""
    regions: set[str | None] = set()
    geographic = True
    for subscriber in _SUBSCRIBERS:
        number = phonenumbers.parse(f"+1{npa}{subscriber}")
        regions.add(phonenumbers.region_code_for_number(number))
        kind = phonenumbers.number_type(number)
        geographic = geographic and phonenumbers.is_number_type_geographical(kind, 1)
    if len(regions) != 1:
        return None, False
    return regions.pop(), geographic


def _code_for(description: str) -> str | None:
    """'New York, NY' -> 'US-NY', 'Ontario' -> 'CA-ON'; None for a name we do not know."""
    suffix = _SUFFIX.search(description)
    if suffix is not None:
        abbreviation = suffix.group(1)
        for code in (f"US-{abbreviation}", f"CA-{abbreviation}"):
            if code in SUBDIVISIONS:
                return code
        return None
    return PLACES.get(description)


def npa_regions() -> tuple[dict[str, str], list[str]]:
    """The table for ``callerid.nanp`` (NPA -> 'US-NY', 'CA-ON' or 'JM'), sorted by NPA, and
    the problems met on the way (one line each, for a human to read)."""
    described = _descriptions()
    table: dict[str, str] = {}
    problems: list[str] = []
    for npa in map(str, range(200, 1000)):
        member, geographic = _member(npa)
        places = described.get(npa, Counter())
        if member is None or (member in ("US", "CA") and not geographic):
            if places:
                problems.append(f"{npa}: not geographic in the metadata ({member}), but the "
                                f"geocoding data names {sorted(places)}; left out")
            continue
        if member not in ("US", "CA"):
            table[npa] = member
            continue
        votes: Counter[str] = Counter()
        for description, count in places.items():
            code = _code_for(description)
            if code is None:
                problems.append(f"{npa}: unknown place {description!r}; ignored")
            else:
                votes[code] += count
        if not votes:
            problems.append(f"{npa}: a geographic {member} NPA with no known place; left out")
            continue
        # Most votes wins; a tie goes to the first code alphabetically, so reruns agree.
        best = min(votes, key=lambda code: (-votes[code], code))
        if best.split("-")[0] != member:
            problems.append(f"{npa}: the places say {best}, the metadata says {member}; "
                            f"left out")
            continue
        if len(votes) > 1:
            problems.append(f"{npa}: {best} by {votes[best]} of {votes.total()} entries "
                            f"({dict(votes.most_common())})")
        table[npa] = best
    return table, problems


MODULE = '''\
"""NANP area codes and where they are: a state, a province, or a country.

``NPA_REGIONS`` maps each geographic area code (NPA) of the North American Numbering Plan,
country calling code +1, to where its numbers are:

- in the US and Canada, the ISO 3166-2 code of the state or province ('212' -> 'US-NY',
  '202' -> 'US-DC', '416' -> 'CA-ON');
- elsewhere, the ISO code of the country alone: the Caribbean members ('876' -> 'JM') and
  the US territories that have their own code ('787' -> 'PR', '671' -> 'GU').

Non-geographic NPAs (toll-free 8XX, 900, 5XX, Canada's 600, unassigned codes) are absent.
Local presence looks an NPA up on every dial; phonenumbers could answer only from its
geocoding data, which takes some 100 MB of memory once loaded, so the answer is computed once
and shipped here as a plain dict.

Generated by ``tools/nanp_regions.py`` from phonenumbers {version}: the member country of each
NPA from its metadata, the state or province from its geocoding data (the most common place
among the NPA's entries). Do not edit by hand; after upgrading phonenumbers, run

    python tools/nanp_regions.py --output callerid/nanp.py

``tests/callerid/test_nanp.py`` fails while the table and the installed phonenumbers disagree.
"""

from __future__ import annotations

__all__ = ["NPA_REGIONS", "country_of", "nanp_region"]


def nanp_region(national_number: str) -> str | None:
    """Where a NANP number is ('US-NY', 'CA-ON', 'JM'), from the area code of its 10-digit
    national number ('2125550123'); None for a non-geographic area code or a number that is
    not 10 digits long."""
    if len(national_number) != 10:
        return None
    return NPA_REGIONS.get(national_number[:3])


def country_of(region: str) -> str:
    """The ISO country of a table entry: 'US-NY' -> 'US', 'JM' -> 'JM'."""
    return region.partition("-")[0]


NPA_REGIONS: dict[str, str] = {{
{entries}
}}
'''


def render(table: dict[str, str]) -> str:
    """The source of ``callerid/nanp.py`` holding ``table``."""
    entries = "\n".join(f'    "{npa}": "{table[npa]}",' for npa in sorted(table))
    return MODULE.format(version=phonenumbers.__version__, entries=entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write here instead of to stdout")
    args = parser.parse_args(argv)
    table, problems = npa_regions()
    for problem in problems:
        print(problem, file=sys.stderr)
    source = render(table)
    if args.output is None:
        sys.stdout.write(source)
    else:
        args.output.write_text(source)
    print(f"{len(table)} NPAs, phonenumbers {phonenumbers.__version__}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
