"""The composition root: the ``callgate`` command, its settings, and the assembly and running
of a server. It sits on top of every other package and nothing imports it.

- ``callgate.cli``: the command line (``main``), one function per command;
- ``callgate.settings``: every setting as a flag, a ``CALLGATE_*`` variable and a config-file
  key, and ``ServeSettings``, what ``callgate serve`` runs with;
- ``callgate.assembly``: ``assemble``, the one wiring of store, engine, account service,
  metrics, the HTTP apps and the SIP front end (the server, the tests and the benchmarks use
  it);
- ``callgate.server``: start-up, signals, draining, and worker processes.

The package itself imports none of them, so that ``callgate --help`` loads no server.
"""

__all__ = ["PACKAGES"]

PACKAGES = ("admin_api", "callerid", "callgate", "engine", "sip")
"""Every package of callgate's own: where a blocking call on the event loop is looked for
(``callgate serve`` under ``CALLGATE_DETECT_BLOCKING=1``, and the test suite)."""
