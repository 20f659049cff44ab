# The two commands of the README: `make run` and `make test`.
# Each installs what is missing first, so both work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

# The local development server: DEBUG on unless the environment or .env says otherwise.
run: $(VENV)/.run-installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py close_interrupted
	$(BIN)/python manage.py bootstrap
	DEBUG_DEFAULT=true $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The same over HTTPS with a self-signed certificate, for a phone on the same network (browsers give
# the microphone only to secure pages). For testing: DEBUG on unless the environment or .env says otherwise.
HTTPS_HOST ?= 0.0.0.0
HTTPS_PORT ?= 8443
.PHONY: https
https: $(VENV)/.run-installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py close_interrupted
	$(BIN)/python manage.py bootstrap
	DEBUG_DEFAULT=true $(BIN)/python manage.py serve_https --host $(HTTPS_HOST) --port $(HTTPS_PORT)

# Browser tests drive Debian's Chromium; the deployment tests (deploy/) run Debian's nginx and
# systemd-analyze. Each is installed when missing.
test: $(VENV)/.dev-installed
	@command -v chromium >/dev/null || { \
		echo "Installing Chromium for the browser tests..."; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }
	@[ -x /usr/sbin/nginx ] && [ -x /usr/bin/systemd-analyze ] || { \
		echo "Installing nginx and systemd for the deployment tests..."; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq nginx systemd >/dev/null; }
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	node --test tests/js/
	PYTHONDEVMODE=1 $(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
