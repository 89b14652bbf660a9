# Two entry points: `make demo` and `make test`. Both create .venv when missing,
# install torch (CPU build) first, then the project with its dev extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

.PHONY: demo test lint typecheck unit integration bench schema clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(wildcard /opt/wheels),--find-links /opt/wheels) $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wardstream demo

lint: $(STAMP)
	$(BIN)/ruff check engine connectors pipelines schemas tests bench
	$(BIN)/ruff format --check engine connectors pipelines schemas tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

schema: $(STAMP)
	$(BIN)/wardstream schema

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
