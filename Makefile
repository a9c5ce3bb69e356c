# mesoclinic — every set-up step is here, so a fresh machine needs only Python 3.11 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)-bootstrap/bin/uv)
VAR := var
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export SECRET_KEY_FILE ?= $(abspath $(VAR))/secret_key
export DJANGO_SETTINGS_MODULE := mesoclinic.settings

.PHONY: help install run serve demo migrate test test-fast lint messages static bench clean

help:
	@echo "make run    install, migrate, load the demo clinic and serve on http://$(HOST):$(PORT)"
	@echo "make test   lint (ruff, mypy) and the whole test suite"
	@echo "make lint   ruff and mypy only"
	@echo "make demo   (re)load the demo clinic"

$(VENV)-bootstrap/bin/uv:
	python3 -m venv $(VENV)-bootstrap
	$(VENV)-bootstrap/bin/pip install --quiet uv

$(VAR)/secret_key:
	@mkdir -p $(VAR)
	@umask 077 && python3 -c "import secrets; print(secrets.token_urlsafe(64))" > $@

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.synced $(VAR)/secret_key messages

messages: $(VENV)/.synced
	$(PY) manage.py compilemessages --ignore=.venv --ignore=$(VENV)-bootstrap -v0

migrate: install
	$(PY) manage.py migrate --no-input -v0

static: install
	$(PY) manage.py collectstatic --no-input -v0

demo: migrate
	$(PY) manage.py demo

# The task worker (reminders and messages, issue 7) runs beside the server and stops with it.
run: demo static
	@echo "Serving mesoclinic on http://$(HOST):$(PORT) with the task worker (Ctrl-C stops both)"
	$(PY) manage.py db_worker --no-reload & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/gunicorn mesoclinic.wsgi --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile - --forwarded-allow-ips=127.0.0.1

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy mesoclinic tests bench

# Two workers: the suite's browser, PDF and concurrency tests keep CI's two cores busy (TEST_WORKERS=0: one
# process, for debugging).
TEST_WORKERS ?= 2
test: lint static
	$(VENV)/bin/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

clean:
	rm -rf $(VAR)/static $(VAR)/test*.sqlite3*

# --- Benchmarks (docs/performance.md) ---------------------------------------------------------------------
# make bench SCALE=smoke|clinic|chain DB=sqlite|postgres [DURATION=30s] [USERS=50|200] [THINK=1,5] [SEED=1]
# Generates the data set once per scale and seed (under $(BENCH_VAR), or PostgreSQL
# mesoclinic_bench_<scale>_<suffix>: BENCH_DB_SUFFIX, else a hash of that directory), serves a fresh copy with
# gunicorn (production settings, BENCH_FLOOR=1), loads it with locust and writes
# bench/results/<date>-<scale>-<db>.json and .md. Staff accounts: c001-desk1 … password mesoclinic-demo-2026.
# BENCH_WORKERS=0 and SCENARIO_USERS=0 mean the defaults of bench/run.py (2 SQLite, 4 PostgreSQL workers).
# bench-figures: the published figures, on a quiet machine (docs/performance.md, "Latest results").
SCALE ?= smoke
DB ?= sqlite
SEED ?= 1
DURATION ?= 30s
USERS ?= $(if $(filter postgres,$(DB)),200,50)
SCENARIO_USERS ?= 0
BENCH_WORKERS ?= 0
THINK ?= 1,5
BENCH_PORT ?= 8765
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
BENCH_ARGS ?=
BENCH_RUN := $(PY) -m bench.run
# Where bench/database.py keeps data sets and logs: $MESOCLINIC_VAR_DIR/bench as the settings read it.
BENCH_VAR := $(abspath $(or $(MESOCLINIC_VAR_DIR),var))/bench
.PHONY: bench-smoke bench-compare bench-figures

bench: install
	$(BENCH_RUN) run --scale $(SCALE) --db $(DB) --seed $(SEED) --duration $(DURATION) --users $(USERS) \
		--scenario-users $(SCENARIO_USERS) --workers $(BENCH_WORKERS) --think $(THINK) --port $(BENCH_PORT) \
		--pg-url $(PG_URL) $(BENCH_ARGS)

# CI: the generator and every scenario at smoke scale, all at once in one locust process for 20 s (one user per
# screen, 10 mixed-workload users with short think times; 20 s because a worker's first safety report imports
# statsmodels, 4-8 s). Exits non-zero on any failed request, a scenario that sent none, or a broken audit
# chain; asserts nothing about time. Results go to $(BENCH_VAR)/results.
bench-smoke: install
	$(BENCH_RUN) run --scale smoke --db $(DB) --seed $(SEED) --duration 20s --warmup 1s --together \
		--users 10 --think 0.2,1 --workers $(BENCH_WORKERS) --port $(BENCH_PORT) --pg-url $(PG_URL) \
		--out $(BENCH_VAR)/results $(BENCH_ARGS)

# Scale independence: the same scenarios at smoke and at chain, then p95(chain) / p95(smoke) per scenario.
bench-compare: install
	$(MAKE) bench SCALE=smoke
	$(MAKE) bench SCALE=chain
	$(BENCH_RUN) compare --db $(DB)

# Every published table of docs/performance.md, in one go (about 1.5 hours on 2 cores; run it on a quiet
# machine): SQLite and PostgreSQL at smoke and chain (with the scale comparison), SQLite at clinic.
bench-figures: install
	$(MAKE) bench-compare DB=sqlite
	$(MAKE) bench SCALE=clinic DB=sqlite
	$(MAKE) bench-compare DB=postgres
