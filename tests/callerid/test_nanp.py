"""The shipped NANP area-code table: known places, the installed phonenumbers' answer, real
ISO codes only, and nothing but the standard library behind it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from callerid.nanp import NPA_REGIONS, country_of, nanp_region
from tools.nanp_regions import npa_regions

ROOT = Path(__file__).resolve().parents[2]

US_SUBDIVISIONS = frozenset({
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY",
})
"""The 50 states and the District of Columbia."""

CA_SUBDIVISIONS = frozenset({
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
})
"""Canada's 10 provinces and 3 territories."""

OTHER_MEMBERS = frozenset({
    "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN", "KY", "LC", "MP",
    "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI",
})
"""The NANP's members besides the US and Canada: Caribbean countries and US territories
with their own ISO code."""

KNOWN_REGIONS = (
    {f"US-{state}" for state in US_SUBDIVISIONS}
    | {f"CA-{province}" for province in CA_SUBDIVISIONS}
    | OTHER_MEMBERS
)


@pytest.mark.parametrize(
    ("npa", "region"),
    [
        ("212", "US-NY"),
        ("310", "US-CA"),
        ("415", "US-CA"),
        ("202", "US-DC"),
        ("305", "US-FL"),
        ("512", "US-TX"),
        ("416", "CA-ON"),
        ("604", "CA-BC"),
        ("514", "CA-QC"),
        ("876", "JM"),
        ("658", "JM"),
        ("787", "PR"),
        ("939", "PR"),
        ("671", "GU"),
        ("340", "VI"),
        ("242", "BS"),
    ],
    ids=lambda value: value,
)
def test_area_code_lies_in_its_state_province_or_country(npa: str, region: str) -> None:
    assert NPA_REGIONS[npa] == region
    assert nanp_region(f"{npa}5550123") == region


@pytest.mark.parametrize("npa", ["800", "888", "877", "833", "900", "500", "600", "700", "456"])
def test_non_geographic_area_codes_are_absent(npa: str) -> None:
    assert npa not in NPA_REGIONS
    assert nanp_region(f"{npa}5550123") is None


@pytest.mark.parametrize("national", ["212555012", "21255501234", "212", ""])
def test_only_a_ten_digit_national_number_has_a_region(national: str) -> None:
    assert nanp_region(national) is None


def test_country_of_a_subdivision_is_its_prefix_and_of_a_country_itself() -> None:
    assert country_of("US-NY") == "US"
    assert country_of("CA-ON") == "CA"
    assert country_of("JM") == "JM"


def test_table_matches_what_the_generator_makes_from_installed_phonenumbers() -> None:
    generated, _ = npa_regions()
    changed = {
        npa: (NPA_REGIONS.get(npa), generated.get(npa))
        for npa in sorted(NPA_REGIONS.keys() | generated.keys())
        if NPA_REGIONS.get(npa) != generated.get(npa)
    }
    assert not changed, (
        f"callerid/nanp.py is stale, (shipped, generated) by NPA: {changed}; "
        "run: python tools/nanp_regions.py --output callerid/nanp.py"
    )


def test_every_entry_is_a_real_iso_code() -> None:
    wrong = {
        npa: region
        for npa, region in NPA_REGIONS.items()
        if region not in KNOWN_REGIONS or len(npa) != 3 or not npa.isdigit()
    }
    assert not wrong


def test_every_state_and_every_other_member_has_an_area_code() -> None:
    # Canada is left out on purpose: Prince Edward Island shares its NPAs with Nova Scotia
    # and the three territories share 867, so only the bigger place of each shows up.
    regions = set(NPA_REGIONS.values())
    assert {f"US-{state}" for state in US_SUBDIVISIONS} <= regions
    assert regions >= OTHER_MEMBERS


def test_table_module_imports_only_the_standard_library() -> None:
    source = (ROOT / "callerid" / "nanp.py").read_text()
    outside = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        top = {name.split(".")[0] for name in names}
        outside += sorted(top - sys.stdlib_module_names - {"callerid"})
    assert not outside


def test_looking_up_an_area_code_loads_no_phonenumbers() -> None:
    code = ("import sys; from callerid.nanp import nanp_region; nanp_region('2125550123'); "
            "print(sorted(m for m in sys.modules if m.startswith('phonenumbers')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
