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
	$(BIN)/pip install -q -e '.[ml,serve,report,dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

reliability: venv
	HOUSESPOOL_FULL=1 $(BIN)/pytest -q -m slow tests/reliability

bench: venv
	$(BIN)/python bench/run_all.py

demo-clean:
	rm -rf spool-dir/pending/* spool-dir/claimed/* spool-dir/done/* spool-dir/failed/* \
	       spool-dir/runners/*.json spool-dir/sweeps/*.yaml spool-dir/sweeps/*.json \
	       spool-dir/sweeps/*.slots spool-dir/sweeps/*.stop spool-dir/report spool-dir/diffs

# a real sweep on the bundled spool, two local runners, the best rows, a report
demo: venv demo-clean
	@set -e; \
	cls=$$($(SPOOL) sweep classify.py --grid model=logreg,rf,svm --seeds 3 -p dataset=digits \
	        --name "classifiers on digits" --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["sweep"])'); \
	mlp=$$($(SPOOL) sweep train_mlp.py --grid lr=0.01,0.003 --grid hidden=32,64 -p epochs=4 \
	        --name "small MLP" --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["sweep"])'); \
	$(SPOOL) submit encode_csv.py --contract argv4 -p dataFileName=iris_small.csv -p dataPath=data/ \
	        -p 'execution={"max_columns": 50}' --name "encode iris (original argv4 script)" >/dev/null; \
	$(SPOOL) submit spool-dir/examples/encode_legacy.json >/dev/null; \
	echo "queued: sweep $$cls (9 jobs), sweep $$mlp (4 jobs), 2 encoder jobs; starting two local runners"; \
	$(SPOOL) runner --exit-when-idle -q --name demo-a & \
	$(SPOOL) runner --exit-when-idle -q --name demo-b; wait; \
	$(SPOOL) status; \
	echo; echo "best classifiers:"; \
	$(SPOOL) results --sweep $$cls --sort result.accuracy --desc --limit 5 \
	        --cols id,param.model,param.seed,result.accuracy,result.f1_macro,host,duration; \
	echo; echo "best MLPs:"; \
	$(SPOOL) results --sweep $$mlp --sort result.val_accuracy --desc --limit 4 \
	        --cols id,param.lr,param.hidden,result.val_accuracy,result.val_loss,duration; \
	echo; $(SPOOL) report >/dev/null && echo "report: file://$$(pwd)/spool-dir/report/index.html" || \
	        echo "(report not available yet)"

clean: demo-clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
