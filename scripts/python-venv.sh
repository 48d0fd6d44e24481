#!/usr/bin/env bash
# Creates the Python virtual environment for cloudsim's conformance suite (Microsoft's Azure SDKs
# for Python against cloudsim) and installs cloudsim/conformance/requirements.txt into it.
# The venv is ${CERTIFYCLOUDS_VENV:-.venv} (relative paths are relative to the repository).
# Idempotent: when the venv already holds the requirements with the same hash, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${CERTIFYCLOUDS_VENV:-.venv}
requirements=cloudsim/conformance/requirements.txt
stamp="$venv/.cloudsim-requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" >"$stamp"
