"""callgate's benchmark harness (``make bench`` runs ``python -m bench``).

The machine is shared and noisy, so no figure stands alone: every benchmark measures its
baseline and callgate side by side in the same run, in interleaved rounds, and reports the
medians and their ratio against the target. Nothing here asserts a wall-clock target: a missed
target is a line in the report, not a failure (the exit status is nonzero only when the harness
itself breaks). Nothing is written into the repository; every store and script lives in a
temporary directory.

Modules, one idea each:

* ``workload``     the bench account and fresh, never-repeated US numbers
* ``report``       rows, medians and the summary table
* ``micro``        callerid resolution and phonenumbers' own cost (pure, no store)
* ``inprocess``    the full decision on the embedded store, without HTTP
* ``blocking``     no blocking call on the event loop on the hot path
* ``baseline_app`` the minimal aiohttp + msgspec server the HTTP figures are compared with
* ``wrk``          driving Debian's ``wrk`` and reading its output
* ``http``         ``/v1/dial`` against the baseline server under the same load
* ``redis_baseline_app`` the Redis ceiling: ``baseline_app`` plus one EVALSHA per request
* ``redis_http``   ``/v1/dial`` on the Redis store against the ceiling, 1 and 2 processes,
  round trips per dial counted on Redis, latency at half the peak under open-loop load
  (``callgate loadtest --rate``, ``engine.loadtest``: the one load generator)
"""
