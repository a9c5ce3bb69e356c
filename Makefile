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
export SECRET_KEY_FILE ?= $(CURDIR)/$(VAR)/secret_key
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

run: demo static
	@echo "Serving mesoclinic on http://$(HOST):$(PORT) (Ctrl-C stops it)"
	$(VENV)/bin/gunicorn mesoclinic.wsgi --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile - --forwarded-allow-ips=127.0.0.1

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy mesoclinic tests

test: lint static
	$(VENV)/bin/pytest

clean:
	rm -rf $(VAR)/static $(VAR)/test*.sqlite3*

# --- Benchmarks (docs/performance.md) ---------------------------------------------------------------------
# make bench SCALE=smoke|clinic|chain DB=sqlite|postgres [DURATION=30s] [USERS=50|200] [THINK=1,5] [SEED=1]
# Generates the data set once per scale and seed (var/bench/, or PostgreSQL mesoclinic_bench_<scale>), serves
# a fresh copy with gunicorn (production settings, BENCH_FLOOR=1), loads it with locust and writes
# bench/results/<date>-<scale>-<db>.json and .md. Staff accounts: c001-desk1 … password mesoclinic-demo-2026.
# BENCH_WORKERS=0 and SCENARIO_USERS=0 mean the defaults of bench/run.py (2 SQLite, 4 PostgreSQL workers).
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
.PHONY: bench-smoke bench-compare

bench: install
	$(BENCH_RUN) run --scale $(SCALE) --db $(DB) --seed $(SEED) --duration $(DURATION) --users $(USERS) \
		--scenario-users $(SCENARIO_USERS) --workers $(BENCH_WORKERS) --think $(THINK) --port $(BENCH_PORT) \
		--pg-url $(PG_URL) $(BENCH_ARGS)

# CI: the generator and every scenario at smoke scale for a few seconds. Exits non-zero on any failed request
# (or a broken audit chain); asserts nothing about time. Results go to var/bench/results, not the repository.
bench-smoke: install
	$(BENCH_RUN) run --scale smoke --db $(DB) --seed $(SEED) --duration 5s --warmup 1s \
		--workers $(BENCH_WORKERS) --port $(BENCH_PORT) --pg-url $(PG_URL) --out $(VAR)/bench/results $(BENCH_ARGS)

# Scale independence: the same scenarios at smoke and at chain, then p95(chain) / p95(smoke) per scenario.
bench-compare: install
	$(MAKE) bench SCALE=smoke
	$(MAKE) bench SCALE=chain
	$(BENCH_RUN) compare --db $(DB)
