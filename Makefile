# Tenant-isolated durable callback workflow: every command a user or CI runs.
# `make` alone prints this help.

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
STAMP        := $(VENV)/.installed-stamp
BUILD        := build
# Lambda target: python3.13 on arm64 (Graviton). Wheels are fetched for that
# platform, never compiled here, so the zip matches the runtime.
LAMBDA_PY    := 3.13
LAMBDA_PLAT  := manylinux2014_aarch64
FUNCTIONS    := workflow api authorizer
TF           ?= terraform
API_URL      ?= http://127.0.0.1:3000

.DEFAULT_GOAL := help
.PHONY: help venv build deploy destroy test test-unit test-local test-infra run demo bench fmt clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing development dependencies into $(VENV) ..."
	@$(VPY) -m pip install --quiet --upgrade pip
	@$(VPY) -m pip install --quiet -r requirements-dev.txt
	@$(VPY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP) ## Create .venv with runtime and test dependencies

build: $(STAMP) ## Build build/<function>.zip for Lambda python3.13 arm64
	@rm -rf $(BUILD) && mkdir -p $(BUILD)/deps
	@echo "Fetching python$(LAMBDA_PY) $(LAMBDA_PLAT) wheels ..."
	@$(VPY) -m pip install --quiet --target $(BUILD)/deps --platform $(LAMBDA_PLAT) \
		--implementation cp --python-version $(LAMBDA_PY) --only-binary=:all: \
		-r requirements.txt
	@for fn in $(FUNCTIONS); do \
		mkdir -p $(BUILD)/$$fn && cp -r $(BUILD)/deps/. $(BUILD)/$$fn/ && \
		cp -r src/shared src/$$fn $(BUILD)/$$fn/ && \
		find $(BUILD)/$$fn -name __pycache__ -type d -prune -exec rm -rf {} + && \
		$(VPY) -m scripts.deterministic_zip $(BUILD)/$$fn $(BUILD)/$$fn.zip && \
		echo "  $(BUILD)/$$fn.zip $$(du -h $(BUILD)/$$fn.zip | cut -f1)"; \
	done

deploy: build ## terraform init + apply (needs AWS credentials)
	$(TF) init -input=false
	$(TF) apply

destroy: ## terraform destroy
	$(TF) destroy

test: $(STAMP) ## Run every test: unit, local stack end to end, Terraform
	@$(VPY) -m pytest

test-unit: $(STAMP) ## Unit tests only (no network, no Terraform)
	@$(VPY) -m pytest tests/unit

test-local: $(STAMP) ## End-to-end tests against the local stack
	@$(VPY) -m pytest tests/local

test-infra: $(STAMP) ## Terraform checks (fmt, validate, plan, apply against moto, checkov)
	@$(VPY) -m pytest tests/infra

run: $(STAMP) ## Run the whole pattern locally on 127.0.0.1 (Ctrl-C stops)
	@$(VPY) -m local.stack $(RUN_ARGS)

demo: $(STAMP) ## Walk the full flow for two tenants against API_URL (default: local stack)
	@$(VPY) -m local.demo --api-url $(API_URL) $(DEMO_ARGS)

bench: $(STAMP) ## Benchmarks: print figures and write docs/benchmarks.md
	@$(VPY) -m bench.run

fmt: ## terraform fmt
	$(TF) fmt -recursive

clean: ## Remove build output, local state and the virtualenv
	rm -rf $(BUILD) .state $(VENV) .venv-checkov .pytest_cache .terraform src/*.egg-info
