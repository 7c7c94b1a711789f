"""The domain service: every change goes through one gate that checks invariants, writes
all-or-nothing, and refuses to interleave with a concurrent change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from callerid import (
    AccountConfig,
    Department,
    DepartmentsMode,
    NumberStatus,
    Permission,
    PhoneNumber,
    User,
)
from engine import changes
from engine.decide import Engine
from engine.errors import Conflict, NotFound, PreconditionFailed
from engine.service import AccountService
from engine.store import EmbeddedStore, Store
from engine.store.redis_store import RedisStore
from engine.wire import DialRequest

from ..redis_support_fixtures import store_url

P = Permission


@pytest.fixture(params=["embedded", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The service's rules hold the same on either store (this overrides conftest's
    embedded-only ``store`` for this module)."""
    if request.param == "embedded":
        opened: Store = EmbeddedStore(tmp_path / "data", exclusive=True)
    else:
        opened = RedisStore(store_url(request, "redis"))
    await opened.open()
    yield opened
    await opened.close()


def user(config: AccountConfig, user_id: str) -> User:
    return next(u for u in config.users if u.id == user_id)


def legacy_with(demo: AccountConfig, extra: User) -> AccountConfig:
    """The demo account in legacy mode, with ``extra`` added (typically outside departments)."""
    return msgspec.structs.replace(
        demo, departments_mode=DepartmentsMode.LEGACY, users=(*demo.users, extra)
    )


async def test_new_account_has_owner_outside_departments_and_full_default_department(
    service: AccountService,
) -> None:
    config = changes.create_account(
        account_id="acme", name="Acme", owner=User(id="owner", email="o@acme.example")
    )
    await service.put(config)
    stored, version = await service.get("acme")
    assert version == 1 and stored.owner == "owner" and user(stored, "owner").department is None
    default = next(d for d in stored.departments if d.id == stored.default_department)
    assert set(default.permissions) == set(Permission)


async def test_new_user_lands_in_default_department_in_enforced_mode(
    service: AccountService,
) -> None:
    newbie = User(id="newbie", email="n@demo.example")
    config, _ = await service.apply("demo", changes.add_user(newbie))
    assert user(config, "newbie").department == config.default_department


async def test_owner_cannot_be_put_in_a_department(service: AccountService) -> None:
    with pytest.raises(Conflict, match="owner cannot be put in a department"):
        await service.apply("demo", changes.move_user("olivia", "sales"))


async def test_owner_cannot_be_deleted(service: AccountService) -> None:
    with pytest.raises(Conflict, match="owner cannot be deleted"):
        await service.apply("demo", changes.delete_user("olivia"))


async def test_default_department_undeletable_until_another_is_default(
    service: AccountService,
) -> None:
    with pytest.raises(Conflict, match="make another department the default"):
        await service.apply("demo", changes.delete_department("sales"))
    await service.apply("demo", changes.make_default_department("support"))
    config, _ = await service.apply("demo", changes.delete_department("sales"))
    assert "sales" not in {d.id for d in config.departments}


async def test_deleting_department_moves_members_to_default_and_frees_its_numbers(
    service: AccountService,
) -> None:
    config, _ = await service.apply("demo", changes.delete_department("support"))
    assert user(config, "dev").department == "sales"
    assert all(n.department != "support" for n in config.numbers)


async def test_new_department_copies_template_permissions(service: AccountService) -> None:
    config, _ = await service.apply(
        "demo",
        changes.create_department(Department(id="emea", name="EMEA"), template="sales"),
    )
    emea = next(d for d in config.departments if d.id == "emea")
    sales = next(d for d in config.departments if d.id == "sales")
    assert emea.permissions == sales.permissions


async def test_legacy_user_moved_into_department_keeps_missing_permissions_as_extras(
    service: AccountService, demo: AccountConfig,
) -> None:
    legacy = legacy_with(demo, User(id="old", email="old@demo.example",
                                 permissions=(P.USERS_MANAGE, P.CONTACTS_MANAGE)))
    await service.put(legacy)
    config, _ = await service.apply("demo", changes.move_user("old", "support"))
    old = user(config, "old")
    assert old.department == "support"
    assert old.extra_permissions_enabled and set(old.extra_permissions) == {P.USERS_MANAGE}


async def test_legacy_user_keeps_own_permissions_until_moved(
    service: AccountService, engine: Engine, demo: AccountConfig,
) -> None:
    legacy = legacy_with(demo, User(id="old", email="old@demo.example",
                                    permissions=(P.DIAL_SPECIAL_NUMBERS,)))
    await service.put(legacy)
    view = engine.snapshot("demo").users["old"]
    assert view.permissions == {P.DIAL_SPECIAL_NUMBERS}


async def test_number_moves_between_pools_never_in_two(service: AccountService) -> None:
    config, _ = await service.apply("demo", changes.assign_number("+12125550101", "support"))
    pools = [n.department for n in config.numbers if n.number == "+12125550101"]
    assert pools == ["support"]


async def test_released_number_is_never_presented(service: AccountService, engine: Engine) -> None:
    await service.apply("demo", changes.release_number("+12125550101"))
    decision = await engine.dial("demo", DialRequest(user="ana", to="(212) 555-0187"))
    # Sales has no default of its own, so the account's default applies.
    assert (decision.rule, decision.caller_id) == ("account_default", "+12125550100")


async def test_copy_geo_replaces_whole_configuration(service: AccountService) -> None:
    config, _ = await service.apply("demo", changes.copy_geo("gina", "ana"))
    assert user(config, "ana").geo == user(config, "gina").geo


async def test_reference_to_unknown_number_rejected_and_nothing_written(
    service: AccountService,
) -> None:
    before = await service.get("demo")
    bad = msgspec.structs.replace(user(before[0], "ana"), default_caller_id="+12125559999")
    with pytest.raises(Conflict, match=r"users\[\d\] \(ana\).default_caller_id"):
        await service.apply("demo", changes.update_user(bad))
    assert await service.get("demo") == before


async def test_unknown_user_department_or_number_is_not_found(service: AccountService) -> None:
    for change in (
        changes.delete_user("ghost"),
        changes.move_user("ana", "nope"),
        changes.release_number("+12125559999"),
    ):
        with pytest.raises(NotFound):
            await service.apply("demo", change)


async def test_stale_version_refused(service: AccountService) -> None:
    _, version = await service.get("demo")
    await service.apply("demo", changes.add_number(PhoneNumber(number="+12125550155")))
    with pytest.raises(PreconditionFailed):
        await service.apply(
            "demo", changes.add_number(PhoneNumber(number="+12125550156")), expected_version=version
        )


async def test_concurrent_changes_do_not_lose_updates(service: AccountService) -> None:
    numbers = [f"+1212555{n:04d}" for n in range(160, 180)]

    async def add(number: str) -> bool:
        try:
            await service.apply("demo", changes.add_number(PhoneNumber(number=number)))
            return True
        except PreconditionFailed:
            return False

    results = await asyncio.gather(*(add(n) for n in numbers))
    config, _ = await service.get("demo")
    stored = {n.number for n in config.numbers}
    assert {n for n, ok in zip(numbers, results, strict=True) if ok} <= stored
    assert all(n in stored for n, ok in zip(numbers, results, strict=True) if ok)
    assert not any(n in stored for n, ok in zip(numbers, results, strict=True) if not ok)


async def test_change_applies_to_next_decision(service: AccountService, engine: Engine) -> None:
    ana = user((await service.get("demo"))[0], "ana")
    changed = msgspec.structs.replace(ana, default_caller_id="+13125550120")
    await service.apply("demo", changes.update_user(changed))
    decision = await engine.dial("demo", DialRequest(user="ana", to="(212) 555-0187"))
    assert decision.caller_id == "+13125550120"


async def test_release_keeps_number_on_record(service: AccountService) -> None:
    config, _ = await service.apply("demo", changes.release_number("+12125550101"))
    number = next(n for n in config.numbers if n.number == "+12125550101")
    assert number.status == NumberStatus.RELEASED


async def test_legacy_move_does_not_switch_on_extras_that_were_off(
    service: AccountService, demo: AccountConfig,
) -> None:
    legacy = legacy_with(demo, User(id="old", email="old@demo.example",
                                    permissions=(P.USERS_MANAGE,), extra_permissions_enabled=False,
                                    extra_permissions=(P.BILLING_TOPUP,)))
    await service.put(legacy)
    config, _ = await service.apply("demo", changes.move_user("old", "support"))
    old = user(config, "old")
    assert old.extra_permissions_enabled and set(old.extra_permissions) == {P.USERS_MANAGE}


async def test_update_that_moves_a_legacy_user_applies_the_migration(
    service: AccountService, engine: Engine, demo: AccountConfig,
) -> None:
    legacy = legacy_with(demo, User(id="old", email="old@demo.example",
                                    permissions=(P.USERS_MANAGE,)))
    await service.put(legacy)
    moved = msgspec.structs.replace(user(legacy, "old"), department="support", name="Old Timer")
    config, _ = await service.apply("demo", changes.update_user(moved))
    old = user(config, "old")
    assert (old.name, old.department, old.permissions) == ("Old Timer", "support", ())
    assert engine.snapshot("demo").users["old"].permissions == {P.USERS_MANAGE, P.CONTACTS_MANAGE}
