"""Account changes: a new account's shape, settings replaced, the SIP domain held while
credentials exist and by one account only, the departments mode one way."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from callerid import AccountConfig, DepartmentsMode, Permission, SipCredential, User
from engine import changes
from engine.errors import Conflict

P = Permission
R = msgspec.structs.replace


def nobody(domain: str) -> Sequence[str]:
    return []


def user(config: AccountConfig, user_id: str) -> User:
    return next(u for u in config.users if u.id == user_id)


def test_new_account_has_its_owner_outside_departments_and_a_full_default_department() -> None:
    config = changes.create_account(account_id="acme", name="Acme",
                                    owner=User(id="o", email="o@acme.example", department="x"))
    assert (config.owner, config.users[0].department, config.default_department) == (
        "o", None, "default")
    assert set(config.departments[0].permissions) == set(Permission)


def test_settings_given_are_replaced_and_the_rest_kept(demo: AccountConfig) -> None:
    new = changes.update_account({"name": "Demo Inc", "pro": True}, domain_claimed_by=nobody)(demo)
    assert new == R(demo, name="Demo Inc", pro=True)


def test_what_is_not_a_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="users"):
        changes.update_account({"users": ()}, domain_claimed_by=nobody)


def test_sip_domain_is_set_when_no_account_holds_it(demo: AccountConfig) -> None:
    new = changes.update_account({"sip_domain": "demo.sip.example"},
                                 domain_claimed_by=lambda domain: ["demo"])(demo)
    assert new.sip_domain == "demo.sip.example"


def test_sip_domain_of_another_account_is_refused(demo: AccountConfig) -> None:
    change = changes.update_account({"sip_domain": "acme.sip.example"},
                                    domain_claimed_by=lambda domain: ["acme"])
    with pytest.raises(
        Conflict, match=r"'acme\.sip\.example' belongs to another account"
    ) as refused:
        change(demo)
    assert refused.value.field == "sip_domain"


def test_sip_domain_holds_while_users_have_credentials(demo: AccountConfig) -> None:
    login = SipCredential(username="ana", ha1_md5="0" * 32, ha1_sha256="0" * 64)
    config = R(demo, sip_domain="demo.sip.example",
               users=tuple(R(u, sip=login) if u.id == "ana" else u for u in demo.users))
    change = changes.update_account({"sip_domain": None}, domain_claimed_by=nobody)
    with pytest.raises(Conflict, match=r"1 users have SIP credentials .* e\.g\. 'ana'") as refused:
        change(config)
    assert refused.value.field == "sip_domain"


def test_switch_to_enforced_moves_users_outside_departments_into_the_default(
    demo: AccountConfig,
) -> None:
    old = User(id="old", email="old@demo.example", permissions=(P.USERS_MANAGE,))
    config = R(demo, departments_mode=DepartmentsMode.LEGACY, users=(*demo.users, old))
    new = changes.update_account({"departments_mode": DepartmentsMode.ENFORCED},
                                 domain_claimed_by=nobody)(config)
    moved = user(new, "old")
    assert new.departments_mode == DepartmentsMode.ENFORCED
    assert (moved.department, moved.extra_permissions) == ("sales", (P.USERS_MANAGE,))
    assert user(new, "olivia").department is None


def test_enforced_mode_never_goes_back_to_legacy(demo: AccountConfig) -> None:
    change = changes.update_account({"departments_mode": DepartmentsMode.LEGACY},
                                    domain_claimed_by=nobody)
    with pytest.raises(Conflict, match="legacy to enforced departments mode, never back") as no:
        change(demo)
    assert no.value.field == "departments_mode"


# -- replace_account: `callgate import` over an existing account -------------------------------

LOGIN = SipCredential(username="ana", ha1_md5="0" * 32, ha1_sha256="0" * 64)


def with_login(config: AccountConfig, domain: str) -> AccountConfig:
    return R(config, sip_domain=domain,
             users=tuple(R(u, sip=LOGIN) if u.id == "ana" else u for u in config.users))


def test_a_replacement_is_taken_as_it_is(demo: AccountConfig) -> None:
    new = R(demo, name="Demo Inc", users=tuple(u for u in demo.users if u.id != "ana"))
    assert changes.replace_account(new)(demo) is new


def test_a_replacement_keeping_sip_credentials_cannot_change_the_domain(
    demo: AccountConfig,
) -> None:
    current = with_login(demo, "demo.sip.example")
    moved = R(current, sip_domain="new.sip.example")  # ana's digest is over the old domain
    with pytest.raises(Conflict, match=r"1 users have SIP credentials in 'demo\.sip\.example'"
                       r".* e\.g\. 'ana'") as refused:
        changes.replace_account(moved)(current)
    assert refused.value.field == "sip_domain"
    # Without credentials in the file, the domain may change (new ones are made over it).
    bare = R(moved, users=tuple(R(u, sip=None) for u in moved.users))
    assert changes.replace_account(bare)(current) is bare


def test_a_replacement_may_not_take_a_domain_another_account_holds(demo: AccountConfig) -> None:
    new = R(demo, sip_domain="acme.sip.example")
    with pytest.raises(Conflict, match="belongs to another account") as refused:
        changes.replace_account(new, domain_claimed_by=lambda domain: ["acme"])(demo)
    assert refused.value.field == "sip_domain"


def test_a_replacement_states_the_departments_mode_as_it_is(demo: AccountConfig) -> None:
    legacy = R(demo, departments_mode=DepartmentsMode.LEGACY)
    assert changes.replace_account(legacy)(demo) is legacy


def test_a_replacement_is_for_the_same_account(demo: AccountConfig) -> None:
    with pytest.raises(ValueError, match="cannot replace"):
        changes.replace_account(R(demo, id="other"))(demo)
