"""The Redis store: ``store.py`` (the store and its dials), with the parts it inherits:
``lifecycle.py`` (ending calls, heartbeats, the live calls), ``configuration.py`` (account
configuration and the change feed), ``tokens.py`` and ``audit.py``; ``calls.py`` (one script
call on its way), ``answers.py`` (a call's answer as a record keeps it), ``scripts.py`` and
``lua/`` (what runs on Redis), ``keys.py`` (every key), ``topology.py`` and ``connection.py``
(where keys live and the pipelined connections to them), ``settings.py`` (the URL)."""

from .keys import CHANNEL
from .settings import RedisSettings, parse_redis_url
from .store import RedisStore

__all__ = ["CHANNEL", "RedisSettings", "RedisStore", "parse_redis_url"]
