# The two commands a newcomer needs: `make demo` and `make test`.  Both start from nothing:
# they find Python 3.13, bring uv in a bootstrap venv (.tools), and install from uv.lock.
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-deep lint format e2e screenshots bench-import bench-segments bench-delivery bench-retention bench-screening bench-render bench-rights bench-api bench-tracking bench-reports bench-analytics bench-metrics bench-deliverability bench-journeys bench-journey-segments bench-dashboard bench test-cluster clean

$(UV):
	@test -n "$(PYTHON)" || { echo "Python 3.13 or 3.12 is needed" >&2; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python "$(PYTHON)"
	@touch $@

## install: the production install (README, "Running in production"): the locked dependencies
## into .venv without the development group (pytest, faker, ruff, playwright...: nothing tidings
## runs imports them); on an upgrade it also removes any a development install left there
install: $(UV)
	$(UV) sync --frozen --no-dev --python "$(PYTHON)"

## demo: set up, migrate an SQLite database in ./var, load the demo, serve on http://$(HOST):$(PORT)
## (the help desk answers from DEMO_SUPPORT_ADDRESS unless TIDINGS_SUPPORT_ADDRESS is set, and
## the demo's mail comes from DEMO_FROM_EMAIL unless TIDINGS_FROM_EMAIL is set — not the
## production default newsletter@localhost; the demo's mail stays in its Outbox)
DEMO_SUPPORT_ADDRESS ?= Example Support <support@example.co.uk>
DEMO_FROM_EMAIL ?= newsletter@example.co.uk
demo: $(VENV)/.synced
	TIDINGS_FROM_EMAIL="$${TIDINGS_FROM_EMAIL:-$(DEMO_FROM_EMAIL)}" \
	  $(VENV)/bin/tidings demo --host $(HOST) --port $(PORT)
	TIDINGS_SUPPORT_ADDRESS="$${TIDINGS_SUPPORT_ADDRESS:-$(DEMO_SUPPORT_ADDRESS)}" \
	TIDINGS_FROM_EMAIL="$${TIDINGS_FROM_EMAIL:-$(DEMO_FROM_EMAIL)}" \
	  $(VENV)/bin/tidings serve --host $(HOST) --port $(PORT) --with-worker

## test: set up, lint, run every test on SQLite, and again on PostgreSQL when DATABASE_URL says so;
## the tests run in TEST_WORKERS processes (pytest-xdist; default: one a core) with the ci
## hypothesis profile, and the elapsed time of the whole run is printed at the end
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_RUN = $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup
test: $(VENV)/.synced
	@start=$$SECONDS; \
	trap '{ set +x; } 2>/dev/null; took=$$((SECONDS - start)); echo "--- make test took $$((took / 60))m$$((took % 60))s"' EXIT; \
	set -ex; \
	scripts/ensure-chromium; \
	$(VENV)/bin/ruff check .; \
	$(VENV)/bin/ruff format --check .; \
	$(VENV)/bin/mypy; \
	$(VENV)/bin/lint-imports; \
	env -u DATABASE_URL $(PYTEST_RUN) --hypothesis-profile=ci $(PYTEST_ARGS); \
	if [[ "$${DATABASE_URL:-}" == postgres* ]]; then \
	  { set +x; echo "--- again on PostgreSQL ($${DATABASE_URL%%@*}@…)"; } 2>/dev/null; \
	  $(PYTEST_RUN) --hypothesis-profile=ci $(PYTEST_ARGS); \
	fi

## test-deep: the nightly run: every test with the deep hypothesis profile (ten times the
## examples of a plain pytest), on SQLite and on PostgreSQL when DATABASE_URL says so
test-deep: $(VENV)/.synced
	@start=$$SECONDS; \
	trap '{ set +x; } 2>/dev/null; took=$$((SECONDS - start)); echo "--- make test-deep took $$((took / 60))m$$((took % 60))s"' EXIT; \
	set -ex; \
	scripts/ensure-chromium; \
	env -u DATABASE_URL $(PYTEST_RUN) --hypothesis-profile=deep $(PYTEST_ARGS); \
	if [[ "$${DATABASE_URL:-}" == postgres* ]]; then \
	  $(PYTEST_RUN) --hypothesis-profile=deep $(PYTEST_ARGS); \
	fi

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(VENV)/.synced
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## screenshots: the browser tests that draw the README's screenshots, writing docs/screenshots/
screenshots: $(VENV)/.synced
	scripts/ensure-chromium
	TIDINGS_SCREENSHOTS=1 $(VENV)/bin/pytest -m e2e tests/e2e/test_readme_screenshots.py tests/e2e/test_block_editor_e2e.py

## e2e: only the browser tests
e2e: $(VENV)/.synced
	scripts/ensure-chromium
	$(VENV)/bin/pytest -m e2e

## benchmarks (printed figures; they create and drop their own databases, named tidings_bench_*)
## bench: every benchmark at a quick scale (under 10 minutes) and one table of figure, baseline,
## ratio, target, met and load average (bench/run_all.py; BENCH_ARGS="--only api,dashboard")
bench: $(VENV)/.synced
	$(VENV)/bin/python -m bench.run_all $(BENCH_ARGS)

## bench-import: a 1M-row, 25-column Mailchimp export into an empty database and merged into 1M
## existing contacts, on SQLite and PostgreSQL (QUICK=1: 100k rows, 100k existing)
bench-import: $(VENV)/.synced
	$(VENV)/bin/python -m bench.import_contacts $(if $(QUICK),--quick)
	$(VENV)/bin/python -m bench.import_contacts $(if $(QUICK),--quick) --database-url postgres://postgres@127.0.0.1:5432/postgres

bench-delivery: $(VENV)/.synced
	$(VENV)/bin/python -m bench.delivery

## bench-journeys: one worker advancing due journey steps (1M enrolled, 100k due; QUICK=1: 20k/2k)
bench-journeys: $(VENV)/.synced
	$(VENV)/bin/python -m bench.journeys $(if $(QUICK),--quick)

## bench-journey-segments: the segment trigger's incremental check against a full diff (1M contacts;
## QUICK=1: 100k)
bench-journey-segments: $(VENV)/.synced
	$(VENV)/bin/python -m bench.journey_segments $(if $(QUICK),--quick)

bench-retention: $(VENV)/.synced
	$(VENV)/bin/python -m bench.retention

## bench-rights: access package and erasure of one person among 1M contacts, 10M delivery rows
bench-rights: $(VENV)/.synced
	$(VENV)/bin/python -m bench.rights

bench-screening: $(VENV)/.synced
	$(VENV)/bin/python -m bench.screening $(ARGS)

bench-render: $(VENV)/.synced
	$(VENV)/bin/python -m bench.render

## bench-segments: segment counts on 1M faker contacts with 10M opens and clicks (EVENTS=N to change)
bench-segments: $(VENV)/.synced
	$(VENV)/bin/python -m bench.segments --contacts 1000000 $(if $(EVENTS),--events $(EVENTS))

## bench-dashboard: the operator dashboard at 1M contacts and 10M deliveries (target < 100 ms)
bench-dashboard: $(VENV)/.synced
	$(VENV)/bin/python -m bench.dashboard

bench-tracking: $(VENV)/.synced
	$(VENV)/bin/python -m bench.tracking

bench-reports: $(VENV)/.synced
	$(VENV)/bin/python -m bench.reports

## bench-deliverability: A/B split, local-hour planning and the exact recipient count (PostgreSQL)
bench-deliverability: $(VENV)/.synced
	$(VENV)/bin/python -m bench.deliverability $(BENCH_ARGS)

bench-analytics: $(VENV)/.synced
	$(VENV)/bin/python -m bench.analytics

## test-cluster: 2 web processes, 3 workers, Redis and an SMTP sink on loopback; a 50,000-recipient
## campaign with a worker killed, tracking, retention and an import at once (PostgreSQL; its own
## database).  A bigger run: make test-cluster CLUSTER_ARGS="--recipients 200000 --hits 20000"
test-cluster: $(VENV)/.synced
	$(VENV)/bin/python -m tests.cluster.run $(CLUSTER_ARGS)

## bench-metrics: computing /metrics with a million deliveries in the queue table (PostgreSQL)
bench-metrics: $(VENV)/.synced
	$(VENV)/bin/python -m bench.metrics

clean:
	rm -rf $(TOOLS) $(VENV) .pytest_cache .ruff_cache .mypy_cache

.PHONY: bench-api
bench-api: $(VENV)/.synced
	$(VENV)/bin/python -m bench.api --contacts 1000000 $(BENCH_ARGS)
