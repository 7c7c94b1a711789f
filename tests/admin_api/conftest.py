from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.store.redis_store import RedisStore

from ..redis_support_fixtures import store_url
from .support import World, serve, serve_embedded


@pytest.fixture(params=["embedded", "redis"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """The admin API over each store."""
    if request.param == "embedded":
        async for world in serve_embedded(tmp_path / "data"):
            yield world
        return
    store = RedisStore(store_url(request, "redis"))
    await store.open()
    try:
        async for world in serve(store):
            yield world
    finally:
        await store.close()
