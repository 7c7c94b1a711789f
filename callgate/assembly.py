"""One callgate process, wired: the engine and everything around it over one open store.

``assemble`` is the one place that says which part gets which: the metrics read the store's
lease counts, the engine reports to the metrics, the account service installs every saved
change in the engine, the admin API mounts inside the decision API and shares its token
cache, and the SIP front end (when configured) asks the same engine. ``callgate serve``, the
test fixtures and the in-process benchmark all build a process this way, so what they
measure and test is what runs.

Assembling does no I/O and starts nothing: opening the store before and running the apps
after (listening, signals, draining) are ``callgate.server``'s.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from admin_api import PREFIX, build_admin_app
from engine.decide import Engine
from engine.http import TOKENS, Lifecycle, build_app
from engine.metrics import Metrics
from engine.service import AccountService
from engine.store import Store
from sip.server import SipServer

from .settings import ServeSettings

__all__ = ["Assembly", "assemble"]


class Assembly(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of one callgate process, wired together and not yet running."""

    store: Store
    engine: Engine
    service: AccountService
    """Saves account changes and installs each in ``engine`` (as the admin API does)."""
    registry: CollectorRegistry
    """This process's metrics, fresh for each assembly: ``/metrics`` serves it."""
    metrics: Metrics
    lifecycle: Lifecycle
    """Set ``draining`` on it to make ``app`` drain."""
    app: web.Application
    """The decision API with the admin API mounted under ``admin_api.PREFIX``."""
    sip: SipServer | None
    """The SIP front end, when ``settings.sip`` asks for it; not yet listening."""


def assemble(store: Store, settings: ServeSettings = ServeSettings()) -> Assembly:
    """Wire one callgate process over ``store``, which the caller opened and closes.

    Of ``settings``, the parts that shape the wiring apply: the configuration poll interval,
    the HTTP authentication limits, the SIP front end and whether its port is shared by
    several workers. The store fields (``data_dir``, ``redis``) are for whoever opens
    ``store``; the defaults suit tests, which pass an embedded store of their own."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, store.lease_counts)
    engine = Engine(store, metrics=metrics)
    lifecycle = Lifecycle()

    def mount_admin(app: web.Application) -> None:
        app.add_subapp(PREFIX, build_admin_app(store, engine, app[TOKENS]))

    app = build_app(store, engine, metrics, poll_s=settings.poll_s, mount=mount_admin,
                    lifecycle=lifecycle, auth_limits=settings.auth_limits)
    sip = None
    if settings.sip is not None:
        sip = SipServer(engine, settings.sip.redirect, registry=registry,
                        reuse_port=settings.workers > 1)
    return Assembly(
        store=store, engine=engine, service=AccountService(store, on_saved=engine.install),
        registry=registry, metrics=metrics, lifecycle=lifecycle, app=app, sip=sip,
    )
