# socialcart — `make run` and `make test` work on a fresh machine (Python >= 3.11 needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/socialcart
STAMP := $(VENV)/.installed
PRESET ?= small
SEED ?= 0
DATA ?= data/$(PRESET)
MODEL ?= models/$(PRESET)
API_KEY_FILE ?= data/api_key
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo page at http://$(HOST):$(PORT)/ may write without the key from this machine
# (the server listens on the loopback interface only); the key still guards everything else.
DEMO_LOOPBACK_WRITES ?= true

.PHONY: install lock audit browser run serve data-card test lint format bench clean

# Installs exactly the pinned versions of requirements.lock (every dependency, the dev and
# bench extras included), then socialcart itself without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## lock: re-pin requirements.lock after changing the dependencies in pyproject.toml
lock: $(STAMP)
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --extra dev --extra bench \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

## audit: known vulnerabilities of the pinned dependencies (pip-audit)
audit: $(STAMP)
	$(PY) tools/audit_deps.py requirements.lock

$(DATA)/manifest.json: | $(STAMP)
	$(CLI) generate --preset $(PRESET) --seed $(SEED) --out $(DATA) --force

$(MODEL)/model.json: $(DATA)/manifest.json | $(STAMP)
	$(CLI) train $(DATA) --out $(MODEL) --force

# One key per checkout, created once (readable by its owner only) and reused.
$(API_KEY_FILE): | $(STAMP)
	@mkdir -p $(dir $@)
	@umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

## run: install, generate the default dataset and train the model if missing, then serve
## them on http://$(HOST):$(PORT) (API docs at /docs, demo page at /) with an API key
run: serve

serve: $(STAMP) $(DATA)/manifest.json $(MODEL)/model.json $(API_KEY_FILE)
	@echo "API key (send it in the X-API-Key header for writes and /v1/admin): $$(cat $(API_KEY_FILE))"
	@SOCIALCART_API_KEY="$$(cat $(API_KEY_FILE))" \
	SOCIALCART_DEMO_LOOPBACK_WRITES=$(DEMO_LOOPBACK_WRITES) \
	$(CLI) serve --host $(HOST) --port $(PORT) --model-dir $(MODEL)

## data-card: the default dataset's statistics against the published targets
data-card: $(STAMP) $(DATA)/manifest.json
	$(CLI) data-card $(DATA)

## browser: Debian's Chromium for the demo page's browser tests (apt, when missing)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends chromium fonts-dejavu-core; \
		else \
			echo "note: no /usr/bin/chromium and no root apt-get: browser tests will skip"; \
		fi; \
	fi

## test: install and run the whole test suite
test: $(STAMP) browser
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	@command -v wrk >/dev/null || apt-get install -y wrk  # load generator of bench serve, soak
	$(CLI) bench generate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
