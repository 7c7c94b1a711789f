# callgate: `make run` starts it on the embedded store; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the test suite drives: command=package pairs, or bare packages (see .ci/system-tools.sh).
SYSTEM_TOOLS := curl=curl redis-server=redis-server chromium=chromium sipp=sip-tester \
	kamailio=kamailio kamailio-utils-modules kamailio-json-modules openssl=openssl \
	promtool=prometheus docker-compose=docker-compose systemd-analyze=systemd
BENCH_TOOLS := wrk=wrk valgrind=valgrind sipp=sip-tester
# Test processes: most of the suite's time is spent waiting (on subprocess servers, stalls,
# idle windows), so two pytest workers fit a 2-core machine; TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= 2

.PHONY: run test bench system-tools bench-tools typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/callgate serve --demo examples/demo.toml --log-format text

system-tools:
	@sh .ci/system-tools.sh $(SYSTEM_TOOLS)

bench-tools:
	@sh .ci/system-tools.sh $(BENCH_TOOLS)

test: $(VENV)/.installed system-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

typecheck: $(VENV)/.installed
	$(BIN)/python -m mypy

bench: $(VENV)/.installed bench-tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .callgate .pytest_cache .mypy_cache .benchmarks *.egg-info
