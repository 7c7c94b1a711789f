"""Every error class has its row in the status table; the table is the only mapping."""

from __future__ import annotations

import pytest

from engine import errors
from sip.errors import SipMessageError


def leaves(cls: type) -> list[type]:
    subclasses = cls.__subclasses__()
    return [cls] if not subclasses else [leaf for sub in subclasses for leaf in leaves(sub)]


@pytest.mark.parametrize("cls", leaves(errors.CallgateError), ids=lambda c: c.__name__)
def test_every_leaf_error_has_a_status_row(cls: type[errors.CallgateError]) -> None:
    assert cls in errors.HTTP_STATUS
    assert cls in errors.SIP_STATUS


def test_a_sip_message_error_answers_with_the_status_it_carries() -> None:
    assert errors.sip_status(SipMessageError("bad version", status=505)) == 505
    assert errors.sip_status(SipMessageError("no Via", status=None)) is None
    assert errors.sip_status(errors.NotFound("no user")) == 404


def test_request_errors_are_4xx_and_store_unavailable_is_503() -> None:
    for cls in leaves(errors.RequestError):
        assert 400 <= errors.HTTP_STATUS[cls] < 500, cls
    assert errors.http_status(errors.StoreUnavailable("down")) == 503
