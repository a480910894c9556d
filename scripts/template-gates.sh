#!/usr/bin/env bash
# The template gates, run by `make test` and `make lint`:
#   sam validate --lint on the SAM source;
#   the SAM transform (aws-sam-translator, offline) and cfn-lint with the serverless rules on the
#   CloudFormation it produces, which is what gets deployed;
#   checkov on the template: zero failed checks; every suppression is written inline in
#   template.yaml (Metadata.checkov.skip) with its reason;
#   the same cfn-lint and checkov gates on the member account template (templates/member.yaml,
#   plain CloudFormation, for StackSets).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
checkov_venv="${CHECKOV_VENV:-.venv-checkov}"
export SAM_CLI_TELEMETRY=0
"$venv/bin/sam" validate --lint -t template.yaml
transformed="$("$venv/bin/python" scripts/transform.py)"
"$venv/bin/cfn-lint" "$transformed" -a cfn_lint_serverless.rules
echo "cfn-lint (+ serverless rules): $transformed clean"
"$checkov_venv/bin/checkov" -f template.yaml --framework cloudformation --skip-download --compact --quiet
"$venv/bin/cfn-lint" templates/member.yaml -a cfn_lint_serverless.rules
echo "cfn-lint (+ serverless rules): templates/member.yaml clean"
"$checkov_venv/bin/checkov" -f templates/member.yaml --framework cloudformation --skip-download --compact --quiet
