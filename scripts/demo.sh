#!/usr/bin/env bash
# The main job on one machine: builds the release binaries, starts cloudsim (the demo Azure
# tenant), a mail catcher (a local SMTP server with a web view), the API and a worker against
# the local Postgres and Redis, logs in, creates two alert rules, runs the first scan, and
# prints the URLs, the admin login and the alerts the scan sent.
#
#   scripts/demo.sh         start (or restart) the demo
#   scripts/demo.sh stop    stop what the demo started
#
# Environment: DEMO_PORT (API, default 8080), DEMO_SIM_PORT (cloudsim, default 8443),
# DEMO_SMTP_PORT and DEMO_MAIL_PORT (mail catcher SMTP and web view, default 1025 and 8025),
# DEMO_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/certifyclouds),
# DEMO_REDIS_URL (default redis://127.0.0.1:6379), CARGO_TARGET_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.state"
pids="$state/pids"
mkdir -p "$state/logs"

stop() {
  if [ -f "$pids" ]; then
    while read -r pid; do
      kill "$pid" 2>/dev/null || true
    done < "$pids"
    rm -f "$pids"
    echo "demo stopped"
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi
stop

api_port=${DEMO_PORT:-8080}
sim_port=${DEMO_SIM_PORT:-8443}
database_url=${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/certifyclouds}
redis_url=${DEMO_REDIS_URL:-redis://127.0.0.1:6379}
target=${CARGO_TARGET_DIR:-$root/target}
smtp_port=${DEMO_SMTP_PORT:-1025}
mail_port=${DEMO_MAIL_PORT:-8025}

echo "==> building release binaries (the first build takes several minutes)"
(cd "$root" && cargo build --release --locked -p cloudsim -p certifyclouds-api -p certifyclouds-worker)
bin="$target/release"

echo "==> checking Postgres and Redis"
db_name=${database_url##*/}
admin_url=${database_url%/*}/postgres
if ! psql "$admin_url" -Atqc "SELECT 1" >/dev/null 2>&1; then
  echo "Postgres does not answer at ${database_url%/*}; start it first" >&2
  exit 1
fi
if [ "$(psql "$admin_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db_name'")" != "1" ]; then
  psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null
fi
if ! (exec 3<>"/dev/tcp/127.0.0.1/${redis_url##*:}") 2>/dev/null; then
  echo "Redis does not answer at $redis_url; start it first" >&2
  exit 1
fi

echo "==> starting cloudsim on https://127.0.0.1:$sim_port"
rm -f "$state/cloudsim/cloud.env" "$state/logs/cloudsim.out"
"$bin/cloudsim" serve --listen "127.0.0.1:$sim_port" --state-dir "$state/cloudsim" \
  > "$state/logs/cloudsim.out" 2> "$state/logs/cloudsim.log" &
echo $! >> "$pids"
for _ in $(seq 1 100); do
  grep -q "cloudsim ready" "$state/logs/cloudsim.out" 2>/dev/null && break
  sleep 0.1
done
grep -q "cloudsim ready" "$state/logs/cloudsim.out" || { cat "$state/logs/cloudsim.log" >&2; exit 1; }

echo "==> starting the mail catcher (SMTP 127.0.0.1:$smtp_port, web http://127.0.0.1:$mail_port)"
# Only aiosmtpd is needed: a small venv of its own unless the test venv is there already.
mail_venv=${CERTIFYCLOUDS_VENV:-$state/mail-venv}
if ! "$mail_venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  python3 -m venv "$mail_venv"
  "$mail_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$root/tools/mailcatcher/requirements.txt"
fi
rm -f "$state/logs/mail.out"
"$mail_venv/bin/python" "$root/tools/mailcatcher/mailcatcher.py" \
  --smtp "127.0.0.1:$smtp_port" --http "127.0.0.1:$mail_port" \
  > "$state/logs/mail.out" 2> "$state/logs/mail.log" &
echo $! >> "$pids"
for _ in $(seq 1 100); do
  grep -q "mailcatcher ready" "$state/logs/mail.out" 2>/dev/null && break
  sleep 0.1
done
grep -q "mailcatcher ready" "$state/logs/mail.out" || { cat "$state/logs/mail.log" >&2; exit 1; }

# Secrets of this demo installation, made once and kept in .state/.
[ -f "$state/secret_key" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret_key"
[ -f "$state/admin_password" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/admin_password"

set -a
# shellcheck disable=SC1091
. "$state/cloudsim/cloud.env"
DATABASE_URL=$database_url
REDIS_URL=$redis_url
LISTEN_ADDR=127.0.0.1:$api_port
SECRET_KEY=$(cat "$state/secret_key")
ADMIN_USERNAME=admin
ADMIN_PASSWORD=$(cat "$state/admin_password")
SMTP_HOST=127.0.0.1
SMTP_PORT=$smtp_port
SMTP_TLS=none
SMTP_FROM_EMAIL="CertifyClouds <alerts@certifyclouds.local>"
PUBLIC_URL=http://127.0.0.1:$api_port/
WORKER_METRICS_ADDR=${WORKER_METRICS_ADDR:-127.0.0.1:9100}
set +a

echo "==> starting the API on http://127.0.0.1:$api_port and a worker"
"$bin/certifyclouds-api" > "$state/logs/api.log" 2>&1 &
echo $! >> "$pids"
"$bin/certifyclouds-worker" > "$state/logs/worker.log" 2>&1 &
echo $! >> "$pids"

api="http://127.0.0.1:$api_port"
for _ in $(seq 1 150); do
  curl -sf "$api/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "$api/health" >/dev/null || { tail -20 "$state/logs/api.log" >&2; exit 1; }

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

token=$(curl -sf "$api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" | json 'd["access_token"]')
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
# Alert rules, unless an earlier run made them: expiry alerts at 30 and 7 days, and a scan report.
if [ "$(curl -sf "$api/alerts/rules" "${auth[@]}" | json 'd["total"]')" = "0" ]; then
  curl -sf "$api/alerts/rules" "${auth[@]}" -d '{"name": "Expiring soon", "alertType": "secret_expiring",
    "thresholds": [30, 7], "deliveryMethod": "email", "deliveryMode": "immediate",
    "recipients": ["security-team@contoso.example"]}' >/dev/null
  curl -sf "$api/alerts/rules" "${auth[@]}" -d '{"name": "Scan report", "alertType": "scan_completed",
    "deliveryMethod": "email", "recipients": ["security-team@contoso.example"]}' >/dev/null
  echo "==> alert rules created: email to security-team@contoso.example"
fi
sent_before=$(curl -sf "$api/alerts/history?status=sent" "${auth[@]}" | json 'd["total"]')
scan=$(curl -sf "$api/api/assets/discovery/scan" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"mode":"full"}' | json 'd["scanId"]')
echo "==> scan $scan started"
status=queued
for _ in $(seq 1 600); do
  body=$(curl -sf "$api/api/assets/discovery/scan/$scan/status" -H "authorization: Bearer $token")
  status=$(echo "$body" | json 'd["status"]')
  case "$status" in queued|running) sleep 0.5 ;; *) break ;; esac
done
echo "$body" | json '"    status %s: %s of %s vaults, %s items" % (d["status"], d["progress"]["vaultsDone"], d["progress"]["vaultsTotal"], d["progress"]["itemsFound"])'
curl -sf "$api/api/assets/discovery/scan/$scan/results" -H "authorization: Bearer $token" \
  | json '"    by type %s\n    by status %s" % (d["byType"], d["byStatus"])'
echo "    cloudsim ground truth: $(curl -sf --cacert "$AZURE_CA_BUNDLE" "$CLOUDSIM_URL/_sim/stats")"
mail_web="http://127.0.0.1:$mail_port"
for _ in $(seq 1 100); do
  sent=$(curl -sf "$api/alerts/history?status=sent" "${auth[@]}" | json 'd["total"]')
  pending=0
  for st in queued sending; do
    n=$(curl -sf "$api/alerts/history?status=$st" "${auth[@]}" | json 'd["total"]')
    pending=$((pending + n))
  done
  # This scan's report at least (expiry alerts go out once per crossing, so not on a re-run),
  # and nothing still on its way.
  [ "$sent" -gt "$sent_before" ] 2>/dev/null && [ "$pending" -eq 0 ] && break
  sleep 0.2
done
curl -sf "$mail_web/api/messages" | json '"\n".join("    mail to %s: %s" % (", ".join(m["rcptTos"]), m["subject"]) for m in d["messages"])'

cat <<DONE

CertifyClouds is running.
  API:       $api   (try: curl $api/health)
  login:     admin / $ADMIN_PASSWORD
  mail:      $mail_web   (the alerts the product sent)
  token:     curl -s $api/auth/login -H 'content-type: application/json' \\
               -d '{"username":"admin","password":"$ADMIN_PASSWORD"}'
  logs:      $state/logs/
  stop:      scripts/demo.sh stop
DONE
