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
