"""The pure core imports no I/O: no asyncio, aiohttp, redis or socket in sys.modules."""

from __future__ import annotations

import subprocess
import sys


def test_callerid_imports_no_io_modules() -> None:
    code = (
        "import sys, callerid, callerid.resolve, callerid.geo, callerid.snapshot;"
        "bad = sorted(m for m in ('asyncio', 'aiohttp', 'redis', 'socket', 'sqlite3') "
        "if m in sys.modules); print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
