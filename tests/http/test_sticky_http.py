"""Sticky caller ID over real HTTP: ending a call as ``answered`` or ``voicemail`` records the
caller ID for the contact, account-wide; no other outcome does. Observed the way a dialer sees
it: through the rule and caller ID of the next dial to that contact by a sticky user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import Server
from tests.http.http_support import Api, ServerFactory, account, connect

ANA = "+12125550101"
"""ana's default caller ID (sticky off): the number that talks to the contact first."""
SAM = "+12125550102"
"""sam's default caller ID (sticky on): what sam uses when nothing is sticky."""
OLIVIA = "+12125550100"

RECORDED = ["answered", "voicemail"]
NOT_RECORDED = ["no_answer", "busy", "failed", "canceled"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    roomy = {"max_channels": 20}
    config = account(replace_users={"ana": roomy, "sam": roomy, "olivia": roomy})
    with ServerFactory(tmp_path_factory.mktemp("sticky")) as factory:
        yield factory.start(config)


@pytest.fixture
async def api(shared: Server) -> AsyncIterator[Api]:
    async with connect(shared) as client:
        yield client


async def call(api: Api, user: str, contact: str, outcome: str) -> dict[str, object]:
    """``user`` calls ``contact`` and the call ends with ``outcome``; the end's answer."""
    decision = await api.dial(user, contact)
    assert decision["allowed"], decision
    return await api.end(decision["call_id"], outcome)


async def sams_next_dial(api: Api, contact: str) -> tuple[str, str]:
    """The rule and caller ID of sam's next call to ``contact`` (the call is then canceled)."""
    decision = await api.dial("sam", contact)
    assert decision["allowed"], decision
    await api.end(decision["call_id"], "canceled")
    return decision["rule"], decision["caller_id"]


@pytest.mark.parametrize(
    ("outcome", "recorded"),
    [(o, True) for o in RECORDED] + [(o, False) for o in NOT_RECORDED],
    ids=RECORDED + NOT_RECORDED,
)
async def test_sticky_is_recorded_only_for_connected_outcomes(
    api: Api, outcome: str, recorded: bool
) -> None:
    contact = f"+1212555015{(RECORDED + NOT_RECORDED).index(outcome)}"
    assert await sams_next_dial(api, contact) == ("user_default", SAM)

    ended = await call(api, "ana", contact, outcome)

    assert ended["sticky_recorded"] is recorded
    expected = ("sticky", ANA) if recorded else ("user_default", SAM)
    assert await sams_next_dial(api, contact) == expected


async def test_a_later_connected_call_replaces_the_sticky_caller_id(api: Api) -> None:
    contact = "+12125550161"
    await call(api, "ana", contact, "answered")

    await call(api, "olivia", contact, "voicemail")

    assert await sams_next_dial(api, contact) == ("sticky", OLIVIA)


@pytest.mark.parametrize("outcome", NOT_RECORDED, ids=NOT_RECORDED)
async def test_a_later_call_that_did_not_connect_keeps_the_sticky_caller_id(
    api: Api, outcome: str
) -> None:
    contact = f"+1212555017{NOT_RECORDED.index(outcome)}"
    await call(api, "ana", contact, "answered")

    await call(api, "olivia", contact, outcome)

    assert await sams_next_dial(api, contact) == ("sticky", ANA)


async def test_sticky_applies_to_the_contact_however_it_is_dialled(api: Api) -> None:
    await call(api, "ana", "+12125550181", "answered")

    assert await sams_next_dial(api, "(212) 555-0181") == ("sticky", ANA)
