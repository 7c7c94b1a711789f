"""The Redis store: ``store.py`` (the store), ``scripts.py`` and ``lua/`` (what runs on
Redis), ``keys.py`` (every key), ``topology.py`` and ``connection.py`` (where keys live and the
pipelined connections to them), ``settings.py`` (the URL)."""

from .keys import CHANNEL
from .settings import RedisSettings, parse_redis_url
from .store import RedisStore

__all__ = ["CHANNEL", "RedisSettings", "RedisStore", "parse_redis_url"]
