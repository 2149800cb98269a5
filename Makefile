# Thumbnail Creator: every command a developer or CI runs.
# `make demo` and `make test` work on a fresh clone: they create .venv first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime's Python (template.yaml: python3.12). pyenv's shims for
# non-default versions answer "command not found", so ask pyenv first.
PYTHON_VERSION := 3.12
PYTHON_BOOT ?= $(shell ( v=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(PYTHON_VERSION)\.[0-9]+$$' | tail -1); \
	[ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python$(PYTHON_VERSION) ) 2>/dev/null \
	|| command -v python$(PYTHON_VERSION))

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOTS := $(VENV)/.import-roots
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
# The venv's bin first: `sam build` looks for python3.12 on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1
REGION ?= us-east-1

.PHONY: help venv lint format typecheck cfn-lint sam-validate sam-build scan unit integration test \
	demo demo-screenshot local-up local-down bench bench-storyboard image clean

help:
	@echo "make demo        the whole pipeline on the embedded AWS emulator (VIDEO=, KEY=, META= optional)"
	@echo "make test        every check: lint, types, template checks, sam build, unit and integration tests"
	@echo "make local-up    keep the local stack running (make local-down stops it)"
	@echo "make bench       benchmark against the original design (docs/benchmark.md)"
	@echo "make bench-storyboard  what a storyboard reads and costs, against ffmpeg (docs/benchmark.md)"
	@echo "make demo-screenshot   docs/demo-page.png from make demo's page, in headless Chromium"
	@echo "make image       build and push the worker image to the stack's ECR repository (needs Docker and AWS)"

$(STAMP): requirements-dev.txt
	@test -n "$(PYTHON_BOOT)" || { echo "Python $(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION) or put python$(PYTHON_VERSION) on PATH)"; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# The import roots (pyproject.toml, [tool.mypy] mypy_path) importable from anywhere in the venv.
$(ROOTS): pyproject.toml $(STAMP)
	$(PY) -m devkit.import_roots
	@touch $@

venv: $(ROOTS)

$(SCAN_STAMP): requirements-scan.txt
	@test -x $(SCAN_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	@touch $@

lint: $(ROOTS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(ROOTS)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(ROOTS)
	$(VENV)/bin/mypy

# cfn-lint on the SAM source and on the transformed template: only the second sees
# circular dependencies between the bucket, its notification and the function.
cfn-lint: $(ROOTS)
	$(VENV)/bin/cfn-lint template.yaml
	@mkdir -p .aws-sam
	$(PY) -m local_stack.template transform template.yaml > .aws-sam/transformed.json
	$(VENV)/bin/cfn-lint .aws-sam/transformed.json

sam-validate: $(ROOTS)
	$(VENV)/bin/sam validate --lint --region $(REGION)

sam-build: $(ROOTS)
	$(VENV)/bin/sam build --region $(REGION)

scan: $(SCAN_STAMP) cfn-lint
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml -f .aws-sam/transformed.json

unit: $(ROOTS)
	$(PY) -m pytest tests/unit -m "not heavy"

integration: $(ROOTS)
	$(PY) -m pytest tests/integration

test: lint typecheck cfn-lint sam-validate sam-build scan
	$(PY) -m pytest tests

VIDEO ?=
KEY ?=
META ?=
demo: $(ROOTS)
	$(PY) -m local_stack demo $(if $(VIDEO),--video "$(VIDEO)") $(if $(KEY),--key "$(KEY)") $(if $(META),--meta "$(META)") --out demo-output

# The README's picture of demo-output/index.html (needs /usr/bin/chromium).
demo-screenshot: $(ROOTS)
	$(PY) -m local_stack.page_screenshot demo-output docs/demo-page.png

local-up: $(ROOTS)
	$(PY) -m local_stack up

local-down: $(ROOTS)
	$(PY) -m local_stack down

bench: $(ROOTS)
	$(PY) -m bench

# Storyboard cost of the 10- and 40-minute videos (bench/results/storyboard.json, docs/benchmark.md).
bench-storyboard: $(ROOTS)
	$(PY) -m bench.storyboard

# Needs a Docker engine with buildx and AWS credentials: not runnable offline.
STACK ?= thumbnail-creator
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo latest)
PLATFORM ?= linux/arm64
image:
	@repo=$$(aws cloudformation describe-stacks --stack-name $(STACK) --region $(REGION) \
		--query "Stacks[0].Outputs[?OutputKey=='WorkerRepositoryUri'].OutputValue" --output text) && \
	aws ecr get-login-password --region $(REGION) | docker login --username AWS --password-stdin $${repo%%/*} && \
	docker buildx build --platform $(PLATFORM) --provenance=false -t $$repo:$(TAG) --push container && \
	echo "Pushed $$repo:$(TAG). Deploy it: sam deploy --parameter-overrides WorkerImageTag=$(TAG)"

clean:
	rm -rf .aws-sam demo-output .local-stack .pytest_cache .mypy_cache .ruff_cache
