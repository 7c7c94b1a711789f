"""``callgate loadtest``: a load generator for ``POST /v1/dial``, to size a campaign.

Two ways to load a server:

* **open loop** (``--rate N``): request ``i`` is due at ``start + i / N``, whatever the server
  does, and is timed from that *scheduled* time to the end of its answer. A server that stalls
  for a second shows N slow answers, not a second in which nothing was asked: there is no
  coordinated omission. A request due when all ``--concurrency`` connections are busy waits
  for one, and the wait is in its latency. The generator itself can fall behind (it is Python,
  often on the server's machine): requests that started over ``LATE_MS`` after their time are
  counted and shown, apart from those that waited for a connection (the server was slow).
* **closed loop** (``--max``): ``--concurrency`` workers, each sending its next dial as soon as
  its previous one is answered: the most the server answers at that concurrency, timed from
  each actual send.

Each allowed call is ended with outcome ``answered`` ``--hold`` seconds after its answer (so a
long run gives its channels back instead of meeting ``channel_limit``), untimed, over
connections of their own (up to ``--concurrency`` more), so that ends neither wait behind
dials nor take their connections; ``--no-end`` keeps the calls up. Calls still held when the
run stops are ended then. Nothing raises on a server's failure: connection errors, timeouts
and error statuses are counted and shown; the exit status says whether more than
``--max-errors`` of the requests failed. The first ``--warmup`` seconds are sent the same way
and left out of the figures.

The benchmarks (``python -m bench``) run it too, as a process, and read its ``--json``
``Report``: their open-loop figures and an operator's come from one generator.

The pure parts are plain functions and classes that the tests call directly, and none imports
aiohttp: ``options`` (``add_arguments``, ``plan_from``), ``numbers`` (``NumberSource``: fresh
valid numbers; ``Destinations``: fresh or repeated), ``stats`` (``Schedule``: open-loop pacing;
``Histogram``: percentiles; ``Tally`` / ``summarise`` / ``Report`` / ``render_table`` /
``progress_line``). This package exports them and nothing else, so that importing it (as every
``callgate`` command does, for ``add_arguments``) loads no aiohttp. The I/O is ``connection``
(``Connection``: the dials' lean HTTP/1.1, one keep-alive connection per sender, its answers
read by the pure ``AnswerReader``), ``preflight`` (what the server says about the token and
the account, on aiohttp) and ``run`` (``_Run``: the dials, and the ends on an aiohttp client
session; ``main``; ``standalone``), imported when a load test runs.
"""

from .numbers import Destinations, NumberSource
from .options import Loop, add_arguments, plan_from, read_destinations
from .stats import (
    LATE_MS,
    Ends,
    Failure,
    Histogram,
    Latency,
    Progress,
    Report,
    Schedule,
    Tally,
    progress_line,
    render_table,
    summarise,
)

__all__ = [
    "LATE_MS",
    "Destinations",
    "Ends",
    "Failure",
    "Histogram",
    "Latency",
    "Loop",
    "NumberSource",
    "Progress",
    "Report",
    "Schedule",
    "Tally",
    "add_arguments",
    "plan_from",
    "progress_line",
    "read_destinations",
    "render_table",
    "summarise",
]
