"""callgate's exceptions, and the one table that maps them to HTTP statuses.

A denied call is not an error: it is a ``Decision`` with a reason. Exceptions are for requests
callgate cannot answer with a decision::

    CallgateError
    ├── RequestError              the client is at fault (4xx)
    │   ├── MalformedRequest      400  not JSON, or not the shape of any request
    │   ├── InvalidField          422  a field has the wrong type or value
    │   ├── Unauthorized          401  missing or unknown credentials
    │   ├── Forbidden             403  known caller, not allowed to do this
    │   ├── NotFound              404  no such user, call, account, ...
    │   ├── Conflict              409  the change breaks an invariant or reuses an id
    │   ├── PreconditionFailed    412  the resource changed since the client read it
    │   ├── PayloadTooLarge       413  the body is over the limit
    │   ├── UnsupportedMediaType  415  a body whose Content-Type is not JSON
    │   └── TooManyRequests       429  too many failed attempts from this caller: wait
    │                                  ``retry_after_s`` (it rides on the instance)
    ├── StoreUnavailable          503  the store cannot be reached or did not answer in time
    └── ConfigurationError        (start-up) a bad setting or configuration file; exit status 2

A SIP peer that sends what cannot be taken as a message is at fault in SIP's own terms:
``sip.errors.SipMessageError`` (sip owns its protocol error, as h11 owns ``ProtocolError``),
whose SIP status rides on the instance (400, or 416, ...; ``None`` when the message is too
broken to answer at all, and it is dropped).

Two tables map each class to a status: ``HTTP_STATUS`` for the HTTP APIs, ``SIP_STATUS`` for
the SIP front end (``sip_status`` prefers the status a ``SipMessageError`` carries). Every
message names the field or entry, the value and what was expected.
"""

from __future__ import annotations

from sip.errors import SipMessageError

__all__ = [
    "HTTP_STATUS",
    "SIP_STATUS",
    "CallgateError",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "InvalidField",
    "MalformedRequest",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "RequestError",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "http_status",
    "sip_status",
]


class CallgateError(Exception):
    """Base of every error callgate raises on purpose."""

    title = "Error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class RequestError(CallgateError):
    title = "Bad request"


class MalformedRequest(RequestError):
    title = "Malformed request"


class InvalidField(RequestError):
    title = "Invalid field"


class Unauthorized(RequestError):
    title = "Unauthorized"


class Forbidden(RequestError):
    title = "Forbidden"


class NotFound(RequestError):
    title = "Not found"


class Conflict(RequestError):
    title = "Conflict"


class PreconditionFailed(RequestError):
    title = "Precondition failed"


class PayloadTooLarge(RequestError):
    title = "Payload too large"


class UnsupportedMediaType(RequestError):
    title = "Unsupported media type"


class TooManyRequests(RequestError):
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = retry_after_s


class StoreUnavailable(CallgateError):
    title = "Store unavailable"


class ConfigurationError(CallgateError):
    title = "Configuration error"


HTTP_STATUS: dict[type[CallgateError], int] = {
    MalformedRequest: 400,
    InvalidField: 422,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,
    StoreUnavailable: 503,
    ConfigurationError: 500,
}

SIP_STATUS: dict[type[CallgateError], int] = {
    MalformedRequest: 400,
    InvalidField: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 400,  # a Call-ID reused for another call
    PreconditionFailed: 400,
    PayloadTooLarge: 513,
    UnsupportedMediaType: 400,  # not raised by the SIP front end: a SIP body is not ours to type
    TooManyRequests: 503,  # SIP has no 429; a banned SIP peer is not answered at all
    StoreUnavailable: 503,
    ConfigurationError: 500,
}


def _row(table: dict[type[CallgateError], int], error: CallgateError) -> int:
    for cls in type(error).__mro__:
        status = table.get(cls)
        if status is not None:
            return status
    return 500


def http_status(error: CallgateError) -> int:
    """The HTTP status for ``error``: its own class's row, else the nearest ancestor's."""
    return _row(HTTP_STATUS, error)


def sip_status(error: CallgateError | SipMessageError) -> int | None:
    """The SIP status for ``error``: the one a SIP message error carries, else its class's
    row; None: do not answer."""
    if isinstance(error, SipMessageError):
        return error.status
    return _row(SIP_STATUS, error)
