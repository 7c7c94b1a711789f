"""schemathesis against the generated OpenAPI document and a real ``callgate serve``, with every
check it has (``--checks all``): for a bounded number of generated requests per operation, no
5xx; every response (status, content type, headers, body) is one the document describes;
requests the document allows are accepted unless the account's rules refuse them, requests it
forbids are refused, and requests without a token too.

The server holds three accounts. Two tenants (``acme``, ``globex``) have users, departments,
numbers, groups, SIP credentials, tokens and an audit log; the third (``initech``) is the one
fuzzed, once with its owner's token and once with a user's who holds no admin permission, so
that the refusals get fuzzed as well as the writes. After each operation has been fuzzed, both
tenants read through the API as they did before any fuzzing, and after each token's run their
``callgate export`` is unchanged too: nothing the third account sends reaches them.

The run is random: a seed is drawn per run (or read from ``CALLGATE_FUZZ_SEED`` to replay
one), printed at the start of the module and added to every failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from admin_api import openapi_document
from tests.conftest import CALLGATE, NO_DRAIN, Server

SEED_VARIABLE = "CALLGATE_FUZZ_SEED"
SEED = int(os.environ.get(SEED_VARIABLE) or secrets.randbits(32))
"""The run's seed: schemathesis derives each operation's hypothesis seed from it (and its
label), so the same seed sends the same requests again."""
REPLAY = f"{SEED_VARIABLE}={SEED}"

EXAMPLES = 15
"""Generated requests per operation and token, on top of schemathesis's coverage cases (its
boundary values of every field): with two tokens and about forty operations, enough to reach
every field and status, few enough for the module to take well under a minute."""

NEGATIVE_REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""How a request the document forbids may be refused: schemathesis's default list, plus 413 (a
generated body over the server's 64 KiB limit is refused for its size before its shape)."""

POSITIVE_REFUSALS = ["2xx", "3xx", 401, 403, 404, 409, 412, 429, "5xx"]
"""How a request the document allows may still be refused: schemathesis's default list (a
missing permission 403, an id the account lacks 404, a rule of the domain 409: a caller ID
that is not one of the account's numbers, a region phonenumbers does not know), plus 412: a
generated ``If-Match`` names a version the resource does not have. Not 422: what the server
refuses as invalid, the document forbids; but for ``UNDECLARABLE``."""

_GEO_RULE = re.compile(r"is not a country calling code|no number of \+\d+ starts with "
                       r"|is longer than any number of \+\d+")
_DNC_NUMBER = re.compile(r"is not a valid phone number \(national numbers are read as |"
                         r"is an emergency number, which is never blocked$|"
                         r"is too long to be a phone number")
_HOURS = re.compile(r"a window runs from a time of day to a later one")
UNDECLARABLE = {
    "POST /admin/v1/tokens": re.compile(r"^expires_at \S+ is not in the future$"),
    "POST /admin/v1/users": _GEO_RULE,
    "PUT /admin/v1/users/{user_id}/geo": _GEO_RULE,
    "GET /admin/v1/audit": re.compile(r"^cursor .* is not one this store gave out$"),
    "PUT /admin/v1/users/{user_id}/sip": re.compile(r"^the password is too weak: "),
    "POST /admin/v1/users/{user_id}/sip/rotate": re.compile(r"^the password is too weak: "),
    "PATCH /admin/v1/account": _HOURS,
    "POST /admin/v1/departments": _HOURS,
    "PATCH /admin/v1/departments/{department_id}": _HOURS,
    "POST /admin/v1/dnc": _DNC_NUMBER,
    "GET /admin/v1/dnc/{number}": _DNC_NUMBER,
    "PUT /admin/v1/dnc/{number}": _DNC_NUMBER,
    "DELETE /admin/v1/dnc/{number}": _DNC_NUMBER,
}
"""The operations that refuse some requests the document allows with a 422, and the detail
each such refusal has: rules JSON Schema cannot state. A token's expiry must be in the future
(it depends on the clock); a geo rule must be able to match a call (an area code or calling
code phonenumbers' numbering plan has: a 422 like a value out of range, as the README says);
an audit cursor is one the store gave out (it is opaque, and each store has its own kind); a
SIP password must not be weak (guessable from the login, repetitive, low in entropy); a
number for the do-not-call list must be a valid one, and not an emergency number (phonenumbers'
numbering plan says which); a calling-hours window must end after it starts.
``refused_only_by_undeclarable_rules`` holds their other 422s to the document."""

schema = schemathesis.openapi.from_dict(
    json.loads(openapi_document()),
    config=schemathesis.config.SchemathesisConfig.from_dict({
        "seed": SEED,
        "checks": {
            "negative_data_rejection": {"expected-statuses": NEGATIVE_REFUSALS},
            "positive_data_acceptance": {"expected-statuses": POSITIVE_REFUSALS},
        },
        "operations": [
            {"include-name": label,
             "checks": {"positive_data_acceptance": {
                 "expected-statuses": [*POSITIVE_REFUSALS, 422]}}}
            for label in UNDECLARABLE
        ],
    }),
)


def refused_only_by_undeclarable_rules(ctx: object, response: schemathesis.Response,
                                       case: schemathesis.Case) -> None:
    """A request the document allows, refused with a 422 by an ``UNDECLARABLE`` operation,
    was refused for that operation's rule, not for a constraint the document leaves out."""
    rule = UNDECLARABLE.get(case.operation.label)
    meta = case.meta
    if (rule is None or response.status_code != 422 or meta is None
            or not meta.generation.mode.is_positive):
        return
    detail = response.json().get("detail", "")
    assert rule.search(detail), f"a request the document allows was refused: {detail}"


@schema.auth()
class FuzzerToken:
    """The fuzzing user's token on every generated request, given through schemathesis's auth
    hook so its checks know what was sent: its negative cases that leave the header out, and
    its checks that send a request without it, stay what they say."""

    token = ""
    """Set by the ``fuzzer`` fixture, before the cases of an operation are generated."""

    def get(self, case: schemathesis.Case, context: object) -> str:
        return FuzzerToken.token

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@dataclass(frozen=True)
class Live:
    url: str
    tokens: dict[str, str]
    """The fuzzing account's tokens by who holds them: ``owner``, ``member``."""
    readers: dict[str, str]
    """Each tenant's token for reading its state (its owner's, named ``reader``)."""
    data: Path
    before: dict[str, Any]
    """Each tenant's state before any fuzzing (``_tenant_state``)."""
    exported: dict[str, Any]
    """Each tenant's ``callgate export`` before any fuzzing."""


def _request(url: str, token: str, method: str, path: str,
             body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{url}/admin/v1{path}", data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            raw = reply.read()
            return int(reply.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _setup(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None
           ) -> Any:
    status, answer = _request(url, token, method, path, body)
    assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
    return answer


def _cli(*args: str) -> str:
    return subprocess.run([str(CALLGATE), *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def _bootstrap(data: Path, account: str, owner: str) -> str:
    return _cli("bootstrap", account, "--name", account.title(), "--owner", owner,
                "--email", f"{owner}@{account}.example", "--data", str(data))


def _user_token(data: Path, account: str, user: str, name: str) -> str:
    return _cli("token", "create", account, "--name", name, "--user", user, "--data", str(data))


def _populate_tenant(url: str, token: str, account: str, area: str) -> None:
    """A tenant with something of every kind, written through the API so that its audit log
    has entries too. ``area``: the area code of its numbers (a number is one account's)."""
    _setup(url, token, "PATCH", "/account", {"sip_domain": f"{account}.sip.example",
                                             "plan_countries": ["US", "CA"]})
    for n in ("0101", "0102", "0103"):
        _setup(url, token, "POST", "/numbers", {"number": f"+1{area}555{n}", "name": n})
    _setup(url, token, "POST", "/departments",
           {"id": "sales", "name": "Sales", "permissions": ["users.manage", "dial.out_of_plan"],
            "default_caller_id": f"+1{area}5550101"})
    _setup(url, token, "PATCH", f"/numbers/%2B1{area}5550102", {"department": "sales"})
    _setup(url, token, "POST", "/users", {"id": "ana", "email": f"ana@{account}.example",
                                          "department": "sales", "name": "Ana"})
    _setup(url, token, "POST", "/users", {"id": "ben", "email": f"ben@{account}.example",
                                          "default_caller_id": f"+1{area}5550103"})
    _setup(url, token, "PUT", "/users/ben/geo", {"area_codes": [
        {"number": f"+1{area}5550103", "area_codes": ["212", "646"]}]})
    _setup(url, token, "PUT", "/users/ana/sip",
           {"username": "ana", "password": "Xk7#pQ2v-L9m$Tz4"})
    _setup(url, token, "POST", "/groups", {"id": "east", "name": "East", "members": ["ana"]})
    _setup(url, token, "POST", "/tokens", {"name": "dialer", "kind": "service"})


def _tenant_state(url: str, token: str, account: str) -> dict[str, Any]:
    """Everything a tenant shows its own owner through the API, ETags included. The
    ``reader`` token's own last use is left out: reading the state is using it."""

    def read(path: str) -> Any:
        status, answer = _request(url, token, "GET", path)
        assert status == 200, f"{account}: GET {path}: {status} {answer}"
        return answer

    tokens = read("/tokens?limit=500")
    for item in tokens["items"]:
        if item["name"] == "reader":
            item.pop("last_used_at")
    return {
        "account": read("/account"),
        "users": read("/users?limit=500"),
        "departments": read("/departments?limit=500"),
        "numbers": read("/numbers?limit=500"),
        "groups": read("/groups?limit=500"),
        "tokens": tokens,
        "audit": read("/audit?limit=500"),
    }


def _export(data: Path, account: str) -> Any:
    """The tenant's stored configuration, SIP digests included (``callgate export`` beside
    the server, as an operator would run it)."""
    return json.loads(_cli("export", account, "--format", "json", "--data", str(data)))


def _announce(config: pytest.Config, line: str) -> None:
    """``line`` on the terminal, passing test or not (pytest shows a passing test's output
    nowhere)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory,
         pytestconfig: pytest.Config) -> Iterator[Live]:
    """A server with two populated tenants and the fuzzing account: its owner, a user with
    no admin permission, and a number, a department, a group and a user, so that generated
    ids sometimes hit something."""
    _announce(pytestconfig, f"schemathesis seed {SEED} (replay: {REPLAY})")
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    owners = {"acme": _bootstrap(data, "acme", "olivia"),
              "globex": _bootstrap(data, "globex", "gus")}
    readers = {"acme": _user_token(data, "acme", "olivia", "reader"),
               "globex": _user_token(data, "globex", "gus", "reader")}
    fuzz_owner = _bootstrap(data, "initech", "ivy")
    # The fuzzer sends many requests without a valid token on purpose: a contract check, not
    # an attack (tests/http/test_auth_throttle.py is that).
    server = Server(Path(data), demo=None, token=fuzz_owner,
                    args=(*NO_DRAIN, "--http-ban-after", "100000")).start()
    try:
        _populate_tenant(server.url, owners["acme"], "acme", "212")
        _populate_tenant(server.url, owners["globex"], "globex", "312")
        _user_token(data, "acme", "ana", "ana's desk")
        _user_token(data, "globex", "ana", "ana's desk")
        url, token = server.url, fuzz_owner
        _setup(url, token, "POST", "/numbers", {"number": "+14155550100"})
        _setup(url, token, "POST", "/departments", {"id": "sales", "name": "Sales"})
        _setup(url, token, "POST", "/departments", {"id": "floor", "name": "Floor"})
        _setup(url, token, "POST", "/groups", {"id": "east", "name": "East"})
        _setup(url, token, "POST", "/users", {"id": "ana", "email": "ana@initech.example"})
        _setup(url, token, "POST", "/users", {"id": "pat.floor", "email": "pat@initech.example",
                                              "department": "floor"})
        member = _user_token(data, "initech", "pat.floor", "fuzzing")
        member_account = _setup(url, member, "GET", "/users/pat.floor")
        assert member_account["effective_permissions"] == [], member_account
        before = {a: _tenant_state(url, readers[a], a) for a in owners}
        exported = {a: _export(data, a) for a in owners}
        yield Live(url, {"owner": fuzz_owner, "member": member}, readers, data, before,
                   exported)
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["owner", "member"])
def fuzzer(request: pytest.FixtureRequest, live: Live) -> Iterator[str]:
    """Which of the fuzzing account's users sends the generated requests (module scope: pytest
    runs every operation with one token, then every operation with the other). Once all have
    run, both tenants' stored configurations are as they were."""
    FuzzerToken.token = live.tokens[request.param]
    yield request.param
    FuzzerToken.token = ""
    for account, before in live.exported.items():
        assert _export(live.data, account) == before, (
            f"fuzzing initech as its {request.param} changed {account}'s configuration "
            f"(replay: {REPLAY})")


@pytest.fixture
def tenants_untouched(live: Live, fuzzer: str) -> Iterator[None]:
    """After an operation's fuzzing, both tenants read as before any fuzzing."""
    yield
    for account, before in live.before.items():
        assert _tenant_state(live.url, live.readers[account], account) == before, (
            f"fuzzing initech as its {fuzzer} changed {account} (replay: {REPLAY})")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_the_api_keeps_to_its_document(case: schemathesis.Case, live: Live, fuzzer: str,
                                       tenants_untouched: None) -> None:
    try:
        case.call_and_validate(base_url=live.url,
                               additional_checks=[refused_only_by_undeclarable_rules])
    except Exception as exc:
        exc.add_note(f"fuzzing as initech's {fuzzer}; replay: {REPLAY}")
        raise
    # Whatever the case did, the fuzzing user's account still answers: no request leaves it
    # unreadable, nor revokes the token fuzzing it.
    status, answer = _request(live.url, live.tokens[fuzzer], "GET", "/account")
    assert status == 200, f"{case.as_curl_command()}\n{answer}\nreplay: {REPLAY}"
