"""SIP login changes: only in an account with a SIP domain, only digests kept, a chosen
password checked and a generated one not, switching and removing a login that exists."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, SipCredential, User
from engine import changes
from engine.errors import Conflict, InvalidField, NotFound
from sip.credentials import ha1

R = msgspec.structs.replace
DOMAIN = "demo.sip.example"
STRONG = "Tq7!vR2#pX9$kL4m"


@pytest.fixture
def config(demo: AccountConfig) -> AccountConfig:
    """The demo account with a SIP domain, and ana holding a login."""
    with_domain = R(demo, sip_domain=DOMAIN)
    return changes.set_sip_login("ana", "ana", STRONG, enabled=True, now_ms=1_000)(with_domain)


def user(config: AccountConfig, user_id: str) -> User:
    return next(u for u in config.users if u.id == user_id)


def login(config: AccountConfig, user_id: str) -> SipCredential | None:
    return user(config, user_id).sip


def test_login_keeps_the_password_digests_and_when_it_was_set(config: AccountConfig) -> None:
    new = changes.set_sip_login("sam", "desk7", STRONG, enabled=False, now_ms=5_000)(config)
    assert login(new, "sam") == SipCredential(
        username="desk7", ha1_md5=ha1("MD5", "desk7", DOMAIN, STRONG),
        ha1_sha256=ha1("SHA-256", "desk7", DOMAIN, STRONG), enabled=False,
        password_set_ms=5_000)


def test_account_without_sip_domain_gives_no_login(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="the account has no sip_domain") as refused:
        changes.set_sip_login("sam", "sam", STRONG, enabled=True, now_ms=0)(demo)
    assert refused.value.field == "sip_domain"


def test_weak_chosen_password_is_refused(config: AccountConfig) -> None:
    with pytest.raises(InvalidField, match="too weak") as refused:
        changes.set_sip_login("sam", "sam", "sam-sam-sam-1", enabled=True, now_ms=0)(config)
    assert refused.value.field == "password"


def test_generated_password_is_not_checked_again(config: AccountConfig) -> None:
    new = changes.set_sip_login("sam", "sam", "sam-sam-sam-1", enabled=True, now_ms=0,
                                generated=True)(config)
    assert login(new, "sam") is not None


def test_new_password_keeps_the_username_and_the_switch(config: AccountConfig) -> None:
    off = changes.set_sip_enabled("ana", False)(config)
    new = changes.set_sip_password("ana", "Zz9!" + STRONG, now_ms=7_000)(off)
    rotated = login(new, "ana")
    assert rotated is not None
    assert (rotated.username, rotated.enabled, rotated.password_set_ms) == ("ana", False, 7_000)
    assert rotated.ha1_md5 == ha1("MD5", "ana", DOMAIN, "Zz9!" + STRONG)


def test_switched_off_login_keeps_its_digests(config: AccountConfig) -> None:
    before = login(config, "ana")
    assert before is not None
    assert login(changes.set_sip_enabled("ana", False)(config), "ana") == R(before,
                                                                            enabled=False)


def test_removed_login_is_gone_and_the_rest_of_the_user_stays(config: AccountConfig) -> None:
    ana = user(config, "ana")
    assert user(changes.remove_sip_login("ana")(config), "ana") == R(ana, sip=None)


@pytest.mark.parametrize("change", [
    changes.set_sip_password("sam", STRONG, now_ms=0),
    changes.set_sip_enabled("sam", True),
    changes.remove_sip_login("sam"),
], ids=["password", "switch", "remove"])
def test_user_without_a_login_is_not_found(config: AccountConfig, change: changes.Change) -> None:
    with pytest.raises(NotFound, match="user 'sam' has no SIP credentials") as refused:
        change(config)
    assert refused.value.field == "user"


def test_unknown_user_is_not_found(config: AccountConfig) -> None:
    with pytest.raises(NotFound, match="no user 'ghost'") as refused:
        changes.set_sip_login("ghost", "ghost", STRONG, enabled=True, now_ms=0)(config)
    assert refused.value.field == "user"
