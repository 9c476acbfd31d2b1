# Two commands on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CODE := $(wildcard dedup workers tests bench examples setup.py)

.PHONY: demo test test-cluster lint format bench clean

$(STAMP): pyproject.toml constraints.txt setup.py dedup/pipeline/_minhash.c dedup/index/_naming.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -m "not cluster and not soak"

# Workers and failovers on Redis Clusters of their own (tests/test_cluster.py), and soaks of
# real workers under faults: minutes of real time, so apart from `make test`; CI runs both.
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -m "cluster or soak"

format: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .dedup .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
