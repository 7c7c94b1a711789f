"""The per-dial decision engine: normalisation, destination policy, the decision pipeline,
the stores and the decision HTTP API.

Importing the package loads only its light, I/O-free parts (errors and wire types): the
engine itself is ``engine.decide.Engine`` and the account service
``engine.service.AccountService``, imported from their modules by whoever runs them, so a
protocol core that needs an error class does not pull in the stores, asyncio or sockets.
"""

from .errors import CallgateError
from .wire import Decision, DialRequest

__all__ = ["CallgateError", "Decision", "DialRequest"]
