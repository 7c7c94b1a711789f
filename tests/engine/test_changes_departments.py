"""Department changes: a new one from its own permissions or another's, settings and
permissions replaced, exactly one default, deletion moving users to it."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, Department, Permission
from engine import changes
from engine.errors import Conflict, NotFound

P = Permission
R = msgspec.structs.replace


def department(config: AccountConfig, department_id: str) -> Department:
    return next(d for d in config.departments if d.id == department_id)


def test_new_department_holds_each_permission_once_in_order(demo: AccountConfig) -> None:
    emea = Department(id="emea", name="EMEA",
                      permissions=(P.USAGE_VIEW, P.BILLING_TOPUP, P.USAGE_VIEW))
    new = changes.create_department(emea)(demo)
    assert department(new, "emea").permissions == (P.BILLING_TOPUP, P.USAGE_VIEW)


def test_new_department_copies_the_template_permissions(demo: AccountConfig) -> None:
    new = changes.create_department(Department(id="emea", name="EMEA"), template="sales")(demo)
    assert department(new, "emea").permissions == department(demo, "sales").permissions


def test_unknown_template_is_not_found_naming_template(demo: AccountConfig) -> None:
    with pytest.raises(NotFound, match="no department 'nope' to copy") as refused:
        changes.create_department(Department(id="emea", name="EMEA"), template="nope")(demo)
    assert refused.value.field == "template"


def test_department_id_taken_is_refused(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="department 'sales' already exists") as refused:
        changes.create_department(Department(id="sales", name="Again"))(demo)
    assert refused.value.field == "id"


def test_update_replaces_only_the_fields_given(demo: AccountConfig) -> None:
    new = changes.update_department("support", {"description": "Helps"})(demo)
    assert department(new, "support") == R(department(demo, "support"), description="Helps")


def test_set_permissions_replaces_them_once_each_in_order(demo: AccountConfig) -> None:
    new = changes.set_department_permissions("support", [P.USAGE_VIEW, P.CONTACTS_MANAGE,
                                                         P.USAGE_VIEW])(demo)
    assert department(new, "support").permissions == (P.CONTACTS_MANAGE, P.USAGE_VIEW)


def test_made_default_department_is_the_default(demo: AccountConfig) -> None:
    assert changes.make_default_department("support")(demo).default_department == "support"


@pytest.mark.parametrize("change", [
    changes.update_department("nope", {"name": "N"}),
    changes.set_department_permissions("nope", ()),
    changes.make_default_department("nope"),
    changes.delete_department("nope"),
], ids=["update", "permissions", "default", "delete"])
def test_unknown_department_is_not_found(demo: AccountConfig, change: changes.Change) -> None:
    with pytest.raises(NotFound, match="no department 'nope' in account 'demo'") as refused:
        change(demo)
    assert refused.value.field == "department"


def test_default_department_cannot_be_deleted(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="'sales' is the default department") as refused:
        changes.delete_department("sales")(demo)
    assert refused.value.field == "department"


def test_deleted_department_moves_its_users_to_the_default_and_frees_its_numbers(
    demo: AccountConfig,
) -> None:
    new = changes.delete_department("support")(demo)
    assert all(d.id != "support" for d in new.departments)
    assert next(u for u in new.users if u.id == "dev").department == "sales"
    freed = {n.number for n in demo.numbers if n.department == "support"}
    assert {n.number for n in new.numbers if n.department is None} >= freed
