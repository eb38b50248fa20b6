# machimori — two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## Install and run the demo on embedded defaults (the example town 港町).
demo: $(VENV)/.installed
	$(BIN)/machimori demo

## Install and run the whole test suite, then the linters and the type checker.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n auto
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## Run the benchmarks (figures go to docs/performance.md by hand).
bench: $(VENV)/.installed
	$(BIN)/python bench/assess_benchmark.py

clean:
	rm -rf $(VENV) machimori-demo bench/out .pytest_cache .mypy_cache .ruff_cache
