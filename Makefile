# Tenant-isolated durable callback workflow: every command a user or CI runs.
# `make` alone prints this help.

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
# One pinned requirement set per purpose, one stamp each: `make run` installs
# only what running needs; `make test` and `make bench` add their sets on top.
# uv makes and fills every virtualenv (and fetches the Lambda wheels): on a clean clone
# it installs the sets in seconds where pip took over a minute. It is pinned here and
# installed once with pip into its own virtualenv; it compiles nothing (Python compiles
# and caches the modules that are imported, on first import) and never downloads a
# Python: the virtualenvs use this machine's interpreters.
UV_VERSION   := 0.13.9
UV_VENV      := .venv-uv
UV           := $(UV_VENV)/bin/uv
UV_STAMP     := $(UV_VENV)/.stamp-$(UV_VERSION)
export UV_PYTHON_DOWNLOADS := never
INSTALL       = $(UV) pip install --quiet --python
RUN_STAMP    := $(VENV)/.stamp-run
TEST_STAMP   := $(VENV)/.stamp-test
BENCH_STAMP  := $(VENV)/.stamp-bench
BUILD        := build
# Lambda target: python3.13 on arm64 (Graviton). Wheels are fetched for that
# platform, never compiled here, so the zip matches the runtime.
LAMBDA_PY    := 3.13
LAMBDA_PLAT  := aarch64-manylinux2014
# The runtime's own Python compiles the zips' bytecode and runs the unit suite
# a second time: python3.13 on PATH, else the newest 3.13 under pyenv. Pass
# RUNTIME_PYTHON=/path/to/python3.13 to choose one (a path that does not run
# CPython 3.13 means none). RUNTIME_PY is that interpreter or empty, looked up
# once, and only by the targets that use it.
RUNTIME_PYTHON ?=
RUNTIME_PY    = $(eval RUNTIME_PY := $$(shell proving-ground/scripts/runtime_python.sh $(LAMBDA_PY) $(RUNTIME_PYTHON)))$(RUNTIME_PY)
RUNTIME_VENV := .venv-$(LAMBDA_PY)
RUNTIME_VPY  := $(RUNTIME_VENV)/bin/python
RUNTIME_STAMP := $(RUNTIME_VENV)/.stamp-test
# Measured by proving-ground/scripts/measure_cold_start.py: the workflow function ready to serve (import, init, the SDK's Lambda client).
NO_BYTECODE_NOTE := make build: no python$(LAMBDA_PY) found (PATH, pyenv or RUNTIME_PYTHON), so the zips ship source only and every cold start compiles each module it imports: the workflow function is ready about 2.7x later, roughly +0.7 s for each tenant's new environment
FUNCTIONS    := workflow api authorizer control provisioner router
TF           ?= terraform
API_URL      ?= http://127.0.0.1:3000

.DEFAULT_GOAL := help
# test and test-unit name the python3.13 virtualenv as a prerequisite only when
# there is a python3.13 (decided when those targets are considered).
.SECONDEXPANSION:
.PHONY: help venv build deploy destroy tenants check test test-unit test-local test-infra test-aws run demo bench fmt clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV_STAMP):
	@echo "Installing uv $(UV_VERSION), which makes every virtualenv here, into $(UV_VENV) ..."
	@rm -rf $(UV_VENV) && $(PYTHON) -m venv $(UV_VENV)
	@$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	@touch $@

$(RUN_STAMP): requirements.txt proving-ground/requirements-run.txt pyproject.toml | $(UV_STAMP)
	@test -x $(VPY) || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@echo "Installing what running needs (proving-ground/requirements-run.txt) into $(VENV) ..."
	@$(INSTALL) $(VPY) -r proving-ground/requirements-run.txt
	@$(INSTALL) $(VPY) --no-deps -e .
	@touch $@

$(TEST_STAMP): $(RUN_STAMP) proving-ground/requirements-test.txt
	@echo "Installing the test toolchain (proving-ground/requirements-test.txt) into $(VENV) ..."
	@$(INSTALL) $(VPY) -r proving-ground/requirements-test.txt
	@touch $@

$(BENCH_STAMP): $(RUN_STAMP) proving-ground/requirements-bench.txt
	@echo "Installing the benchmark toolchain (proving-ground/requirements-bench.txt) into $(VENV) ..."
	@$(INSTALL) $(VPY) -r proving-ground/requirements-bench.txt
	@touch $@

# The unit suite's second interpreter: its own virtualenv, same pinned sets.
$(RUNTIME_STAMP): requirements.txt proving-ground/requirements-run.txt proving-ground/requirements-test.txt pyproject.toml | $(UV_STAMP)
	@test -x $(RUNTIME_VPY) || $(UV) venv --quiet --python "$(RUNTIME_PY)" $(RUNTIME_VENV)
	@echo "Installing proving-ground/requirements-test.txt into $(RUNTIME_VENV) (python$(LAMBDA_PY), the Lambda runtime's) ..."
	@$(INSTALL) $(RUNTIME_VPY) -r proving-ground/requirements-test.txt
	@$(INSTALL) $(RUNTIME_VPY) --no-deps -e .
	@touch $@

venv: $(TEST_STAMP) $(BENCH_STAMP) ## Create .venv with every requirement set (run, test, bench)

# Bytecode: unchecked-hash .pyc files hold the source's hash, not its mtime, and
# are never re-validated at import (Lambda's task directory is read-only, so it
# could not write them anyway). Their bytes are reproducible: PYTHONHASHSEED=0,
# and the paths they record are Lambda's (/var/task/...), not this build directory's.
COMPILE = PYTHONHASHSEED=0 "$(RUNTIME_PY)" -m compileall -q -j 0 --invalidation-mode unchecked-hash

# Every zip is the same common layer (the Lambda wheels and src/shared, zipped once as
# build/common.zip) followed by its function's package (src/<function>), appended.
build: $(RUN_STAMP) ## Build build/<function>.zip for Lambda python3.13 arm64 (with python3.13 bytecode)
	@rm -rf $(BUILD) && mkdir -p $(BUILD)/common
	@echo "Fetching python$(LAMBDA_PY) $(LAMBDA_PLAT) wheels ..."
	@$(INSTALL) $(VPY) --target $(BUILD)/common --python-platform $(LAMBDA_PLAT) \
		--python-version $(LAMBDA_PY) --only-binary :all: -r requirements.txt
	@rm -f $(BUILD)/common/.lock  # uv's lock on the target directory, not a package file
	@cp -r src/shared $(BUILD)/common/
	@find $(BUILD)/common -name __pycache__ -type d -prune -exec rm -rf {} +
	@if [ -n "$(RUNTIME_PY)" ]; then \
		echo "Compiling bytecode with $(RUNTIME_PY) ..." && $(COMPILE) -s $(BUILD)/common -p /var/task $(BUILD)/common; \
	else \
		echo "$(NO_BYTECODE_NOTE)"; \
	fi
	@$(VPY) -m scripts.deterministic_zip $(BUILD)/common $(BUILD)/common.zip
	@for fn in $(FUNCTIONS); do \
		mkdir -p $(BUILD)/$$fn && cp -r src/$$fn $(BUILD)/$$fn/ && \
		find $(BUILD)/$$fn -name __pycache__ -type d -prune -exec rm -rf {} + && \
		{ [ -z "$(RUNTIME_PY)" ] || $(COMPILE) -s $(BUILD)/$$fn -p /var/task $(BUILD)/$$fn; } && \
		$(VPY) -m scripts.deterministic_zip --base $(BUILD)/common.zip $(BUILD)/$$fn $(BUILD)/$$fn.zip && \
		echo "  $(BUILD)/$$fn.zip $$(du -h $(BUILD)/$$fn.zip | cut -f1)"; \
	done

# The demo tenants are onboarded through the admin API after the apply (never by
# Terraform: their keys would be in the state): their keys go to .state/api-keys.json
# (mode 0600). create_demo_tenants = false in terraform.tfvars skips it.
deploy: build ## terraform init + apply, then onboard the demo tenants with tenantctl (needs AWS credentials)
	$(TF) init -input=false
	$(TF) apply
	@if [ "$$($(TF) output -raw create_demo_tenants)" = "true" ]; then \
		$(VPY) -m tenantctl --api-url "$$($(TF) output -raw api_url)" --region "$$($(TF) output -raw aws_region)" \
			create-demo --keys-file .state/api-keys.json; \
	fi

# Every tenant is offboarded first (its key, queue and rule are runtime resources
# Terraform does not know, and EventBridge refuses to delete a bus with rules).
destroy: ## offboard every tenant with tenantctl, then terraform destroy
	@if url=$$($(TF) output -raw api_url 2>/dev/null) && [ -n "$$url" ]; then \
		$(VPY) -m tenantctl --api-url "$$url" --region "$$($(TF) output -raw aws_region)" delete-all; \
	fi
	$(TF) destroy

tenants: $(RUN_STAMP) ## Operator CLI: make tenants ARGS="--local list" (python -m tenantctl --help)
	@$(VPY) -m tenantctl $(ARGS)

# The unit suite runs under the development interpreter and, when there is one,
# under the Lambda runtime's Python too; both runs happen even if the first fails.
# `make test-unit` runs them one after the other.
NO_RUNTIME_PY_NOTE = No python$(LAMBDA_PY) found (PATH, pyenv or RUNTIME_PYTHON): the unit suite ran under $$($(VPY) -V) only.
define unit_suite_on_runtime_python
	if [ -n "$(RUNTIME_PY)" ]; then \
		echo "Unit suite under python$(LAMBDA_PY), the Lambda runtime's Python ($(RUNTIME_VENV)):"; \
		$(RUNTIME_VPY) -m pytest -q $(PARALLEL) tests/unit || status=1; \
	else \
		echo "$(NO_RUNTIME_PY_NOTE)"; \
	fi
endef
# `make test` starts the python3.13 run first, in the background at a low CPU priority
# (nice), in one process with a temporary directory of its own: it takes the CPU the main
# suite leaves idle while its stacks and Terraform wait, so it adds little to the wall time.
# Its output is printed once the main suite is done; make test fails if either run fails.
# A background job of a script ignores Ctrl-C, so the recipe's exit (Ctrl-C included) stops it.
define start_unit_suite_on_runtime_python
	unit_log=$$(mktemp -d); unit_pid=; trap '[ -z "$$unit_pid" ] || kill $$unit_pid 2>/dev/null; rm -rf $$unit_log' EXIT; \
	if [ -n "$(RUNTIME_PY)" ]; then \
		echo "Unit suite under python$(LAMBDA_PY), the Lambda runtime's Python ($(RUNTIME_VENV)), run alongside:" > $$unit_log/out; \
		nice -n 10 $(RUNTIME_VPY) -m pytest -q -p no:cacheprovider --basetemp=$$unit_log/tmp tests/unit >> $$unit_log/out 2>&1 & \
		unit_pid=$$!; \
	fi
endef
define finish_unit_suite_on_runtime_python
	if [ -n "$$unit_pid" ]; then \
		wait $$unit_pid || status=1; unit_pid=; cat $$unit_log/out; \
	else \
		echo "$(NO_RUNTIME_PY_NOTE)"; \
	fi
endef

# Three pytest-xdist workers on two cores, a test file to each at a time (its module fixtures,
# a local stack or a Terraform workspace, are set up once), in collection order: tests/conftest.py
# collects the longest files first (xdist would otherwise sort files by their test count,
# which hands the long few-test files out last). A third worker because a worker often waits
# rather than computes (Terraform's waiters against moto sleep 5 s at a time, the stacks'
# timers run out): `make test`'s suite took 6 min 7 s with three, 6 min 56 s with two.
# PARALLEL= runs the suite in one process.
PARALLEL     ?= -n 3 --dist loadfile --no-loadscope-reorder
# The fault-injection tier: every call on the callback path, the tenant lifecycle and the
# queue entry failed, stalled and cut, one stack per scenario. It is the heaviest part of the
# suite, so it is a target of its own that CI runs after `make test` (.ci/run).
FAULT_TESTS  := tests/local/callback_fault_matrix tests/local/test_tenant_faults.py \
	tests/local/test_router_faults.py tests/local/test_faults.py
# tests/bench renders the benchmark's report (matplotlib), so `make test` installs the bench set too.
test: $(TEST_STAMP) $(BENCH_STAMP) $$(if $$(RUNTIME_PY),$(RUNTIME_STAMP)) ## Every test but the fault-injection tier: unit (dev Python and python3.13), local stack, Terraform, packaging
	@status=0; $(start_unit_suite_on_runtime_python); \
		$(VPY) -m pytest $(PARALLEL) $(addprefix --ignore=,$(FAULT_TESTS)) || status=1; \
		$(finish_unit_suite_on_runtime_python); exit $$status

test-faults: $(TEST_STAMP) ## The fault-injection tier: callback fault matrix, tenant lifecycle and queue-entry faults
	@$(VPY) -m pytest $(PARALLEL) $(FAULT_TESTS)

# The fast tier for the inner loop (about 2 minutes on 2 cores): the unit suite, the
# Terraform static, variable and plan checks, and one end-to-end smoke test (two tenants'
# workflows on a local stack, each in its own environment). `make test` is everything.
CHECK_TESTS  := tests/unit tests/infra/test_static.py tests/infra/test_variables.py tests/infra/test_plan.py \
	tests/infra/test_plan_production.py tests/local/test_local_stack.py::test_two_tenants_run_concurrent_workflows_in_separate_environments
check: $(TEST_STAMP) ## Fast tier: unit, Terraform static and plan checks, one end-to-end smoke test
	@$(VPY) -m pytest $(PARALLEL) $(CHECK_TESTS)

test-unit: $(TEST_STAMP) $$(if $$(RUNTIME_PY),$(RUNTIME_STAMP)) ## Unit tests only (no network, no Terraform), under both interpreters
	@status=0; $(VPY) -m pytest tests/unit || status=1; $(unit_suite_on_runtime_python); exit $$status

test-local: $(TEST_STAMP) ## End-to-end tests against the local stack
	@$(VPY) -m pytest tests/local

test-infra: $(TEST_STAMP) ## Terraform checks (fmt, validate, plan, apply against moto, checkov)
	@$(VPY) -m pytest tests/infra

# AWS's durable conformance requirements (aws-durable-execution-conformance-tests, pinned in
# tests/conformance/requirements.txt) through the local Lambda endpoint. The package declares
# Python >= 3.14 but runs unchanged on 3.11 and 3.13: installed with --no-deps, resolved as
# for 3.14 (uv's --python-version; its dependencies, boto3 and PyYAML, are in the run set).
CONFORMANCE_STAMP := $(VENV)/.stamp-conformance
$(CONFORMANCE_STAMP): $(RUN_STAMP) tests/conformance/requirements.txt
	@echo "Installing AWS's durable conformance requirements (tests/conformance/requirements.txt) into $(VENV) ..."
	@$(INSTALL) $(VPY) --no-deps --python-version 3.14 -r tests/conformance/requirements.txt
	@touch $@

.PHONY: test-conformance
test-conformance: $(CONFORMANCE_STAMP) ## AWS's durable conformance requirements through the local Lambda endpoint
	@$(VPY) -m tests.conformance.run $(CONFORMANCE_ARGS)

# The black-box API checks (tests/blackbox/checks.py) against a deployed stage: URL
# from `terraform output`, keys from .state/api-keys.json (make deploy and make run
# write it), or API_URL and API_KEYS; BRIEF_TENANT for the 410 check;
# ADMIN_CREDENTIALS=chain (or make run's .state/admin-credentials.json) for the admin checks.
test-aws: $(TEST_STAMP) ## Smoke-test a deployed stage (API_URL=... API_KEYS=file override terraform output)
	@$(if $(filter environment command line,$(origin API_URL)),API_URL='$(API_URL)') \
		$(VPY) -m pytest -p no:cacheprovider tests/blackbox/checks.py $(PYTEST_ARGS)

run: $(RUN_STAMP) ## Run the whole pattern locally on 127.0.0.1 (Ctrl-C stops)
	@$(VPY) -m local $(RUN_ARGS)

demo: $(RUN_STAMP) ## Walk the full flow for two tenants against API_URL (default: local stack)
	@$(VPY) -m local.tools.demo --api-url $(API_URL) $(DEMO_ARGS)

bench: $(BENCH_STAMP) ## Benchmarks: print figures and write docs/benchmarks.md
	@$(VPY) -m bench.run

fmt: ## terraform fmt
	$(TF) fmt -recursive

clean: ## Remove build output, local state, the virtualenvs and __pycache__
	rm -rf $(BUILD) .state $(VENV) $(RUNTIME_VENV) $(UV_VENV) .venv-checkov .venv-checkov.lock .venv-runset-* .venv-conformance* .pytest_cache .terraform *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
