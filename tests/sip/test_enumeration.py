"""SIPVicious, the usual attacker's kit, against callgate: ``svwar`` finds no valid username
(the answers for real and unknown users are alike), and ``svcrack`` guessing a real user's
password is banned (that login, at that address) after the configured number of failures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

from .conftest import DOMAIN, PASSWORDS, SipSeed, SipService, start_sip_service
from .sipmsg import ack_for, invite, request, status_of

BIN = Path(sys.executable).parent
BAN_AFTER = 5


def _tool(name: str, *args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), "-v", *args], cwd=workdir, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sip_seed: SipSeed) -> Iterator[SipService]:
    running = start_sip_service(tmp_path_factory.mktemp("enumeration"),
                                "--sip-ban-after", str(BAN_AFTER), "--sip-ban-for", "600",
                                seed=sip_seed)
    yield running
    running.server.kill()


@pytest.mark.parametrize("force", [False, True], ids=["sanity check", "forced"])
@pytest.mark.parametrize("method", ["INVITE", "REGISTER", "OPTIONS"])
def test_svwar_finds_no_valid_username(
    service: SipService, tmp_path: Path, method: str, force: bool
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("".join(f"{name}\n" for name in [*PASSWORDS, "nobody", "olivia", "zed"]))
    before = service.metric("callgate_sip_requests_total", f'method="{method}"')
    done = _tool("sipvicious_svwar", "-m", method, "-d", str(users), "--domain", DOMAIN,
                 "-x", "127.0.0.1", "-P", str(free_port()), "--maximumtime", "3",
                 *(["--force"] if force else []), f"udp://{service.address[0]}:{service.address[1]}",
                 workdir=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]  # 0: found nothing; 40: found some
    assert "found nothing" in done.stderr
    assert "| reqauth" not in done.stdout and "| noauth" not in done.stdout
    # It did ask: a random extension to learn what "unknown" looks like; forced (or when
    # that answer was not a challenge), then the real usernames, which come first in the list.
    asked = service.metric("callgate_sip_requests_total", f'method="{method}"') - before
    assert asked >= (1 if method == "INVITE" and not force else 2)


def test_svcrack_is_banned_after_n_failures(service: SipService, tmp_path: Path) -> None:
    guesses = [f"guess-{i}-Password" for i in range(10)]
    guesses.insert(BAN_AFTER + 3, PASSWORDS["ana"])  # where the ban keeps it from being tried
    dictionary = tmp_path / "passwords.txt"
    dictionary.write_text("\n".join(guesses) + "\n")
    failures = service.metric("callgate_sip_auth_failures_total")
    done = _tool("sipvicious_svcrack", "-u", "ana", "-d", str(dictionary), "-m", "INVITE",
                 "--domain", DOMAIN, "-x", "127.0.0.1", "-P", str(free_port()),
                 "--maximumtime", "2", "-t", "0.01",
                 f"udp://{service.address[0]}:{service.address[1]}", workdir=tmp_path)
    assert done.returncode == 30, done.stderr[-2000:]  # 30: the target stopped answering
    assert PASSWORDS["ana"] not in done.stdout
    assert service.metric("callgate_sip_auth_failures_total") == failures + BAN_AFTER
    assert service.metric("callgate_sip_bans_total", 'scope="user"') == 1
    assert service.metric("callgate_sip_dropped_total", 'why="banned"') > 0
    # The ban is on that login at the guesser's address only: ana gets nothing from there,
    # while the address and everyone else are still answered.
    banned = service.client(source="127.0.0.1")
    banned.send(invite(via=banned.local, call_id="after-the-ban@test"))
    assert banned.nothing_within(1.0)
    colleague = service.client(source="127.0.0.1")
    sent = invite(via=colleague.local, user="lee", call_id="colleague@test")
    colleague.send(sent)
    challenge = colleague.receive()
    assert status_of(challenge) == 401
    colleague.send(ack_for(sent, challenge))
    colleague.send(request("OPTIONS", via=colleague.local))
    assert status_of(colleague.receive()) == 200
    assert service.metric("callgate_sip_bans_total", 'scope="address"') == 0
