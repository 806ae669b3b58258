# Two entry points: `make demo` and `make test`. Both bootstrap .venv/ from scratch when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,orchestration]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chipscreen demo --out out/demo --licenses data/licenses-example.csv

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_screen.py --rows 10000000

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
