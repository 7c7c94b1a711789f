"""Number changes: a number is in one pool at most, the pool is a department of the account,
a released number leaves its pool."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, NumberStatus, PhoneNumber
from engine import changes
from engine.errors import Conflict, NotFound

R = msgspec.structs.replace


def number(config: AccountConfig, e164: str) -> PhoneNumber:
    return next(n for n in config.numbers if n.number == e164)


def test_added_number_is_in_the_pool_it_names(demo: AccountConfig) -> None:
    new = changes.add_number(PhoneNumber(number="+12125550155", department="support"))(demo)
    assert number(new, "+12125550155").department == "support"


def test_number_added_twice_is_refused(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match=r"number \+12125550101 already exists") as refused:
        changes.add_number(PhoneNumber(number="+12125550101"))(demo)
    assert refused.value.field == "number"


@pytest.mark.parametrize("change", [
    changes.add_number(PhoneNumber(number="+12125550155", department="nope")),
    changes.assign_number("+12125550101", "nope"),
], ids=["add", "assign"])
def test_pool_of_an_unknown_department_is_refused_naming_department(
    demo: AccountConfig, change: changes.Change
) -> None:
    with pytest.raises(Conflict, match="no department 'nope' in this account") as refused:
        change(demo)
    assert refused.value.field == "department"


def test_assigned_number_moves_between_pools_never_in_two(demo: AccountConfig) -> None:
    new = changes.assign_number("+12125550101", "support")(demo)
    assert [n.department for n in new.numbers if n.number == "+12125550101"] == ["support"]


def test_number_assigned_to_none_leaves_every_pool(demo: AccountConfig) -> None:
    new = changes.assign_number("+12125550101", None)(demo)
    assert number(new, "+12125550101").department is None


def test_update_replaces_only_the_fields_given(demo: AccountConfig) -> None:
    new = changes.update_number("+12125550101", {"name": "NY 1", "sms": True})(demo)
    assert number(new, "+12125550101") == R(number(demo, "+12125550101"), name="NY 1", sms=True)


def test_update_leaves_the_pool_to_assign_number() -> None:
    with pytest.raises(ValueError, match="assign_number"):
        changes.update_number("+12125550101", {"department": None})


def test_released_number_stays_on_record_in_no_pool(demo: AccountConfig) -> None:
    new = changes.release_number("+12125550101")(demo)
    released = number(new, "+12125550101")
    assert (released.status, released.department) == (NumberStatus.RELEASED, None)


@pytest.mark.parametrize("change", [
    changes.update_number("+12125559999", {"name": "X"}),
    changes.assign_number("+12125559999", "sales"),
    changes.release_number("+12125559999"),
], ids=["update", "assign", "release"])
def test_unknown_number_is_not_found(demo: AccountConfig, change: changes.Change) -> None:
    with pytest.raises(NotFound, match=r"no number \+12125559999 in account 'demo'") as refused:
        change(demo)
    assert refused.value.field == "number"
