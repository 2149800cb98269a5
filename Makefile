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

.PHONY: help venv lint format typecheck cfn-lint sam-validate sam-build build scan unit integration test \
	demo chaos sweep replay local-up local-down invoke bench image image-check deploy clean fuzz demo-screenshot bench-storyboard bench-latency bench-bursts

help:
	@echo "make demo        the whole pipeline on the embedded AWS emulator (VIDEO=, KEY=, META=, RUNTIME= optional)"
	@echo "make test        every check: lint, types, template checks, sam build, unit and integration tests"
	@echo "make local-up    keep the local stack running (make local-down stops it)"
	@echo "make chaos       N uploads with faults injected at random (N=, FAULT_RATE=, SEED=, VCPU_QUOTA=): nothing may be lost"
	@echo "make sweep       relaunch videos without an up-to-date manifest (APPLY=1 to act; STACK_NAME= for AWS)"
	@echo "make replay      relaunch the failed-jobs and dead-letter queues (APPLY=1 to act; STACK_NAME= for AWS)"
	@echo "make invoke      send an S3 event to the running local stack's launcher (EVENT=src/events/put.json)"
	@echo "make build       sam build with the venv's python3.12 on PATH (what plain \`sam build\` needs)"
	@echo "make fuzz        N=2000 SEED=1: mutated videos through the worker; reproducers in .fuzz-failures/"
	@echo "make bench       benchmark against the original design (docs/benchmark.md)"
	@echo "make bench-storyboard  what a storyboard reads and costs, against ffmpeg (docs/benchmark.md)"
	@echo "make demo-screenshot   docs/demo-page.png from make demo's page, in headless Chromium"
	@echo "make bench-latency  upload to manifest, worker function against Fargate task (docs/benchmark.md)"
	@echo "make bench-bursts   1000 uploads against a 4-vCPU quota, with and without batching (README)"
	@echo "make image       build and push the worker image to the stack's ECR repository (needs Docker and AWS)"
	@echo "make deploy      after the first guided deploy: push the image, deploy with it, sweep (needs Docker and AWS)"

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

# `sam build` outside make needs python3.12 on PATH; this target puts the venv's first.
build: sam-build

scan: $(SCAN_STAMP) cfn-lint
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml -f .aws-sam/transformed.json

unit: $(ROOTS)
	$(PY) -m pytest tests/unit -m "not heavy"

integration: $(ROOTS)
	$(PY) -m pytest tests/integration

test: lint typecheck cfn-lint sam-validate sam-build scan
	$(PY) -m pytest tests

# Seeded mutations of the corpus and synthetic clips through the worker's CLI (tests/fuzzing);
# failing inputs land in .fuzz-failures/<seed>/ with their mutations and a command to rerun them.
# N and SEED: `make fuzz N=2000 SEED=1` (N defaults to 2000 here, to 200 for chaos).
fuzz: $(ROOTS)
	$(PY) -m tests.fuzzing -n $(if $(filter command line,$(origin N)),$(N),2000) --seed $(SEED) \
		--workers $(shell nproc 2>/dev/null || echo 2)

VIDEO ?=
KEY ?=
META ?=
RUNTIME ?=
demo: $(ROOTS)
	$(PY) -m local_stack demo $(if $(RUNTIME),--runtime "$(RUNTIME)") $(if $(VIDEO),--video "$(VIDEO)") $(if $(KEY),--key "$(KEY)") $(if $(META),--meta "$(META)") --out demo-output

N ?= 200
FAULT_RATE ?= 0.1
SEED ?= 1
# VCPU_QUOTA: the account's Fargate vCPU quota the local RunTask enforces (`make chaos VCPU_QUOTA=4`); none by default.
VCPU_QUOTA ?=
chaos: $(ROOTS)
	$(PY) -m local_stack chaos --n $(N) --fault-rate $(FAULT_RATE) --seed $(SEED) $(if $(VCPU_QUOTA),--vcpu-quota "$(VCPU_QUOTA)")

# The sweep and the replay (README "When a task fails"): the local stack, or STACK=<deployed stack>.
APPLY ?=
sweep: $(ROOTS)
	$(PY) -m ops sweep $(if $(STACK_NAME),--stack "$(STACK_NAME)") $(if $(APPLY),--apply)

replay: $(ROOTS)
	$(PY) -m ops replay $(if $(STACK_NAME),--stack "$(STACK_NAME)") $(if $(APPLY),--apply)

# The README's picture of demo-output/index.html (needs /usr/bin/chromium).
demo-screenshot: $(ROOTS)
	$(PY) -m local_stack.page_screenshot demo-output docs/demo-page.png

local-up: $(ROOTS)
	$(PY) -m local_stack up $(if $(VCPU_QUOTA),--vcpu-quota "$(VCPU_QUOTA)")

local-down: $(ROOTS)
	$(PY) -m local_stack down

EVENT ?=
invoke: $(ROOTS)
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=path.json (e.g. src/events/put.json; make local-up first)"; exit 2; }
	$(PY) -m local_stack invoke "$(EVENT)"

bench: $(ROOTS)
	$(PY) -m bench

# Storyboard cost of the 10- and 40-minute videos (bench/results/storyboard.json, docs/benchmark.md).
bench-storyboard: $(ROOTS)
	$(PY) -m bench.storyboard

# Upload to manifest for the worker function and a Fargate task (docs/benchmark.md, "Lambda or Fargate").
bench-latency: $(ROOTS)
	$(PY) -m bench.latency

# A burst beyond the Fargate vCPU quota, a task per video against batches (README "Quotas and bursts").
bench-bursts: $(ROOTS)
	$(PY) -m bench.bursts

# Needs a Docker engine with buildx and AWS credentials: not runnable offline.
STACK ?= thumbnail-creator
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo latest)
PLATFORM ?= linux/arm64
# Checks each prerequisite first (ops/image_prereqs.py): a Docker engine with buildx, AWS
# credentials, the deployed stack and its WorkerRepositoryUri output. Not runnable offline.
image-check: $(ROOTS)
	@$(PY) -m ops.image_prereqs --stack $(STACK) --region $(REGION) >/dev/null && echo "make image: every prerequisite is there"

image: $(ROOTS)
	@repo=$$($(PY) -m ops.image_prereqs --stack $(STACK) --region $(REGION)) && \
	aws ecr get-login-password --region $(REGION) | docker login --username AWS --password-stdin $${repo%%/*} && \
	docker buildx build --platform $(PLATFORM) --provenance=false -t $$repo:$(TAG) --push container && \
	echo "Pushed $$repo:$(TAG). Deploy it: sam deploy --parameter-overrides WorkerImageTag=$(TAG)"

# After the first `sam build && sam deploy --guided`: push the worker image of this commit, deploy
# the stack with it, then relaunch whatever was uploaded meanwhile (the sweep). PARAMS= adds
# parameter overrides (on the command line they replace those saved in samconfig.toml).
PARAMS ?=
deploy:
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
		echo "make deploy needs a running Docker engine (with buildx) to build the worker image:"; \
		echo "  start Docker, or deploy by hand: sam build && sam deploy (README, Deploy to AWS)"; exit 1; }
	$(MAKE) image STACK=$(STACK) REGION=$(REGION) TAG=$(TAG) PLATFORM=$(PLATFORM)
	$(MAKE) sam-build
	$(VENV)/bin/sam deploy --stack-name $(STACK) --region $(REGION) --no-confirm-changeset \
		--parameter-overrides WorkerImageTag=$(TAG) $(PARAMS)
	$(PY) -m ops sweep --stack $(STACK) --region $(REGION) --apply

clean:
	rm -rf .aws-sam demo-output .fuzz-failures .local-stack .pytest_cache .mypy_cache .ruff_cache
