##@ Kubernetes (Helm chart and manifests)

CHART_DIR := charts/kuberay-llm
KUBERAY_VERSION ?= v1.7.0
# The KubeRay CRDs the chart's custom resources are validated against. CI and developers have them in
# ../shared; `make kuberay-crds` fetches them for everyone else (into .cache, gitignored).
KUBERAY_CRDS_DIR ?= $(if $(wildcard ../shared/kuberay-crds/$(KUBERAY_VERSION)),../shared/kuberay-crds/$(KUBERAY_VERSION),.cache/kuberay-crds/$(KUBERAY_VERSION))
export KUBERAY_CRDS_DIR
KUBERAY_CRDS := rayclusters rayjobs rayservices raycronjobs

.PHONY: generate
generate: venv tools ## Regenerate the chart's catalog copy, values.schema.json, README, Chart.lock and manifests/.
	HELM=$(HELM) $(VPY) -m hack.chartgen generate

.PHONY: chart-docs
chart-docs: venv ## Regenerate the chart README from the `# --` comments of values.yaml.
	$(VPY) -m hack.chartgen generate --no-manifests

.PHONY: manifests
manifests: venv tools ## Render manifests/ (seed RayJobs, RayServices, kind config) from the chart.
	HELM=$(HELM) $(VPY) -m hack.chartgen manifests

.PHONY: chart-check
chart-check: venv tools ## Fail if anything generated from the catalogs or the chart is out of date.
	HELM=$(HELM) $(VPY) -m hack.chartgen check

.PHONY: chart-deps
chart-deps: tools ## Fetch the kuberay-operator 1.7.0 chart per Chart.lock (needs its Helm repository).
	$(HELM) dependency build $(CHART_DIR)

.PHONY: kuberay-crds
kuberay-crds: ## Fetch the KubeRay v1.7.0 CRDs into .cache/kuberay-crds (when ../shared lacks them).
	@mkdir -p .cache/kuberay-crds/$(KUBERAY_VERSION)
	for crd in $(KUBERAY_CRDS); do \
	  curl -fsSL -o .cache/kuberay-crds/$(KUBERAY_VERSION)/ray.io_$$crd.yaml \
	    https://raw.githubusercontent.com/ray-project/kuberay/$(KUBERAY_VERSION)/ray-operator/config/crd/bases/ray.io_$$crd.yaml; \
	done

.PHONY: test-charts
test-charts: venv tools ## Chart tests: lint, render, CRD/core schemas, checkov, semantics, bad values, drift.
	$(VENV)/bin/pytest tests/charts -m "charts and not local" $(PYTEST_ARGS)
