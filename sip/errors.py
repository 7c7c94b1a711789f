"""The SIP front end's own error: what a SIP peer sent that cannot be taken as a message.

It belongs to ``sip``, as ``h11.ProtocolError`` belongs to h11: the parser and framer raise
it, and the status to answer with rides on the instance, as h11's ``error_status_hint`` does.
It is no ``CallgateError``: it never leaves the SIP front end (the redirector answers or
drops the message), and this module imports nothing of callgate's, so the protocol core
stays at the bottom of the tree. ``engine.errors.sip_status`` reads the status it carries.
"""

from __future__ import annotations

__all__ = ["SipMessageError"]


class SipMessageError(Exception):
    """A SIP message callgate cannot take. ``status`` is the SIP status to answer with (400,
    416, 505, ...), or None when the message is too broken to answer: no Via header, no
    request or status line, too many header lines, or a stream that cannot be framed."""

    def __init__(self, detail: str, *, status: int | None = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
