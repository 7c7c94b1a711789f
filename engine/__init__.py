"""The per-dial decision engine, its stores, its HTTP API and the ``callgate`` command."""

from .decide import Engine
from .errors import CallgateError
from .service import AccountService
from .wire import Decision, DialRequest

__all__ = ["AccountService", "CallgateError", "Decision", "DialRequest", "Engine"]
