# Two entry points (README): `make run` shows the whole pipeline locally,
# `make test` runs every test. Each installs what it needs.
# The functions' Python (infra/constants.py PYTHON_VERSION): tests and the local run use the version Lambda runs.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
ENV ?= dev

.PHONY: install run up test unit synth check-static check-lint check-types bench clean

$(BIN)/.installed: requirements-dev.txt lambdas/requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)  # --clear: a venv of another Python is rebuilt, not patched
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

# Full synth through the pinned CDK CLI, with CloudFormation validation and
# real (Docker-free) bundling, for every shipped environment.
synth: install
	$(BIN)/python -m infra.synth_all

run: install
	$(BIN)/gcpipe local run --env $(ENV)

# The local stack, kept up so that `gcpipe --local ...` works from another terminal
# (README, "Locally"). Ctrl-C drains what is queued or running; a second Ctrl-C stops at once.
up: install
	$(BIN)/gcpipe local run --env $(ENV) --keep-running $(ARGS)

check-static: synth
	$(BIN)/python -m infra.check_static

# Lint: ruff's rules as pyproject.toml selects them (each noqa marker names one of them), and ruff's format.
check-lint: install
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

# Types (pyproject.toml [tool.mypy]): --strict on the Lambda code, mypy's default checks on the CLI, the local
# runtime, the CDK app and the benchmarks. Two runs of different options, so two caches.
LAMBDA_CODE := lambdas/genesys_pipeline lambdas/processor lambdas/dispatcher lambdas/error_logger lambdas/extensions
check-types: install
	$(BIN)/mypy --strict --cache-dir .mypy_cache/strict $(LAMBDA_CODE)
	$(BIN)/mypy --cache-dir .mypy_cache/default app.py gcpipe infra bench

unit: install
	$(BIN)/python -m pytest -q

# The static checks side by side (mypy runs while the CDK app synthesizes), then every test. Three pytest
# workers on two cores: the e2e tests wait on the wall clock (request budgets, batching windows) much of the
# time, and with two workers the cores were idle a third of the run (on 2 cores: 344 s with 2, 264 s with 3).
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target check-static check-lint check-types
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
