# housespool: `make demo` and `make test` are the two commands a newcomer needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SPOOL   = $(BIN)/spool --spool spool-dir
# a CPU wheel: plain `torch` would pull gigabytes of CUDA libraries
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-clean reliability bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[ml,serve,dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

reliability: venv
	HOUSESPOOL_FULL=1 $(BIN)/pytest -q -m slow tests/reliability

bench: venv
	$(BIN)/python bench/run_all.py

demo-clean:
	rm -rf spool-dir/pending/* spool-dir/claimed/* spool-dir/done/* spool-dir/failed/* \
	       spool-dir/runners/*.json spool-dir/sweeps/*.yaml spool-dir/report

demo: venv demo-clean
	$(BIN)/python bench/demo.py --spool spool-dir

clean: demo-clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
