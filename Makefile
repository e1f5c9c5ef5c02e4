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

.PHONY: install run up test unit synth check-static bench clean

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

unit: install
	$(BIN)/python -m pytest -q

test: install check-static
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
