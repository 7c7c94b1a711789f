"""sipp, a real SIP client, against callgate's redirect server: digest-authenticated INVITEs
get a 302 with the expected caller ID (sipp checks P-Asserted-Identity with a regular
expression), the channel limit answers 486, a wrong password never gets past 401, and a
trusted PBX is redirected without a challenge."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import DOMAIN, PASSWORDS, TRUSTED, SipService
from .sipp import run_sipp

DIALLED = "2125550187"


def _auth(service: SipService, user: str, password: str, expected: str) -> tuple[str, ...]:
    host, port = service.address
    return ("-s", DIALLED, "-key", "user", user, "-key", "domain", DOMAIN, "-au", user,
            "-ap", password, "-auth_uri", f"{DIALLED}@{host}:{port}", "-set", "expected",
            expected)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_authenticated_invite_gets_302_with_the_callers_id(
    sip_service: SipService, tmp_path: Path, transport: str
) -> None:
    run = run_sipp(sip_service.address, "uac_auth.xml",
                   *_auth(sip_service, "ana", PASSWORDS["ana"], "12125550101"),
                   workdir=tmp_path / "sipp", transport=transport)
    assert run.exit_code == 0, run.errors
    assert run.outcomes == ["outcome 302 +12125550101"]


def test_sipp_a_302_with_another_caller_id_fails_the_call(
    sip_service: SipService, tmp_path: Path
) -> None:
    """The regular expression check is real: expecting another number fails sipp's call."""
    run = run_sipp(sip_service.address, "uac_auth.xml",
                   *_auth(sip_service, "ana", PASSWORDS["ana"], "12125550199"),
                   workdir=tmp_path / "sipp")
    assert run.exit_code == 1


def test_sipp_the_fourth_concurrent_call_of_three_channels_gets_486(
    sip_service: SipService, tmp_path: Path
) -> None:
    # lee has max channels 3; each redirected call holds its channel until it is ended.
    run = run_sipp(sip_service.address, "uac_auth.xml",
                   *_auth(sip_service, "lee", PASSWORDS["lee"], "12125550100"),
                   workdir=tmp_path / "sipp", calls=4, limit=4, rate=100)
    assert run.exit_code == 0, run.errors
    assert sorted(run.outcomes) == ["outcome 302 +12125550100"] * 3 + ["outcome 486"]
    assert sip_service.leases() == 3


def test_sipp_a_wrong_password_gets_401_again_never_302(
    sip_service: SipService, tmp_path: Path
) -> None:
    run = run_sipp(sip_service.address, "uac_auth.xml",
                   *_auth(sip_service, "ana", "Wrong-password-2026", "12125550101"),
                   workdir=tmp_path / "sipp", calls=3)
    assert run.exit_code == 0, run.errors
    assert run.outcomes == ["outcome 401"] * 3
    assert sip_service.leases() == 0


def test_sipp_a_trusted_pbx_is_redirected_without_a_challenge(
    sip_service: SipService, tmp_path: Path
) -> None:
    run = run_sipp(sip_service.address, "uac_trusted.xml", "-s", DIALLED, "-key", "user", "ana",
                   "-key", "domain", DOMAIN, "-set", "expected", "12125550101",
                   workdir=tmp_path / "sipp", source=TRUSTED, calls=2)
    assert run.exit_code == 0, run.errors
    assert sip_service.leases() == 2
