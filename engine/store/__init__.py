"""Stores: where configuration, tokens, leases, call records and sticky caller IDs live."""

from .embedded import EmbeddedStore
from .protocol import Build, Peek, Store, Ticket, TokenRecord

__all__ = ["Build", "EmbeddedStore", "Peek", "Store", "Ticket", "TokenRecord"]
