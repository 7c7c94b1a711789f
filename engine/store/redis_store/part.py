"""What the parts of the Redis store use of the store itself.

``RedisStore`` is one class assembled from parts by topic (``lifecycle.py``, ``texts.py``,
``dnc.py``, ``configuration.py``, ``tokens.py``, ``audit.py``), each a mixin it inherits.
``StorePart`` is their common base: it declares, once, the connections, keys and clock the
store provides (``store.py`` defines each), so that each part type-checks on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ...errors import StoreUnavailable
from . import scripts as S
from .keys import AccountKeys
from .settings import RedisSettings
from .topology import Topology

__all__ = ["StorePart"]


class StorePart(ABC):
    """The store as its parts see it."""

    settings: RedisSettings
    _deadline_s: float

    @property
    @abstractmethod
    def topology(self) -> Topology: ...

    @abstractmethod
    def _account_keys(self, account_id: str) -> AccountKeys: ...

    @abstractmethod
    def _skew_ms(self) -> int: ...

    @abstractmethod
    def _id_list(self, ids: frozenset[str]) -> str: ...

    @abstractmethod
    def _unavailable(self, exc: BaseException, waited_s: float | None = None) -> StoreUnavailable:
        ...

    @abstractmethod
    def _spawn(self, coroutine: Any) -> None: ...

    @abstractmethod
    async def _command(self, key: str, *command: Any) -> Any: ...

    @abstractmethod
    async def _script(
        self, script: S.Script, keys: tuple[Any, ...], args: tuple[Any, ...]
    ) -> Any: ...

    @abstractmethod
    async def _lifecycle(
        self, script: S.Script, keys: tuple[Any, ...], args: tuple[Any, ...]
    ) -> Any: ...
