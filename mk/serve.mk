##@ Serving

SERVE_CATALOG ?= serve_apps/examples/local-cpu.yaml
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
QUERY_PROMPT ?= Hello!

.PHONY: serve
serve: model ## Serve the OpenAI API on local Ray at http://127.0.0.1:8000/v1, SmolLM2 on CPU (SERVE_CATALOG=..., SERVE_PORT=...; Ctrl-C stops).
	$(VPY) -m serve_apps serve --config $(SERVE_CATALOG) --host $(SERVE_HOST) --port $(SERVE_PORT)

.PHONY: query
query: ## Stream the example chat ("Hello!") from the running `make serve` with the openai client.
	$(VPY) -m serve_apps query --base-url http://$(SERVE_HOST):$(SERVE_PORT)/v1 "$(QUERY_PROMPT)"

.PHONY: serve-validate
serve-validate: ## Validate a model catalog and print the Ray Serve LLMConfigs it builds (SERVE_CATALOG=...).
	$(VPY) -m serve_apps validate --config $(SERVE_CATALOG)
