# The README's two commands: `make run` (the example list, offline) and `make test` (the test suite).
PYTHON ?= python3
# `make test VENV=.venv-newest CONSTRAINTS=…` runs the same suite on other versions (.ci/versions does, in CI).
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.interllm-installed
LIST ?= input/DataTransferScenarioList.md
PROVIDER ?= offline  # `make run PROVIDER=openai` uses OPENAI_API_KEY from .env instead

.PHONY: setup run test cov lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pytest-interllm needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	$(BIN)/python -m pytest_interllm install-codex  # codex 0.153.4 (mcp-server) into a per-user cache
	@touch $(STAMP)

run: setup
	$(BIN)/pytest --interllm $(LIST) --interllm-provider $(strip $(PROVIDER)) --html=reports/interllm.html --self-contained-html

# In parallel, one worker more than there are cores: a test often waits on codex or a socket, and the spare worker
# fills that time (on 2 cores, 3 workers took 5 min 28 s where 2 took 6 min 36 s); worksteal keeps every core busy to
# the end. Python's bytecode cache stays on even where the machine turns it off (PYTHONDONTWRITEBYTECODE): the suite
# starts hundreds of pytest runs, and each would compile the plugin (and rewrite its asserts) afresh.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
test: setup
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(WORKERS) --dist worksteal

# The same suite measured by coverage (pytest-cov combines the workers' and their child runs'); CI runs it too.
cov: setup
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(WORKERS) --dist worksteal --cov=pytest_interllm --cov-report=term

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .venv-newest .venv-lowest reports logs .pytest_cache .mypy_cache .ruff_cache

# Every figure is the median [min–max] of 5 rounds (benchmarks/figures.py); `make bench BENCH_ROUNDS=2 BENCH_SCALE=0.25`
# is a quick smoke run (fewer rounds and scenarios; results in benchmarks/results/smoke/, never the README's).
bench: setup
	cd benchmarks && ../$(BIN)/python run_all.py
