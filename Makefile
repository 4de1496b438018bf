# `make run` and `make test` are the two commands a new user needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
CONFIG  ?= config/router.example.yaml
# Only for the local trial: a real deployment sets its own secrets. Without
# SLACK_BOT_TOKEN the router prints Slack messages to the console, and
# `router press` signs button presses with this local signing secret.
export ALERTMANAGER_TOKEN ?= change-me
export SLACK_SIGNING_SECRET ?= local-console-secret

.PHONY: run test lint typecheck check mutation bench soak fuzz clean

$(BIN)/router: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/router
	$(BIN)/router --config $(CONFIG) serve

test: $(BIN)/router
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(BIN)/router
	$(BIN)/ruff check router tests bench tools
	$(BIN)/ruff format --check router tests bench tools

typecheck: $(BIN)/router
	$(BIN)/mypy

check: lint typecheck test

# Mutation testing of the pure core against its unit tests (config: [tool.mutmut] in
# pyproject.toml): the score per module and every surviving mutant. Results are kept in
# mutants/, so a second run tests only the functions that changed. MODULE=duties for one
# module; MUTATION_JOBS workers (default 2).
MUTATION_JOBS ?= 2
mutation: $(BIN)/router
	MUTATION_JOBS=$(MUTATION_JOBS) $(BIN)/python -m tools.mutation $(if $(MODULE),--module $(MODULE))

bench: $(BIN)/router
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.paging
	$(BIN)/python -m bench.replicas

# The fault runs at full length (not in CI): 100 SIGKILL trials, PostgreSQL sessions
# killed and connections refused, Slack away for 60 s, a full disk. Prints the figures.
soak: $(BIN)/router
	$(BIN)/python -m bench.faults

# Mutated real requests of every endpoint, then schemathesis from the OpenAPI
# description, each against a real `router serve`: zero 5xx, every answer documented.
FUZZ_COUNT  ?= 20000
FUZZ_STORES ?= sqlite postgres
FUZZ_EXAMPLES ?= 500
fuzz: $(BIN)/router
	for store in $(FUZZ_STORES); do \
		$(BIN)/python -m tests.fuzz.mutate --count $(FUZZ_COUNT) --store $$store || exit 1; \
	done
	$(BIN)/python -m tests.fuzz.schemathesis_run --max-examples $(FUZZ_EXAMPLES)

clean:
	rm -rf $(VENV) data mutants .pytest_cache .mypy_cache .ruff_cache
