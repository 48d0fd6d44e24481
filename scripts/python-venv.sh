#!/usr/bin/env bash
# Creates the Python virtual environment for the tests that drive the product with Python tools
# and installs their pinned requirements into it: cloudsim's conformance suite (Microsoft's Azure
# SDKs for Python against cloudsim), schemathesis (the API fuzzer of e2e/tests/it/openapi.rs) and
# aiosmtpd for the mail catcher (tools/mailcatcher) that the alert tests and the demo send to.
# The venv is ${CERTIFYCLOUDS_VENV:-.venv} (relative paths are relative to the repository).
# Idempotent: when the venv already holds the requirements with the same hashes, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${CERTIFYCLOUDS_VENV:-.venv}
requirements=(cloudsim/conformance/requirements.txt e2e/schemathesis/requirements.txt
  tools/mailcatcher/requirements.txt)
stamp="$venv/.requirements.sha256"
want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "${requirements[@]/#/--requirement=}"
echo "$want" >"$stamp"
