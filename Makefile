# modelops: every target creates .venv from the repo's pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 3000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test demo serve build lint bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements-dev.txt layers/modelops/requirements.txt layers/mlruntime/requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with pinned dependencies and the modelops CLI

test: venv  ## run every test (no AWS account, no Docker)
	$(BIN)/python -m pytest -q

clean:  ## remove build output and the virtualenv
	rm -rf $(VENV) .aws-sam .pytest_cache

bench: venv  ## run the benchmarks under bench/ and print a summary table
	$(BIN)/python bench/run_all.py $(BENCH)
