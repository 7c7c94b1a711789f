"""Stores: where configuration, tokens, leases, call records and sticky caller IDs live."""

from .embedded import EmbeddedStore
from .protocol import Peek, Plan, Store, Ticket, TokenRecord

__all__ = ["EmbeddedStore", "Peek", "Plan", "Store", "Ticket", "TokenRecord"]
