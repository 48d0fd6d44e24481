#!/usr/bin/env bash
# Creates the Python virtual environment the tests use and installs every requirements file
# below into it: Microsoft's Azure SDKs for cloudsim's conformance suite, and aiosmtpd for the
# mail catcher (tools/mailcatcher) that the alert tests and the demo send mail to.
# The venv is ${CERTIFYCLOUDS_VENV:-.venv} (relative paths are relative to the repository).
# Idempotent: when the venv already holds the requirements with the same hash, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${CERTIFYCLOUDS_VENV:-.venv}
requirements=(cloudsim/conformance/requirements.txt tools/mailcatcher/requirements.txt)
stamp="$venv/.requirements.sha256"
want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
for file in "${requirements[@]}"; do
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
done
echo "$want" >"$stamp"
