# socialcart — `make run` and `make test` work on a fresh machine (Python >= 3.11 needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/socialcart
STAMP := $(VENV)/.installed
PRESET ?= small
SEED ?= 0
DATA ?= data/$(PRESET)

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DATA)/manifest.json: | $(STAMP)
	$(CLI) generate --preset $(PRESET) --seed $(SEED) --out $(DATA) --force

## run: install, generate the default dataset if missing, print its data card
run: $(STAMP) $(DATA)/manifest.json
	$(CLI) data-card $(DATA)

## test: install and run the whole test suite
test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(CLI) bench generate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
