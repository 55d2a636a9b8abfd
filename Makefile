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

# ---- build: `sam build` without Docker, then the unzipped package-size gate --------------------------------
# sam needs the runtime's interpreter (python3.12) on PATH; take it from PATH or from pyenv.
PY312_BIN = $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null && break; done)
# Every function must fit Lambda's 262,144,000 bytes with at least 40 MB left for user code (222,144,000);
# the predict function, where user code goes first, is held to 210 MB (52 MB left; the zipped pandas the
# runtime layer ships for DataFrame models takes 9.5 MB of what was 62 MB).
PACKAGE_LIMITS ?= --limit '*=222144000' --limit '*predict*=210000000'
PACKAGE_SIZE_JSON ?= bench/results/package_size.json

build: venv  ## sam build (no Docker), print each function's unzipped size, fail above its limit
	@test -n "$(PY312_BIN)" || { echo "sam build needs python3.12 (the Lambda runtime): e.g. pyenv install 3.12" >&2; exit 2; }
	PATH="$(dir $(PY312_BIN)):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build
	$(BIN)/python -m devtools.package_size --build-dir .aws-sam/build $(PACKAGE_LIMITS) --json $(PACKAGE_SIZE_JSON)

layer-smoke: venv  ## build the layers for x86_64 and run every function on them under python3.12 (no AWS)
	@test -n "$(PY312_BIN)" || { echo "needs python3.12 (the Lambda runtime): e.g. pyenv install 3.12" >&2; exit 2; }
	$(BIN)/python -m devtools.layer_smoke --python3.12 $(PY312_BIN)

# ---- lint / audit: IaC scanning, code quality, dependency audit ---------------------------------------------
# checkov and pip-audit conflict with requirements-dev.txt's pins, so they get their own virtualenv.
LINT_VENV  := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed-stamp
PY_SOURCES := layers modelops_cli functions devtools tests bench
PINNED_REQUIREMENTS := layers/mlruntime/requirements.txt layers/mlruntime/requirements-dataframe.txt \
	layers/parquet/requirements.txt \
	layers/modelops/requirements.txt \
	requirements-dev.txt requirements-lint.txt
AUDIT_SERVICE ?= pypi
.PHONY: audit format layer-smoke

$(LINT_STAMP): requirements-lint.txt
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install -q -r requirements-lint.txt
	touch $@

lint: venv $(LINT_STAMP)  ## cfn-lint (+serverless rules), sam validate --lint, checkov, ruff, ruff format, mypy
	@failed=""; \
	run() { gate=$$1; shift; echo "== $$gate"; "$$@" || failed="$$failed $$gate"; }; \
	run cfn-lint $(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules; \
	run sam-validate env SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint --template template.yaml; \
	run checkov $(LINT_VENV)/bin/checkov -f template.yaml --config-file .checkov.yaml; \
	run ruff $(BIN)/ruff check --output-format concise $(PY_SOURCES); \
	run ruff-format $(BIN)/ruff format --check --output-format concise $(PY_SOURCES); \
	run mypy $(BIN)/mypy; \
	if [ -n "$$failed" ]; then echo "lint failed:$$failed" >&2; exit 1; fi; \
	echo "lint: all gates passed"

format: venv  ## apply ruff's import sorting, safe fixes and formatting
	$(BIN)/ruff check --fix $(PY_SOURCES)
	$(BIN)/ruff format $(PY_SOURCES)

# Fully pinned files are audited as they are; the layers' files are resolved to their transitive set first.
# --strict: a package whose vulnerability data cannot be fetched fails the audit instead of passing unchecked.
audit: $(LINT_STAMP)  ## pip-audit every pinned requirements file (PyPI vulnerability service by default)
	@if [ "$(AUDIT_SERVICE)" = pypi ] && ! curl -sf -m 20 -o /dev/null https://pypi.org/pypi/pip/23.2.1/json; then \
		echo "audit: PyPI's per-version vulnerability data (pypi.org/pypi/NAME/VERSION/json) is unreachable" \
			"from this network; nothing can be audited here" >&2; exit 1; fi
	@failed=""; for req in $(PINNED_REQUIREMENTS); do \
		echo "== $$req"; \
		case $$req in layers/*) deps="" ;; *) deps="--no-deps --disable-pip" ;; esac; \
		$(LINT_VENV)/bin/pip-audit --strict -s $(AUDIT_SERVICE) --progress-spinner off $$deps -r $$req \
			|| failed="$$failed $$req"; \
	done; \
	if [ -n "$$failed" ]; then echo "audit failed:$$failed" >&2; exit 1; fi

# ---- docs: the architecture picture is drawn from template.yaml ----------------------------------------------
.PHONY: diagram
diagram: venv  ## redraw the README's architecture diagram from template.yaml (a test fails when it is out of date)
	$(BIN)/python -m devtools.diagram

# ---- local: the API like `sam local start-api`, and the end-to-end demo, without Docker or AWS --------------
# exec: make itself is serve's parent, so serve stops when make is killed (a shell in between outlives make).
serve: venv  ## the API on http://127.0.0.1:PORT/v1 (default port 3000); REGISTRY=dir MODEL_NAME=x or MODEL_DIR=dir serve yours
	PORT=$(PORT) REGISTRY='$(REGISTRY)' MODEL_NAME='$(MODEL_NAME)' MODEL_VERSION='$(MODEL_VERSION)' MODEL_DIR='$(MODEL_DIR)' \
		exec $(BIN)/python -m devtools.serve

demo: venv  ## train, register, serve and call the API end to end locally (exit 0 = every answer as expected)
	$(BIN)/python -m devtools.demo $(DEMO)

# ---- deploy-local: both samconfig environments as two stacks in one LocalStack account, read back and checked --
# LocalStack (community, pinned in requirements-localstack.txt) runs on the host without Docker, in its own
# virtualenv under Python 3.12+ (pyenv's 3.13 or 3.12), bound to 127.0.0.1 and with no network; see
# devtools/localstack_patches.py for what it cannot do and how each gap is handled.
.PHONY: deploy-local deploy-local-exec smoke
LOCALSTACK_VENV  := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-stamp
LOCALSTACK_PYTHON = $(shell for p in python3.13 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 \
	python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] in ((3, 12), (3, 13)); print(sys.executable)' 2>/dev/null && break; done)
# Layers are built for arm64; without binutils-aarch64-linux-gnu, LLVM's strip (any architecture) strips them.
AARCH64_STRIP = $(shell command -v aarch64-linux-gnu-strip 2>/dev/null || command -v llvm-strip 2>/dev/null)
DEPLOY_LOCAL_ARGS ?= --smoke

$(LOCALSTACK_STAMP): requirements-localstack.txt
	@test -n "$(LOCALSTACK_PYTHON)" || { echo "LocalStack needs Python 3.12 or 3.13: e.g. pyenv install 3.13" >&2; exit 2; }
	test -x $(LOCALSTACK_VENV)/bin/python || $(LOCALSTACK_PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install -q --no-deps -r requirements-localstack.txt
	touch $@

deploy-local: venv $(LOCALSTACK_STAMP)  ## build, deploy dev + prod into one LocalStack, check them, smoke-test them
	STRIP="$(AARCH64_STRIP)" $(MAKE) --no-print-directory build PACKAGE_SIZE_JSON=.aws-sam/package_size.json
	$(BIN)/python -m devtools.deploy_local --localstack-python $(LOCALSTACK_VENV)/bin/python $(DEPLOY_LOCAL_ARGS)

# deploy-local-exec: the same deploy, with Lambda code running under the Runtime Interface Emulator (LocalStack
# executor devtools/localstack_rie_executor.py), so the smoke tests reach the functions through API Gateway and
# Step Functions. The host cannot run arm64 code, so the template is built for the host's architecture into
# .aws-sam/rie (template.yaml and the default build are untouched); the runtime is a python3.12 venv with
# awslambdaric and boto3 (what the Lambda runtime provides), at the versions of requirements-dev.txt.
RIE_DIR  := .aws-sam/rie
HOST_ARCH = $(shell uname -m | sed 's/aarch64/arm64/')
RIE_PINS  = $(shell grep -E '^(awslambdaric|boto3)==' requirements-dev.txt)

deploy-local-exec: venv $(LOCALSTACK_STAMP)  ## deploy-local with Lambda code executed (host-arch build, no Docker)
	@test -n "$(PY312_BIN)" || { echo "needs python3.12 (the Lambda runtime): e.g. pyenv install 3.12" >&2; exit 2; }
	mkdir -p $(RIE_DIR)
	sed -e 's/\barm64\b/$(HOST_ARCH)/g' template.yaml > $(RIE_DIR)/template.yaml
	ln -sfn ../../statemachine $(RIE_DIR)/statemachine  # DefinitionUri is relative to the template
	PATH="$(dir $(PY312_BIN)):$$PATH" ARCH=$(shell uname -m) SAM_CLI_TELEMETRY=0 $(BIN)/sam build \
		--template-file $(RIE_DIR)/template.yaml --base-dir . --build-dir $(RIE_DIR)/build
	test -x $(RIE_DIR)/runtime/bin/python || $(PY312_BIN) -m venv $(RIE_DIR)/runtime
	$(RIE_DIR)/runtime/bin/python -m pip install -q --disable-pip-version-check $(RIE_PINS)
	$(BIN)/python -m devtools.deploy_local --localstack-python $(LOCALSTACK_VENV)/bin/python \
		--build-dir $(RIE_DIR)/build --work-dir $(RIE_DIR)/localstack --lambda-python $(RIE_DIR)/runtime/bin/python \
		$(DEPLOY_LOCAL_ARGS)

smoke: venv  ## integration tests against a deployed stack: make smoke STACK=<name> (AWS credentials from the env)
	@test -n "$(STACK)" || { echo "usage: make smoke STACK=<stack name>" >&2; exit 2; }
	AWS_SAM_STACK_NAME="$(STACK)" $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests/integration
