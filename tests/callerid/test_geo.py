"""Geo caller ID: longest prefix, several area codes per number, region before calling code,
national input read in the account's region, the default geo ID."""

from __future__ import annotations

import pytest

from callerid import AreaCodeRule, CountryRule, GeoConfig, Rule, compile_geo
from callerid.geo import match
from engine.numbers import normalise

NYC, MANHATTAN_EXCHANGE, LA, TORONTO, US_ANY, LONDON, DEFAULT = (
    "+12125550101",
    "+12125550102",
    "+13105550110",
    "+14165550150",
    "+15125550130",
    "+442079460170",
    "+16175550199",
)

TABLE = compile_geo(
    GeoConfig(
        default=DEFAULT,
        area_codes=(
            AreaCodeRule(number=NYC, area_codes=("212", "646", "917")),
            AreaCodeRule(number=MANHATTAN_EXCHANGE, area_codes=("212555",)),
            AreaCodeRule(number=LA, area_codes=("310", "213", "323")),
            AreaCodeRule(number=LONDON, area_codes=("20",), country_code=44),
        ),
        countries=(
            CountryRule(number=TORONTO, region="CA"),
            CountryRule(number=US_ANY, calling_code=1),
        ),
    )
)


def first(dialled: str, region: str = "US") -> tuple[Rule, str]:
    dest = normalise(dialled, region)
    assert dest is not None
    best = match(TABLE, dest)[0]
    return best.rule, best.number


def test_longest_area_code_prefix_wins() -> None:
    assert first("+1 212 555 0123") == (Rule.GEO_AREA_CODE, MANHATTAN_EXCHANGE)
    assert first("+1 212 777 0123") == (Rule.GEO_AREA_CODE, NYC)


@pytest.mark.parametrize("dialled", ["+1 310 555 0123", "+1 213 555 0123", "+1 323 555 0123"])
def test_several_area_codes_map_to_one_number(dialled: str) -> None:
    assert first(dialled) == (Rule.GEO_AREA_CODE, LA)


def test_area_codes_are_per_country_code() -> None:
    assert first("+44 20 7946 0999") == (Rule.GEO_AREA_CODE, LONDON)


def test_region_rule_beats_calling_code_rule_for_canada() -> None:
    assert first("+1 604 555 0123") == (Rule.GEO_COUNTRY, TORONTO)


def test_us_number_falls_to_calling_code_rule() -> None:
    assert first("+1 972 555 0123") == (Rule.GEO_COUNTRY, US_ANY)


def test_national_format_is_read_in_the_account_region() -> None:
    assert first("(310) 555-0123", "US") == (Rule.GEO_AREA_CODE, LA)
    assert first("020 7946 0999", "GB") == (Rule.GEO_AREA_CODE, LONDON)


def test_default_geo_id_when_nothing_matches() -> None:
    assert first("+33 1 42 68 53 00") == (Rule.GEO_DEFAULT, DEFAULT)


def test_candidates_are_ordered_area_code_region_calling_code_default() -> None:
    dest = normalise("+1 416 555 0123", "US")
    assert dest is not None
    table = compile_geo(
        GeoConfig(
            default=DEFAULT,
            area_codes=(AreaCodeRule(number=NYC, area_codes=("416",)),),
            countries=(
                CountryRule(number=TORONTO, region="CA"),
                CountryRule(number=US_ANY, calling_code=1),
            ),
        )
    )
    assert [(m.rule, m.number) for m in match(table, dest)] == [
        (Rule.GEO_AREA_CODE, NYC),
        (Rule.GEO_COUNTRY, TORONTO),
        (Rule.GEO_COUNTRY, US_ANY),
        (Rule.GEO_DEFAULT, DEFAULT),
    ]


def test_country_rule_names_exactly_one_of_region_or_calling_code() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CountryRule(number=TORONTO, region="CA", calling_code=1)
