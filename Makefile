# tensorflow-serving: Helm chart + tfsctl release toolkit.
# `make help` lists the targets. Nothing needs activating: the venv's and
# .tools/bin's binaries are first on PATH for every recipe.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV      := $(ROOT)/.venv
PY        := $(VENV)/bin/python
TOOLS_BIN := $(ROOT)/.tools/bin
TOOLCHAIN := PYTHONPATH=$(ROOT)/tools python3 -m tfsbed.toolchain
export PATH := $(TOOLS_BIN):$(VENV)/bin:$(PATH)
# The local cluster's kubeconfig, unless KUBECONFIG already names another cluster.
KUBECONFIG ?= $(ROOT)/.tools/kubeconfig
export KUBECONFIG

CHART     ?= charts/tensorflow-serving
RELEASE   ?= tfs
NAMESPACE ?= tfs
VALUES    ?= values/local.yaml
REPORTS   ?= $(ROOT)/reports
PYTEST_ARGS ?=
MODEL     ?=
LABEL     ?=
VERSION   ?=
SPEC      ?=
REPLICAS  ?=
SOURCE    ?=
DEST      ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Set-up

.PHONY: setup
setup: $(VENV)/.installed tools ## Create .venv (pinned by requirements.lock) and build pinned tools into .tools/bin

$(TOOLS_BIN)/uv:
	@$(TOOLCHAIN) ensure uv

$(VENV)/.installed: requirements.lock pyproject.toml tools/tfsbed/pyproject.toml | $(TOOLS_BIN)/uv
	@echo "setup: creating .venv from requirements.lock" >&2
	@[ -x $(PY) ] || $(TOOLS_BIN)/uv venv -q --python python3 $(VENV)
	@$(TOOLS_BIN)/uv pip sync -q --python $(PY) requirements.lock
	@$(TOOLS_BIN)/uv pip install -q --python $(PY) --no-deps -e . -e tools/tfsbed
	@touch $@

.PHONY: tools
tools: ## Build (once, cached by version) helm and helm-docs into .tools/bin
	@$(TOOLCHAIN) ensure helm helm-docs

.PHONY: cluster-tools
cluster-tools: ## Build (once, cached by version) Kubernetes, etcd, kwok and metrics-server
	@$(TOOLCHAIN) ensure kubernetes etcd kwok metrics-server

.PHONY: node-tools
node-tools: ## Real nodes' tools: CoreDNS, the registry, Prometheus, prometheus-adapter, MetalLB, Traefik (built once), Debian's containerd, runc, CNI, umoci, skopeo
	@$(TOOLCHAIN) ensure kubernetes coredns registry prometheus prometheus-adapter metallb traefik
	@$(TOOLCHAIN) debian

.PHONY: lock
lock: | $(TOOLS_BIN)/uv ## Re-resolve requirements.lock from pyproject.toml
	$(TOOLS_BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -q -o requirements.lock

##@ Main job

.PHONY: demo
demo: setup ## Run the main job end to end on the local default
	$(PY) -m tfsctl demo --reports $(REPORTS)

##@ Quality

# The cluster's tools are built here, not inside the e2e fixture: a first build
# takes minutes and must not count against a test's timeout. The unit and chart suites
# share out over every core (pytest-xdist). The e2e suite mostly waits (kubelet syncs,
# pod starts, HPA windows), so it runs on E2E_WORKERS workers sharing one cluster, a
# whole file per worker at a time (module fixtures set up once), longest files first
# (LONGEST_FIRST in tests/e2e/conftest.py). Each run ends with its slowest tests: where
# to look first when CI nears its time target.
E2E_WORKERS ?= 2
.PHONY: test
test: setup cluster-tools node-tools ## Run lint and every test suite (unit, chart, e2e)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -n auto --durations=10 tests/unit tests/chart $(PYTEST_ARGS)
	$(PY) -m pytest -n $(E2E_WORKERS) --dist loadfile --no-loadscope-reorder --durations=40 tests/e2e $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup ## Unit tests only (no helm, no cluster)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-chart
test-chart: setup ## Chart render, schema and bad-values tests
	$(PY) -m pytest tests/chart $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## ruff, mypy, helm lint --strict and the chart README check
	$(PY) -m ruff check tools tests loadtest
	$(PY) -m ruff format --check tools tests loadtest
	$(PY) -m mypy
	helm lint --strict $(CHART)
	$(MAKE) --no-print-directory verify-docs

.PHONY: fmt
fmt: setup ## Format Python sources with ruff
	$(PY) -m ruff format tools tests loadtest
	$(PY) -m ruff check --fix tools tests loadtest

.PHONY: docs
docs: setup ## Regenerate the chart README from values.yaml comments
	helm-docs --chart-search-root charts --template-files README.md.gotmpl

.PHONY: verify-docs
verify-docs: setup ## Fail when the chart README is stale
	@tmp=$$(mktemp -d); cp -r charts "$$tmp/"; \
	  (cd "$$tmp" && helm-docs --chart-search-root charts --template-files README.md.gotmpl >/dev/null 2>&1); \
	  if ! diff -u $(CHART)/README.md "$$tmp/$(CHART)/README.md"; then \
	    echo "verify-docs: $(CHART)/README.md is stale: run 'make docs'" >&2; rm -rf "$$tmp"; exit 1; fi; \
	  rm -rf "$$tmp"

.PHONY: bench
bench: setup ## Run the benchmarks and write reports/bench.md
	$(PY) -m tfsbed.bench --out $(REPORTS)/bench.md

.PHONY: dist
dist: | $(TOOLS_BIN)/uv ## Build the wheel and sdist into dist/ (the chart and locustfile ride inside)
	rm -rf $(ROOT)/dist
	$(TOOLS_BIN)/uv build -q --sdist --wheel -o $(ROOT)/dist $(ROOT)
	@ls -1 $(ROOT)/dist

##@ Cluster and releases

.PHONY: cluster-up
cluster-up: setup ## Start the local cluster (pinned control plane, kwok nodes, a real node; as root)
	$(PY) -m tfsctl cluster up

.PHONY: cluster-down
cluster-down: setup ## Stop and delete the local cluster
	$(PY) -m tfsctl cluster down

.PHONY: deploy
deploy: setup ## Install or upgrade RELEASE with VALUES
	$(PY) -m tfsctl deploy --release $(RELEASE) --namespace $(NAMESPACE) -f $(VALUES)

.PHONY: status
status: setup ## Per-pod view of which model versions and labels each replica serves
	$(PY) -m tfsctl status --release $(RELEASE) --namespace $(NAMESPACE)

.PHONY: scale
scale: setup ## Set REPLICAS on RELEASE
	$(PY) -m tfsctl scale --release $(RELEASE) --namespace $(NAMESPACE) --replicas $(REPLICAS)

.PHONY: promote
promote: setup ## Move LABEL of MODEL to VERSION on every replica (two-phase)
	$(PY) -m tfsctl promote --release $(RELEASE) --namespace $(NAMESPACE) $(MODEL) $(LABEL) $(VERSION)

.PHONY: canary
canary: setup ## Judge VERSION of MODEL under the canary label, then promote stable or revert (SPEC= a check spec)
	$(PY) -m tfsctl canary --release $(RELEASE) --namespace $(NAMESPACE) $(MODEL) $(VERSION) \
	  $(if $(SPEC),--spec $(SPEC)) --report $(REPORTS)/canary

.PHONY: rollback
rollback: setup ## Put LABEL of MODEL back to its previous version
	$(PY) -m tfsctl rollback --release $(RELEASE) --namespace $(NAMESPACE) $(MODEL) $(LABEL)

.PHONY: upload
upload: setup ## Publish SOURCE (a SavedModel dir) as a new version under DEST
	$(PY) -m tfsctl upload $(SOURCE) $(DEST)

.PHONY: verify-autoscaling
verify-autoscaling: setup ## Load RELEASE and verify its HPA scales out and back in
	$(PY) -m tfsctl verify-autoscaling --release $(RELEASE) --namespace $(NAMESPACE) --report $(REPORTS)/autoscaling

.PHONY: clean
clean: ## Remove .venv, .tools links and reports (the build cache is kept)
	rm -rf $(VENV) .tools reports
