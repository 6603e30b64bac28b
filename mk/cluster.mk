##@ Cluster (kind on a laptop, or the cluster your kubeconfig points at)

# Pinned tools, downloaded into ./bin with their published checksums (see docs/quickstart.md).
KIND_VERSION ?= v0.33.0
# A node image built for that kind release (its release notes list them with digests).
KIND_NODE_IMAGE ?= kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0
KUBECTL_VERSION ?= v1.35.8
KIND ?= $(CURDIR)/bin/kind
KUBECTL ?= $(CURDIR)/bin/kubectl
# Defined again in mk/tools.mk; set here too because prerequisites expand as this file is read.
HELM ?= $(CURDIR)/bin/helm
TOOLS_OS := $(shell uname -s | tr A-Z a-z)
TOOLS_ARCH := $(shell uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')

KIND_CLUSTER ?= kuberay-llm
# The kind config generated from the accelerator catalog (make manifests): a CPU worker and
# workers labelled and tainted like L4 and H100 pools.
KIND_CONFIG ?= manifests/kind-config.yaml
# >0: advertise that many fake nvidia.com/gpu on the fake accelerator nodes, so GPU worker
# groups schedule there (they cannot run CUDA; use it to check placement only).
KIND_FAKE_GPUS ?= 0

NAMESPACE ?= kuberay-llm
# The repository of the chart's kuberay-operator dependency (Chart.yaml); helm needs it added.
KUBERAY_HELM_REPO ?= https://ray-project.github.io/kuberay-helm/
RELEASE ?= kuberay-llm
# Values of the release: the kind/CPU scenario by default; a cloud one for GPU clusters,
# e.g. CLUSTER_VALUES=charts/kuberay-llm/ci/gke-l4-values.yaml IMAGE_KIND=gpu.
CLUSTER_VALUES ?= $(CHART_DIR)/ci/cpu-local-values.yaml
HELM_ARGS ?=
# The chart's resource prefix (its kuberay-llm.fullname helper).
FULLNAME := $(if $(findstring kuberay-llm,$(RELEASE)),$(RELEASE),$(RELEASE)-kuberay-llm)
# The image every Ray pod runs: the chart's one image value, from mk/images.mk, with the builtin models it bakes.
_image_values = --set image.repository=$(IMAGE_REPOSITORY) --set image.tag=$(IMAGE_VERSION)-$(IMAGE_KIND) \
  $(if $(BAKED_MODELS),--set 'image.bakedModels={$(BAKED_MODELS)}')

# The CPU image bakes BAKE_MODEL_CPU (SmolLM2) under /opt/kuberay-llm/models; with IMAGE_KIND=cpu the
# first served model and the submitted job run from that folder, so no pod needs the network or a
# writable model cache. CPU_MODEL_SOURCE= (empty) keeps the values' own model sources.
CPU_MODEL_SOURCE ?= $(if $(BAKE_MODEL_CPU),/opt/kuberay-llm/models/$(if $(filter builtin:%,$(BAKE_MODEL_CPU)),$(patsubst builtin:%,%,$(BAKE_MODEL_CPU)),hf/$(BAKE_MODEL_CPU)))
_cpu_model = $(and $(filter cpu,$(IMAGE_KIND)),$(CPU_MODEL_SOURCE))
_serve_model_values = $(if $(_cpu_model),--set 'serving.catalog.models[0].source=$(CPU_MODEL_SOURCE)')
_job_model_values = $(if $(_cpu_model),--set 'batchJobs.$(NAME).spec.model.source=$(CPU_MODEL_SOURCE)')

# batch-submit: NAME picks a job of CLUSTER_VALUES' batchJobs, or names a new one whose spec
# is the file JOB_SPEC (e.g. JOB_SPEC=jobs/examples/sentiment.yaml; with IMAGE_KIND=cpu it runs
# with engine.device=cpu, on GPU clusters the spec names its engine.accelerator_type).
NAME ?=
JOB_SPEC ?=
BATCH_TIMEOUT ?= 3600
SERVE_TIMEOUT ?= 1800
CLUSTER_PORT ?= 8000
CLUSTER_MODEL ?= smollm2-135m-instruct

$(KIND):
	@mkdir -p bin
	curl -fsSLo $@.tmp https://kind.sigs.k8s.io/dl/$(KIND_VERSION)/kind-$(TOOLS_OS)-$(TOOLS_ARCH)
	echo "$$(curl -fsSL https://kind.sigs.k8s.io/dl/$(KIND_VERSION)/kind-$(TOOLS_OS)-$(TOOLS_ARCH).sha256sum | cut -d' ' -f1)  $@.tmp" | sha256sum -c -
	chmod +x $@.tmp && mv $@.tmp $@

$(KUBECTL):
	@mkdir -p bin
	curl -fsSLo $@.tmp https://dl.k8s.io/release/$(KUBECTL_VERSION)/bin/$(TOOLS_OS)/$(TOOLS_ARCH)/kubectl
	echo "$$(curl -fsSL https://dl.k8s.io/release/$(KUBECTL_VERSION)/bin/$(TOOLS_OS)/$(TOOLS_ARCH)/kubectl.sha256)  $@.tmp" | sha256sum -c -
	chmod +x $@.tmp && mv $@.tmp $@

.PHONY: cluster-tools
cluster-tools: $(KIND) $(KUBECTL) $(HELM) ## Download pinned kind, kubectl (and helm) into ./bin.

.PHONY: kind-up
kind-up: $(KIND) $(KUBECTL) ## Create a kind cluster whose workers carry fake accelerator-pool labels (KIND_FAKE_GPUS=1 adds fake GPUs).
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG) --image $(KIND_NODE_IMAGE) --wait 180s
	$(KUBECTL) config use-context kind-$(KIND_CLUSTER)
	@if [ "$(KIND_FAKE_GPUS)" != 0 ]; then \
	  for node in $$($(KUBECTL) get nodes -l 'kuberay-llm/pool,kuberay-llm/pool!=cpu' -o name); do \
	    $(KUBECTL) patch $$node --subresource=status --type=json \
	      -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"$(KIND_FAKE_GPUS)"}]'; \
	  done; \
	fi
	$(KUBECTL) get nodes -L kuberay-llm/pool,nvidia.com/gpu.product,cloud.google.com/gke-accelerator

.PHONY: kind-load
kind-load: $(KIND) ## Load the image of IMAGE_KIND (make image first) into the kind nodes.
	@img=$(if $(filter gpu,$(IMAGE_KIND)),$(IMG_GPU),$(IMG_CPU)); \
	if [ "$(CONTAINER_TOOL)" = docker ]; then \
	  $(KIND) load docker-image "$$img" --name $(KIND_CLUSTER); \
	else \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(CONTAINER_TOOL) save -o "$$tmp/image.tar" "$$img" && $(KIND) load image-archive "$$tmp/image.tar" --name $(KIND_CLUSTER); \
	fi

.PHONY: install
install: $(KUBECTL) $(HELM) ## Install the KubeRay operator and the chart (CLUSTER_VALUES; serving off until serve-deploy).
	$(HELM) repo add kuberay $(KUBERAY_HELM_REPO) --force-update
	$(HELM) dependency build $(CHART_DIR)
	$(HELM) upgrade --install $(RELEASE) $(CHART_DIR) -n $(NAMESPACE) --create-namespace \
	  -f $(CLUSTER_VALUES) --set kuberay-operator.enabled=true --set serving.enabled=false --set batchJobs=null \
	  $(_image_values) $(HELM_ARGS) --wait --timeout 10m
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment -l app.kubernetes.io/name=kuberay-operator --timeout 5m

# Renders the chart's RayJob and ConfigMap of job NAME (a batchJobs entry of CLUSTER_VALUES, or
# JOB_SPEC's), keeping only that job's objects. Shared by batch-render and batch-submit.
_render_job = if [ -n "$(JOB_SPEC)" ]; then \
	  { printf 'batchJobs:\n  %s:\n    spec:\n' '$(NAME)'; sed 's/^/      /' '$(JOB_SPEC)'; } > "$$tmp/job.yaml"; \
	else echo '{}' > "$$tmp/job.yaml"; fi; \
	$(HELM) template $(RELEASE) $(CHART_DIR) -n $(NAMESPACE) -f $(CLUSTER_VALUES) -f "$$tmp/job.yaml" \
	  --set kuberay-operator.enabled=false --set serving.enabled=false $(_image_values) $(HELM_ARGS) \
	  $(if $(and $(JOB_SPEC),$(filter cpu,$(IMAGE_KIND))),--set batchJobs.$(NAME).spec.engine.device=cpu) $(_job_model_values) \
	  $(if $(JOB_SPEC),--set batchJobs.$(NAME).spec.output.path=/results/$(NAME)) \
	  --show-only templates/configmap-job.yaml --show-only templates/rayjob.yaml > "$$tmp/all.yaml"; \
	awk -v name='$(NAME)' 'BEGIN { RS = "(^|\n)---\n" } $$0 ~ ("kuberay-llm/job: " name "(\n|$$)") { printf "---\n%s\n", $$0 }' "$$tmp/all.yaml"

.PHONY: batch-render
batch-render: $(HELM) ## Print the RayJob and ConfigMap that batch-submit applies (NAME=..., JOB_SPEC=...).
	@test -n "$(NAME)" || { echo "usage: make batch-render NAME=<job> [JOB_SPEC=jobs/examples/<job>.yaml]" >&2; exit 2; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; $(_render_job)

.PHONY: batch-submit
batch-submit: $(KUBECTL) $(HELM) ## Submit a batch job as a RayJob (kubectl apply) and wait for it: NAME=questions [JOB_SPEC=file].
	@test -n "$(NAME)" || { echo "usage: make batch-submit NAME=<job> [JOB_SPEC=jobs/examples/<job>.yaml]"; exit 2; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(_render_job) > "$$tmp/job-objects.yaml"; \
	$(KUBECTL) -n $(NAMESPACE) delete rayjob -l kuberay-llm/job=$(NAME) --ignore-not-found --wait; \
	$(KUBECTL) -n $(NAMESPACE) apply -f "$$tmp/job-objects.yaml" -o name | tee "$$tmp/applied"; \
	rayjob=$$(sed -n 's|^rayjob.ray.io/||p' "$$tmp/applied"); \
	test -n "$$rayjob" || { echo "no batch job '$(NAME)' rendered; pass JOB_SPEC=<job spec file>"; exit 2; }; \
	deadline=$$(( $$(date +%s) + $(BATCH_TIMEOUT) )); last=; \
	while :; do \
	  state=$$($(KUBECTL) -n $(NAMESPACE) get rayjob "$$rayjob" -o jsonpath='{.status.jobDeploymentStatus}/{.status.jobStatus}'); \
	  [ "$$state" = "$$last" ] || echo "rayjob/$$rayjob: $$state"; last=$$state; \
	  case "$$state" in \
	    Complete/SUCCEEDED) break ;; \
	    Failed/*|Complete/*) $(KUBECTL) -n $(NAMESPACE) logs job/$$rayjob --tail=60 || true; exit 1 ;; \
	  esac; \
	  [ "$$(date +%s)" -lt "$$deadline" ] || { echo "timed out after $(BATCH_TIMEOUT)s"; exit 1; }; \
	  sleep 10; \
	done; \
	$(KUBECTL) -n $(NAMESPACE) logs job/$$rayjob --tail=40

.PHONY: serve-deploy
serve-deploy: $(KUBECTL) $(HELM) ## Turn on the RayService of the model catalog in CLUSTER_VALUES and wait until it is Ready.
	$(HELM) upgrade --install $(RELEASE) $(CHART_DIR) -n $(NAMESPACE) --create-namespace \
	  -f $(CLUSTER_VALUES) --set kuberay-operator.enabled=true --set serving.enabled=true --set batchJobs=null \
	  $(_image_values) $(_serve_model_values) $(HELM_ARGS)
	$(KUBECTL) -n $(NAMESPACE) wait rayservice/$(FULLNAME) --for=condition=Ready --timeout=$(SERVE_TIMEOUT)s
	$(KUBECTL) -n $(NAMESPACE) get rayservice $(FULLNAME)

.PHONY: port-forward
port-forward: $(KUBECTL) ## Forward 127.0.0.1:CLUSTER_PORT to the OpenAI API of the RayService (Ctrl-C stops).
	$(KUBECTL) -n $(NAMESPACE) port-forward svc/$(FULLNAME)-openai $(CLUSTER_PORT):8000

.PHONY: cluster-query
cluster-query: $(KUBECTL) ## Send one chat completion to the RayService through a temporary port-forward.
	@set -e; $(KUBECTL) -n $(NAMESPACE) port-forward svc/$(FULLNAME)-openai $(CLUSTER_PORT):8000 >/dev/null & pf=$$!; \
	trap 'kill $$pf' EXIT; \
	for i in $$(seq 30); do curl -fs -o /dev/null http://127.0.0.1:$(CLUSTER_PORT)/v1/models && break; sleep 1; done; \
	curl -fsS http://127.0.0.1:$(CLUSTER_PORT)/v1/models; echo; \
	curl -fsS http://127.0.0.1:$(CLUSTER_PORT)/v1/chat/completions -H 'Content-Type: application/json' \
	  -d '{"model": "$(CLUSTER_MODEL)", "messages": [{"role": "user", "content": "$(QUERY_PROMPT)"}], "max_tokens": 64, "temperature": 0}'; echo

.PHONY: logs
logs: $(KUBECTL) ## Logs: NAME=<job> shows that RayJob's driver output; without NAME, the Ray head pods of the release.
	@if [ -n "$(NAME)" ]; then \
	  $(KUBECTL) -n $(NAMESPACE) logs job/$$($(KUBECTL) -n $(NAMESPACE) get rayjob -l kuberay-llm/job=$(NAME) -o jsonpath='{.items[0].metadata.name}') --tail=200; \
	else \
	  $(KUBECTL) -n $(NAMESPACE) logs -l app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component=ray-head --prefix --tail=100 -c ray-head; \
	fi

.PHONY: uninstall
uninstall: $(KUBECTL) $(HELM) ## Delete the RayJobs and uninstall the release (operator included).
	$(KUBECTL) -n $(NAMESPACE) delete rayjob -l app.kubernetes.io/instance=$(RELEASE) --ignore-not-found --wait
	$(KUBECTL) -n $(NAMESPACE) delete configmap -l app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component=batch --ignore-not-found
	$(HELM) uninstall $(RELEASE) -n $(NAMESPACE) --wait --ignore-not-found

.PHONY: down
down: $(KIND) ## Delete the kind cluster.
	$(KIND) delete cluster --name $(KIND_CLUSTER)

##@ Docs and observability

DIAGRAMS := $(patsubst %.dot,%,$(wildcard docs/diagrams/*.dot))

.PHONY: dashboards
dashboards: ## Regenerate the Grafana dashboards (dashboards/*.json) from dashboards/build.py.
	$(PYTHON) dashboards/build.py

.PHONY: diagrams
diagrams: ## Render docs/diagrams/*.dot to SVG and PNG (needs Graphviz `dot`).
	@for d in $(DIAGRAMS); do dot -Tsvg $$d.dot -o $$d.svg && dot -Tpng -Gdpi=110 $$d.dot -o $$d.png && echo "rendered $$d.{svg,png}"; done
