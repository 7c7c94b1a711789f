"""schemathesis against the generated OpenAPI document and a real ``callgate serve``: for a
bounded number of generated requests per operation, no 5xx, and every response (status,
content type, headers, body) is one the document describes; requests the schema forbids are
refused, and requests without a token too."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from admin_api import openapi_document
from tests.conftest import CALLGATE, NO_DRAIN, Server

EXAMPLES = 25
"""Generated requests per operation: enough to reach every field and status on each, few
enough for the whole run to take well under a minute. The examples are derived from the
document (``derandomize``), so a run is repeatable; a change to the document changes them."""

NEGATIVE_REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""How a request the document forbids may be refused: schemathesis's default list, plus 413 (a
generated body over the server's 64 KiB limit is refused for its size before its shape)."""

schema = schemathesis.openapi.from_dict(
    json.loads(openapi_document()),
    config=schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_REFUSALS}}}),
)


@schema.auth()
class OwnerToken:
    """The owner's token on every generated request, given through schemathesis's auth hook
    so its checks know what was sent: its negative cases that leave the header out, and its
    checks that send a request without it, stay what they say."""

    token = ""
    """Set by the ``live`` fixture, once it has bootstrapped the account."""

    def get(self, case: schemathesis.Case, context: object) -> str:
        return OwnerToken.token

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on a bootstrapped account with a number, a department, a group and a user,
    so generated ids sometimes hit something; and the owner's token."""
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    owner = subprocess.run(
        [str(CALLGATE), "bootstrap", "acme", "--name", "Acme", "--owner", "olivia",
         "--email", "olivia@acme.example", "--data", str(data)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    # The fuzzer sends many requests without a valid token on purpose: a contract check, not
    # an attack (tests/http/test_auth_throttle.py is that).
    server = Server(Path(data), demo=None, token=owner,
                    args=(*NO_DRAIN, "--http-ban-after", "100000")).start()

    def post(path: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"{server.url}/admin/v1{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {owner}", "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()

    post("/numbers", {"number": "+12125550100"})
    post("/departments", {"id": "sales", "name": "Sales"})
    post("/groups", {"id": "east", "name": "East"})
    post("/users", {"id": "ana", "email": "ana@acme.example"})
    OwnerToken.token = owner
    try:
        yield server.url, owner
    finally:
        server.stop()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_the_api_keeps_to_its_document(case: schemathesis.Case, live: tuple[str, str]) -> None:
    url, owner = live
    case.call_and_validate(
        base_url=url,
        # A request the schema allows may still be refused by the account's rules (a caller
        # ID that is not one of the account's numbers: 409) or by a made-up If-Match (412):
        # every other check runs.
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
    # Whatever the case did, the account still answers: no request leaves it unreadable.
    assert _account_status(url, owner) == 200, case.as_curl_command()


def _account_status(url: str, token: str) -> int:
    request = urllib.request.Request(f"{url}/admin/v1/account",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
