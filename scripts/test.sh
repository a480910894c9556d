#!/usr/bin/env bash
# `make test`: every tier, in order, with moto started for the tiers that need it (on loopback,
# then on the Docker bridge for the sam-local tier's containers) and stopped on exit, failure
# included.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }
started=$SECONDS

step "Format (cargo fmt --check)"
cargo fmt --all --check

step "Lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "Build (debug: tests and bootstraps)"
cargo build --workspace --all-targets

step "Template gates (sam validate --lint, cfn-lint + serverless rules on the transformed template, checkov)"
scripts/template-gates.sh

scripts/with-moto.sh bash -c '
  set -euo pipefail
  printf "\n== Unit + emulated AWS (cargo test, moto at %s)\n" "$AWS_ENDPOINT_URL"
  cargo test --workspace -- --include-ignored
  printf "\n== Runtime (bootstraps under the Lambda Runtime Interface Emulator)\n"
  .venv/bin/pytest -q tests/runtime
  printf "\n== Template (the transformed template: dashboard, alarms; every event file matches its own rule and no other)\n"
  .venv/bin/pytest -q tests/template
'
step "sam local (sam local invoke and start-lambda on the template, in the provided.al2023 image, against moto)"
scripts/local-image.sh
MOTO_HOST=docker scripts/with-moto.sh .venv/bin/pytest -q tests/sam_local

printf '\nmake test: all tiers passed in %ss\n' "$((SECONDS - started))"
