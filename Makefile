# Switchboard: `make help` lists the targets.
#
# Build output goes outside the clone (shared by every checkout of this machine):
CARGO_TARGET_DIR ?= $(HOME)/.cache/switchboard/target
export CARGO_TARGET_DIR
# The Python venv with the real OpenAI/Anthropic SDKs (scripts/venv.sh):
SWITCHBOARD_VENV ?= $(HOME)/.cache/switchboard/venv
export SWITCHBOARD_VENV
# `make run`'s admin token (for /admin/v1/usage); set SWITCHBOARD_ADMIN_TOKEN to use another.
SWITCHBOARD_ADMIN_TOKEN ?= sk-switchboard-admin-dev
# Extra pytest arguments, e.g. `make sdk-test PYTEST_ARGS='-k hot_reload -x'`.
PYTEST_ARGS ?=

CARGO ?= cargo
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

.PHONY: help build run fake-upstream test sdk-test mcp-conformance resilience schemathesis venv lint fmt crds docs-tables console chart-lint bench bench-stats bench-operator bench-console bench-memory e2e clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build every crate's binaries (debug)
	$(CARGO) build --workspace --bins

run: ## Run the gateway standalone on 127.0.0.1:8080 with config/samples and sqlite://switchboard.db
	$(CARGO) run -p switchboard-gateway -- \
		--config-dir config/samples \
		--listen 127.0.0.1:8080 \
		--database-url 'sqlite://switchboard.db?mode=rwc' \
		--admin-token '$(SWITCHBOARD_ADMIN_TOKEN)'

fake-upstream: ## Run the fake OpenAI/Anthropic server on 127.0.0.1:18080 (serves `local-model` for `make run`)
	$(CARGO) run -p switchboard-fake-upstream -- --listen 127.0.0.1:18080

test: ## Run all tests: cargo tests (fuzz targets included), the MCP conformance suite, the resilience suite, schemathesis and the SDK tests, against SQLite, a throwaway PostgreSQL and Redis (installed if missing)
	scripts/test.sh all

sdk-test: ## Run only the Python SDK tests (tests/sdk), with a throwaway PostgreSQL and Redis
	scripts/test.sh sdk $(PYTEST_ARGS)

mcp-conformance: ## Run the MCP conformance suite (pinned, Node 22, both protocol revisions) against /mcp, with its baseline
	$(CARGO) build -p switchboard-gateway --bin switchboard-gateway
	scripts/mcp-conformance.sh

resilience: ## Run the resilience suite: the gateway binary against fake-upstream's faults, a slowloris, SIGTERM and kill -9 (prints docs/reliability.md's table)
	$(CARGO) build --workspace --bins
	python3 tests/resilience/run.py

schemathesis: ## Fuzz the HTTP API from docs/openapi.yaml with schemathesis (pinned; no 5xx, every answer as documented); also part of make test
	$(CARGO) build -p switchboard-gateway --bin switchboard-gateway
	scripts/schemathesis.sh

venv: ## Create/update the Python venv with the pinned SDKs (tests/sdk/requirements.txt)
	scripts/venv.sh

lint: ## Check formatting and clippy (warnings are errors), and that console/dist is what console/src builds to
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/console.sh check

docs-tables: ## Regenerate docs/api.md's field compatibility table from the translation's tables
	UPDATE_DOCS=1 $(CARGO) test -p switchboard-gateway --lib the_docs_table_is_made_from_these_tables

console: ## Rebuild the console (tsc, esbuild) into console/dist, which the gateway embeds; commit the result
	scripts/console.sh build

fmt: ## Format the Rust code
	$(CARGO) fmt --all

crds: ## Regenerate the CRD YAML in the Helm chart and docs/resources.md from the Rust types
	$(CARGO) run -p switchboard-crds --bin crdgen -- charts/switchboard/templates/crds docs/resources.md

chart-lint: ## Lint the Helm chart, kustomize bases and Argo CD example (helm lint, kubeconform on local schemas)
	scripts/chart-lint.sh

bench: ## Benchmark the fake upstream directly, a bare nginx hop, the gateway and LiteLLM's proxy (wrk), print the tables (docs/benchmarks.md)
	bench/run.sh

bench-stats: ## Time /admin/v1/stats and /admin/v1/costs over 10 million logged requests on SQLite and PostgreSQL (BENCH_STATS_ROWS=N for fewer; docs/benchmarks.md)
	bench/stats.sh

bench-operator: ## Scale benchmark of the operator and the in-cluster gateway on the e2e apiserver (BENCH_ARGS='--scale 0.05' for a quick run; docs/benchmarks.md)
	python3 bench/operator_scale $(BENCH_ARGS)

bench-console: ## The console's views in headless Chromium with 10,000 tenants behind them: load times per view (BENCH_ARGS='--tenants 1000' for fewer)
	scripts/venv.sh >/dev/null
	$(SWITCHBOARD_VENV)/bin/python bench/console.py $(BENCH_ARGS)

bench-memory: ## Persona memory retrieval with a real embedding model: Recall@5 by meaning and by words, recall latency at 10,000 memories (BENCH_ARGS='--db sqlite --crowd 1000' for less; docs/personas.md)
	scripts/venv.sh >/dev/null
	$(SWITCHBOARD_VENV)/bin/python bench/memory/run.py $(BENCH_ARGS)

e2e: ## End-to-end tests on a real kube-apiserver + etcd, operator, gateway, OpenAI SDK (scripts/e2e.sh)
	scripts/e2e.sh $(PYTEST_ARGS)

clean: ## Remove build output and the local SQLite ledger of `make run`
	$(CARGO) clean
	rm -f switchboard.db switchboard.db-shm switchboard.db-wal
