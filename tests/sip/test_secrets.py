"""A SIP password never shows anywhere but in the one answer that generated it: not in the
store's files, the server's log, its metrics, an export, or any other API answer."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import CALLGATE

from .conftest import SipSeed, SipService, start_sip_service
from .sipmsg import answer_challenge, invite, status_of

CHOSEN = "Orchid-lantern-2026"


def _call(service: SipService, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{service.server.url}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {service.owner_token}",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _sign_in(service: SipService, user: str, password: str) -> int:
    client = service.client()
    challenge_to = invite(user=user, via=client.local, call_id=f"{user}-{password[:3]}@t")
    client.send(challenge_to)
    challenge = client.receive()
    auth = answer_challenge(challenge, username=user, password=password,
                            uri="sip:+12125550187@demo.sip.example")
    client.send(invite(user=user, via=client.local, call_id=f"{user}-{password[:3]}@t", cseq=2,
                       extra=(f"Authorization: {auth}",)))
    status = status_of(client.receive())
    client.close()
    return status


def test_sip_passwords_appear_nowhere(tmp_path: Path, sip_seed: SipSeed) -> None:
    service = start_sip_service(tmp_path, seed=sip_seed)
    answers: list[bytes] = []
    try:
        status, body = _call(service, "PUT", "/admin/v1/users/gina/sip",
                             {"username": "gina", "password": CHOSEN})
        assert status == 200, body
        answers.append(body)
        status, body = _call(service, "PUT", "/admin/v1/users/dev/sip", {"username": "dev"})
        generated = json.loads(body)["password"]  # shown here, once, and nowhere else
        assert status == 200 and generated
        assert _sign_in(service, "gina", CHOSEN) == 302
        assert _sign_in(service, "dev", generated) == 302
        assert _sign_in(service, "gina", generated) == 401  # a wrong try, logged as a failure
        for path in ("/admin/v1/users", "/admin/v1/users/gina", "/admin/v1/users/gina/sip",
                     "/admin/v1/users/dev/sip", "/admin/v1/audit?limit=500",
                     "/admin/v1/account", "/admin/v1/openapi.json"):
            status, body = _call(service, "GET", path)
            assert status == 200, (path, body)
            answers.append(body)
        status, body = _call(service, "POST", "/admin/v1/users/gina/sip/rotate",
                             {"password": CHOSEN + "x"})
        answers.append(body)
        with urllib.request.urlopen(f"{service.server.url}/metrics", timeout=10) as reply:
            answers.append(reply.read())
    finally:
        service.server.stop()
    exported = subprocess.run(
        [str(CALLGATE), "export", "demo", "--format", "json", "--data", str(service.data_dir)],
        capture_output=True, timeout=60, check=True).stdout
    stored = b"".join(p.read_bytes() for p in service.data_dir.rglob("*") if p.is_file())
    log = "".join(service.server.output).encode()
    places = {"store": stored, "log": log, "export": exported, "answers": b"".join(answers)}
    assert b"gina" in exported and b"ha1_md5" in exported  # looked in the right places
    for password in (CHOSEN, CHOSEN + "x", generated):
        for where, data in places.items():
            assert password.encode() not in data, (password, where)
