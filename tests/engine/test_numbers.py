"""Normalisation with phonenumbers: E.164 out, national formats in the account region,
emergency short codes recognised, anything impossible refused."""

from __future__ import annotations

import pytest

from engine.numbers import normalise


@pytest.mark.parametrize(
    ("dialled", "region", "e164", "where"),
    [
        ("(212) 555-0187", "US", "+12125550187", "US"),
        ("212.555.0187", "US", "+12125550187", "US"),
        ("1 212 555 0187", "US", "+12125550187", "US"),
        ("+1 416 555 0123", "US", "+14165550123", "CA"),
        ("020 7946 0999", "GB", "+442079460999", "GB"),
        ("+44 20 7946 0999", "US", "+442079460999", "GB"),
        ("01 42 68 53 00", "FR", "+33142685300", "FR"),
    ],
    ids=["us-national", "us-dots", "us-trunk", "canada-intl", "uk-national", "uk-intl",
         "fr-national"],
)
def test_normalises_to_e164_and_region(dialled: str, region: str, e164: str, where: str) -> None:
    dest = normalise(dialled, region)
    assert dest is not None and (dest.e164, dest.region) == (e164, where)
    assert not dest.emergency


@pytest.mark.parametrize(
    ("dialled", "region"), [("911", "US"), ("112", "FR"), ("999", "GB"), ("000", "AU")]
)
def test_emergency_numbers_recognised_in_account_region(dialled: str, region: str) -> None:
    dest = normalise(dialled, region)
    assert dest is not None and dest.emergency and dest.kind == "emergency"


def test_911_is_not_emergency_in_the_uk() -> None:
    dest = normalise("911", "GB")
    assert dest is None or not dest.emergency


@pytest.mark.parametrize(
    "dialled", ["123", "+1 555", "+1 212 555 01870000", "+999 1234567", "0000000000"]
)
def test_impossible_numbers_give_none(dialled: str) -> None:
    assert normalise(dialled, "US") is None


@pytest.mark.parametrize(
    ("dialled", "kind"),
    [("+1 900 555 0123", "premium_rate"), ("+44 871 234 5678", "premium_rate"),
     ("+33 810 12 34 56", "shared_cost"), ("+1 800 555 0190", "toll_free")],
)
def test_number_type_is_classified(dialled: str, kind: str) -> None:
    dest = normalise(dialled, "US")
    assert dest is not None and dest.kind == kind


def _reference(dialled: str, region: str) -> tuple[str, str, str] | None:
    """What phonenumbers' public API says of ``dialled``: E.164, region and type, or None."""
    import phonenumbers

    try:
        number = phonenumbers.parse(dialled, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phonenumbers.number_type(number)
    name = next(
        n for n, v in vars(phonenumbers.PhoneNumberType).items() if v == kind and n.isupper()
    )
    return (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        str(phonenumbers.region_code_for_number(number)),
        name.lower(),
    )


def _corpus() -> list[tuple[str, str]]:
    """Example numbers of every region and type, as dialled internationally (bare and with
    separators) and nationally, plus neighbours of each (one digit changed, cut short, one
    digit too many), which are often invalid."""
    import random

    import phonenumbers

    rng = random.Random(7)
    out: list[tuple[str, str]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(11):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            digits = list(e164[1:])
            # Typing is what normalise does its own way: numbers near each example, one
            # to three digits changed, often of another type or none.
            for changes in (2, 3, 3):
                near = list(digits)
                for _ in range(changes):
                    near[rng.randrange(len(near))] = str(rng.randrange(10))
                out.append(("+" + "".join(near), "US"))
            position = rng.randrange(len(digits))
            digits[position] = str(rng.randrange(10))
            international = phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
            out += [
                (e164, "US"),
                (national, region),
                (international, "FR"),
                ("+" + "".join(digits), "GB"),
                ("+" + "".join(digits[: rng.randrange(1, len(digits))]), "US"),
                ("+" + "".join(digits) + str(rng.randrange(10)), "US"),
            ]
    return out


def test_normalise_agrees_with_phonenumbers_public_api() -> None:
    """normalise parses ``+`` numbers and types every number its own way (from patterns it
    compiles once per region and length); it must say exactly what the public API says, for
    every region and number type."""
    disagreements = []
    for dialled, region in _corpus():
        dest = normalise(dialled, region)
        ours = (
            None if dest is None or dest.emergency
            else (dest.e164, str(dest.region), str(dest.kind))
        )
        if ours != _reference(dialled, region):
            disagreements.append((dialled, region, ours, _reference(dialled, region)))
    assert not disagreements, disagreements[:10]


def test_example_numbers_are_valid_and_normalise_to_themselves() -> None:
    """The load generator starts from these: a fixed-line and a mobile number of the region,
    each valid and unchanged by normalise; a region phonenumbers does not know gives none."""
    from engine.numbers import example_numbers, is_valid_e164

    for region in ("FR", "GB", "DE"):
        examples = example_numbers(region)
        kinds = []
        for e164 in examples:
            dest = normalise(e164, region)
            assert is_valid_e164(e164) and dest is not None and dest.e164 == e164
            assert dest.region == region
            kinds.append(str(dest.kind))
        assert kinds == ["fixed_line", "mobile"], (region, examples)
    assert example_numbers("ZZ") == []


@pytest.mark.parametrize(("raw", "area", "subdivision"), [
    ("(212) 555-0187", "+1212", "US-NY"),
    ("+1 416 555 0187", "+1416", "CA-ON"),
    ("+1 876 555 0187", "+1876", None),      # Jamaica: a NANP country, no subdivision
    ("+1 800 555 0187", None, None),         # toll-free: nowhere
    ("+44 20 7946 0187", "+4420", None),     # London: a two-digit area code
    ("+44 113 496 0187", "+44113", None),    # Leeds
    ("+44 7400 123456", None, None),         # a UK mobile has no area
    ("+33 1 42 68 53 00", "+331", None),     # Paris
])
def test_a_destination_knows_where_it_is(raw: str, area: str | None,
                                         subdivision: str | None) -> None:
    dest = normalise(raw, "US")
    assert dest is not None
    assert (dest.area, dest.subdivision) == (area, subdivision)
