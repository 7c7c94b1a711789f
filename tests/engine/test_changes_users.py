"""User changes: where a new user lands, what a move keeps, what a user holds of their own
inside and outside departments, geo rules replaced or copied, deletion."""

from __future__ import annotations

import msgspec
import pytest

from callerid import (
    AccountConfig,
    DepartmentsMode,
    GeoConfig,
    Permission,
    User,
)
from engine import changes
from engine.errors import Conflict, Forbidden, NotFound

P = Permission
R = msgspec.structs.replace


def user(config: AccountConfig, user_id: str) -> User:
    return next(u for u in config.users if u.id == user_id)


def legacy(demo: AccountConfig, *extra: User) -> AccountConfig:
    """The demo account in legacy mode, with ``extra`` users (typically outside departments)."""
    return R(demo, departments_mode=DepartmentsMode.LEGACY, users=(*demo.users, *extra))


OLD = User(id="old", email="old@demo.example", permissions=(P.USERS_MANAGE, P.CONTACTS_MANAGE))
"""A legacy user outside every department, holding permissions of their own."""


def test_new_user_lands_in_the_default_department_in_enforced_mode(
    demo: AccountConfig,
) -> None:
    new = changes.add_user(User(id="newbie", email="n@demo.example"))(demo)
    assert user(new, "newbie").department == "sales"


def test_new_user_stays_outside_departments_in_legacy_mode(demo: AccountConfig) -> None:
    new = changes.add_user(User(id="newbie", email="n@demo.example"))(legacy(demo))
    assert user(new, "newbie").department is None


def test_user_id_taken_is_refused(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="user 'ana' already exists") as refused:
        changes.add_user(User(id="ana", email="other@demo.example"))(demo)
    assert refused.value.field == "id"


def test_settings_change_replaces_only_the_fields_given(demo: AccountConfig) -> None:
    new = changes.update_user_settings("ana", {"name": "Ana B.", "max_channels": 3})(demo)
    assert user(new, "ana") == R(user(demo, "ana"), name="Ana B.", max_channels=3)


def test_update_with_another_department_moves_the_user(demo: AccountConfig) -> None:
    new = changes.update_user(R(user(demo, "ana"), department="support"))(demo)
    assert user(new, "ana").department == "support"


def test_deleted_user_leaves_their_groups(demo: AccountConfig) -> None:
    new = changes.delete_user("ana")(demo)
    assert all(u.id != "ana" for u in new.users)
    assert new.groups[0].members == ("sam",)


def test_owner_cannot_be_deleted(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="owner cannot be deleted") as refused:
        changes.delete_user("olivia")(demo)
    assert refused.value.field == "user"


@pytest.mark.parametrize("change", [
    changes.update_user_settings("ghost", {"name": "G"}),
    changes.delete_user("ghost"),
    changes.move_user("ghost", "sales"),
    changes.set_user_permissions("ghost", permissions=(), extra_permissions=(),
                                 extra_permissions_enabled=False),
    changes.edit_own_permissions("ghost", lambda held: held),
    changes.set_geo("ghost", GeoConfig()),
    changes.copy_geo("gina", "ghost"),
], ids=["settings", "delete", "move", "permissions", "preset", "geo", "copy geo"])
def test_unknown_user_is_not_found(demo: AccountConfig, change: changes.Change) -> None:
    with pytest.raises(NotFound, match="no user 'ghost' in account 'demo'") as refused:
        change(demo)
    assert refused.value.field == "user"


def test_moved_user_is_in_the_new_department(demo: AccountConfig) -> None:
    new = changes.move_user("ana", "support")(demo)
    assert user(new, "ana").department == "support"


def test_legacy_user_moved_in_keeps_what_the_department_lacks_as_extras(
    demo: AccountConfig,
) -> None:
    new = changes.move_user("old", "support")(legacy(demo, OLD))
    moved = user(new, "old")
    assert (moved.permissions, moved.extra_permissions, moved.extra_permissions_enabled) == (
        (), (P.USERS_MANAGE,), True)


def test_extras_set_aside_while_off_stay_out_of_force_after_a_move(demo: AccountConfig) -> None:
    old = R(OLD, permissions=(P.CONTACTS_MANAGE,), extra_permissions=(P.BILLING_TOPUP,))
    new = changes.move_user("old", "support")(legacy(demo, old))
    moved = user(new, "old")
    assert (moved.extra_permissions, moved.extra_permissions_enabled) == ((), False)


def test_owner_cannot_be_put_in_a_department(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="owner cannot be put in a department") as refused:
        changes.move_user("olivia", "sales")(demo)
    assert refused.value.field == "department"


def test_nobody_leaves_every_department_in_enforced_mode(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="in enforced mode every user is in a department"):
        changes.move_user("ana", None)(demo)
    new = changes.move_user("ana", None)(legacy(demo))
    assert user(new, "ana").department is None


def test_move_to_an_unknown_department_is_not_found(demo: AccountConfig) -> None:
    with pytest.raises(NotFound, match="no department 'nope'") as refused:
        changes.move_user("ana", "nope")(demo)
    assert refused.value.field == "department"


def test_permissions_are_held_once_each_in_order(demo: AccountConfig) -> None:
    new = changes.set_user_permissions(
        "ana", permissions=(), extra_permissions=[P.USAGE_VIEW, P.BILLING_TOPUP, P.USAGE_VIEW],
        extra_permissions_enabled=True,
    )(demo)
    ana = user(new, "ana")
    assert (ana.extra_permissions, ana.extra_permissions_enabled) == (
        (P.BILLING_TOPUP, P.USAGE_VIEW), True)


def test_user_in_a_department_holds_no_permissions_of_their_own(demo: AccountConfig) -> None:
    with pytest.raises(Forbidden, match="`permissions` is for legacy users") as refused:
        changes.set_user_permissions("ana", permissions=[P.USAGE_VIEW], extra_permissions=(),
                                     extra_permissions_enabled=False)(demo)
    assert refused.value.field == "permissions"


def test_legacy_user_outside_departments_sets_their_own_permissions(
    demo: AccountConfig,
) -> None:
    new = changes.set_user_permissions("old", permissions=[P.USAGE_VIEW], extra_permissions=(),
                                       extra_permissions_enabled=False)(legacy(demo, OLD))
    assert user(new, "old").permissions == (P.USAGE_VIEW,)


def add_usage(held: frozenset[Permission]) -> frozenset[Permission]:
    return held | {P.USAGE_VIEW}


def test_edit_outside_departments_in_legacy_mode_edits_own_permissions(
    demo: AccountConfig,
) -> None:
    new = changes.edit_own_permissions("old", add_usage)(legacy(demo, OLD))
    assert user(new, "old").permissions == (P.CONTACTS_MANAGE, P.USAGE_VIEW, P.USERS_MANAGE)


def test_edit_inside_a_department_edits_the_extras_in_force(demo: AccountConfig) -> None:
    new = changes.edit_own_permissions("chris", add_usage)(demo)
    chris = user(new, "chris")
    assert (chris.extra_permissions, chris.extra_permissions_enabled) == (
        (P.CALLERID_CHOOSE, P.USAGE_VIEW), True)


def test_edit_starts_from_no_extras_while_the_toggle_is_off(demo: AccountConfig) -> None:
    config = changes.set_user_permissions(
        "chris", permissions=(), extra_permissions=[P.CALLERID_CHOOSE],
        extra_permissions_enabled=False,
    )(demo)
    chris = user(changes.edit_own_permissions("chris", add_usage)(config), "chris")
    assert (chris.extra_permissions, chris.extra_permissions_enabled) == ((P.USAGE_VIEW,), True)


def test_edit_leaving_no_extras_turns_the_toggle_off(demo: AccountConfig) -> None:
    chris = user(changes.edit_own_permissions("chris", lambda _: frozenset())(demo), "chris")
    assert (chris.extra_permissions, chris.extra_permissions_enabled) == ((), False)


def test_set_geo_replaces_the_whole_configuration(demo: AccountConfig) -> None:
    geo = GeoConfig(default="+13125550120")
    new = changes.set_geo("gina", geo)(demo)
    assert user(new, "gina").geo == geo


def test_copy_geo_replaces_the_target_with_the_source(demo: AccountConfig) -> None:
    new = changes.copy_geo("gina", "ana")(demo)
    assert user(new, "ana").geo == user(demo, "gina").geo
    assert user(new, "gina") == user(demo, "gina")


def test_copy_geo_from_an_unknown_user_names_from_user(demo: AccountConfig) -> None:
    with pytest.raises(NotFound, match="no user 'ghost' to copy from") as refused:
        changes.copy_geo("ghost", "ana")(demo)
    assert refused.value.field == "from_user"
