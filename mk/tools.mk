##@ Tools

.PHONY: tools
tools: ## Install pinned tools into ./bin (placeholder until the chart tooling lands).
	@true
