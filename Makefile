# hookd — `make help` lists the targets.

GOLANGCI_LINT_VERSION := v2.15.0
REDOCLY_VERSION       := 2.77.0
BIN                   := $(CURDIR)/bin
GOLANGCI_LINT         := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
VERSION               ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ARGS                  ?=
BENCH_ARGS            ?=
FUZZTIME              ?= 30s

.DEFAULT_GOAL := help
.PHONY: help generate check-generated build run test fuzz lint bench bench-river bench-api postgres contract console console-deps clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

generate: ## Regenerate gen/ from openapi.yaml (oapi-codegen, pinned in go.mod)
	go generate .

check-generated: generate console ## Fail if gen/, the console build (or anything else) differs from a fresh `make generate console`
	@git add -N . && git diff --exit-code || { echo "gen/ or console/dist is stale, or files are uncommitted: run make generate console and commit"; exit 1; }

build: ## Build bin/hookd
	go build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/hookd ./cmd/hookd

run: build ## Start hookd on the embedded SQLite default (./data); extra flags in ARGS="..."
	$(BIN)/hookd serve $(ARGS)

postgres: ## Start the local PostgreSQL the tests use, if it is not running
	@./scripts/ensure-postgres.sh

test: postgres contract console-deps ## Run every test with the race detector (PostgreSQL and SQLite; the console's browser tests need chromium)
	go test -race -count=1 -timeout 15m ./...

contract: contract/node_modules/.package-lock.json ## Install the npm verifiers the contract tests run (contract/package-lock.json)

contract/node_modules/.package-lock.json: contract/package-lock.json
	cd contract && npm ci --no-audit --no-fund --loglevel=error

console-deps: console/node_modules/.package-lock.json ## Install the console's build and browser-test tools (console/package-lock.json)

console/node_modules/.package-lock.json: console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error

console: console-deps ## Rebuild the console (console/dist, embedded in hookd) from console/src: API types from openapi.yaml, type check, bundle
	cd console && npm run --silent gen && npm run --silent check && npm run --silent build

fuzz: ## Run every fuzz target for FUZZTIME each (default 30s; longer: make fuzz FUZZTIME=10m)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

$(GOLANGCI_LINT):
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

lint: $(GOLANGCI_LINT) ## go vet, golangci-lint and the OpenAPI lint (Redocly, from npm)
	go vet ./...
	go vet -tags river ./store ./delivery ./cmd/hookd
	$(GOLANGCI_LINT) run ./...
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint openapi.yaml

bench: postgres build ## Measure: API micro-benchmarks, then hookd end to end on PostgreSQL (docs/benchmarks.md)
	go test -run '^$$' -bench . -benchmem ./...
	go run ./cmd/hookd-bench --hookd $(BIN)/hookd $(BENCH_ARGS)

bench-river: postgres build ## Measure: hookd's own queue against the River variant (-tags river), alternating runs (docs/benchmarks.md)
	go build -tags river -ldflags "-X main.version=$(VERSION)" -o $(BIN)/hookd-river ./cmd/hookd
	for i in 1 2 3; do for b in hookd hookd-river; do echo "== $$b, run $$i"; go run ./cmd/hookd-bench --hookd $(BIN)/$$b $(BENCH_ARGS) || exit 1; done; done

bench-api: postgres build ## Measure: GET /v1/metrics and /v1/logs over 1,000,000 seeded messages on PostgreSQL
	go run ./cmd/hookd-bench --hookd $(BIN)/hookd --api-messages 1000000 $(BENCH_ARGS)

clean: ## Remove build output (not ./data)
	rm -rf $(BIN)
