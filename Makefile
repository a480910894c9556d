# medic: `make demo` tells the self-healing story on emulated AWS; `make test` runs every tier.
# Both create .venv from PyPI first (moto server, aws-sam-cli with the Lambda Runtime Interface
# Emulator, cargo-lambda, ziglang, cfn-lint, boto3, pytest). make test's sam-local tier needs a
# running Docker engine; scripts/local-image.sh installs Debian's busybox-static when it must
# make the image's stand-in.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
PYTHON ?= python3

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AWS_EC2_METADATA_DISABLED := true
export SAM_CLI_TELEMETRY := 0
export CARGO_TERM_COLOR ?= never

.PHONY: help venv build test lint demo bench bench-full bench-sweep fuzz reliability release sam-build local-image local clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	@echo "== Setting up $(VENV) from PyPI (requirements-dev.txt)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "== Setting up $(CHECKOV_VENV) from PyPI (requirements-checkov.txt)"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

venv: $(VENV)/.installed $(CHECKOV_VENV)/.installed ## Create .venv (and .venv-checkov) with the Python-side tools

build: ## Debug build of every function (what the tests and the demo run)
	cargo build --workspace --all-targets

test: venv ## Every test tier: fmt, clippy, template gates, unit, emulated AWS (moto), runtime (RIE), template conformance, sam local
	scripts/test.sh

lint: venv ## fmt, clippy (-D warnings), and the template gates (sam validate, cfn-lint + serverless rules on the transformed template, checkov)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/template-gates.sh

demo: venv ## Self-healing story on emulated AWS, through the real bootstraps under the runtime emulator
	@echo "== Building the functions (debug; all targets, as make test does, so one build serves both)"
	cargo build --workspace --all-targets
	scripts/with-moto.sh $(VENV)/bin/python demo/demo.py

bench: venv ## The instance healer: release build (x86_64; BENCH_ARGS=--arm64 adds arm64), size, cold start, warm latency, peak RSS, time to remediate under the emulator and in a Lambda-like sandbox: BENCHMARKS.md
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

bench-full: venv ## make bench for every function, with the Rust baselines (hello-world, clients-*)
	$(VENV)/bin/python bench/run.py --full $(BENCH_ARGS)

bench-sweep: venv ## The reconciler's run at scale (20 groups x 10 instances, 10 DB instances) on emulated AWS: AWS calls by operation, duration
	cargo build -p reconciler
	rm -f target/sweep-calls.log
	MEDIC_CALL_LOG=$(CURDIR)/target/sweep-calls.log scripts/with-moto.sh $(VENV)/bin/python bench/sweep.py

fuzz: ## Each fuzz target (one per function: parse, then decide on arbitrary observations) under cargo fuzz for MEDIC_FUZZ_SECONDS (300) each
	scripts/fuzz.sh

reliability: venv ## The fault matrix, a 10,000-event storm, each fuzz target for MEDIC_FUZZ_SECONDS (300): RELIABILITY.md
	cargo build --workspace --all-targets
	scripts/with-moto.sh $(VENV)/bin/python bench/reliability.py

FUNCTIONS := instance-healer alarm-responder rds-rerouter notifier reconciler

# One package per cargo invocation: one invocation unifies features across its packages, which
# would link every SDK crate into every function.
release: venv ## Release bootstraps with cargo-lambda for arm64 (Lambda's architecture), zipped, one package at a time
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	for function in $(FUNCTIONS); do cargo lambda build --release --arm64 -p $$function --output-format zip || exit 1; done
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

sam-build: venv ## sam build (cargo-lambda under SAM) into .aws-sam/
	sam build

local-image: venv ## The provided.al2023 image sam local runs: AWS's own where it can be pulled, else a stand-in made here
	scripts/local-image.sh

local: venv ## What `sam local invoke` needs (samconfig.toml points it here): debug build, the image, target/sam-local/template.json
	cargo build --workspace --all-targets
	scripts/local-image.sh
	$(VENV)/bin/python tests/harness/sam_local.py template

clean: ## Remove build output, .venv and .venv-checkov
	cargo clean
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam
