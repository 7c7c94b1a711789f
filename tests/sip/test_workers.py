"""Several worker processes on one Redis serve SIP as one: calls spread over the workers
(SO_REUSEPORT, a source port a call) share each user's channel limit."""

from __future__ import annotations

from pathlib import Path

from ..redis_support import RedisServer
from .conftest import DOMAIN, PASSWORDS, start_sip_service
from .sipp import run_sipp


def test_calls_over_two_workers_share_the_channel_limit(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    service = start_sip_service(tmp_path, "--workers", "2", store=("--redis-url", redis.url))
    try:
        host, port = service.address
        run = run_sipp(
            service.address, "uac_auth.xml", "-s", "2125550187", "-key", "user", "lee",
            "-key", "domain", DOMAIN, "-au", "lee", "-ap", PASSWORDS["lee"],
            "-auth_uri", f"2125550187@{host}:{port}", "-set", "expected", "12125550100",
            workdir=tmp_path / "sipp", calls=24, limit=24, rate=200, transport="udp-per-call",
        )
        assert run.exit_code == 0, run.errors
        # lee has 3 channels: exactly 3 calls redirected, whichever worker each met.
        assert sorted(run.outcomes) == ["outcome 302 +12125550100"] * 3 + ["outcome 486"] * 21
    finally:
        service.server.stop()
        redis.kill()
