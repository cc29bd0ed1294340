#!/usr/bin/env bash
# Start one worker and the API on 127.0.0.1:$CNNLAB_PORT; Redis if reachable, else an embedded broker.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export CNNLAB_PORT=${CNNLAB_PORT:-5000}

if [ -z "${CNNLAB_BROKER_URL:-}" ]; then
  if "$VENV/bin/python" - <<'PY' 2>/dev/null
import redis
from shared.lab.settings import settings
redis.Redis.from_url(settings().redis_url, socket_connect_timeout=1).ping()
PY
  then
    echo "broker: Redis at ${CNNLAB_REDIS_URL:-redis://127.0.0.1:6379/0}"
  else
    export CNNLAB_BROKER_URL=filesystem://
    export CNNLAB_RATELIMIT_STORAGE_URL=${CNNLAB_RATELIMIT_STORAGE_URL:-memory://}  # rate-limit counters per process
    echo "broker: Redis is not reachable, using the embedded filesystem broker under ${CNNLAB_VAR_DIR:-var}/broker"
  fi
fi
echo "database: ${CNNLAB_DATABASE_URL:-sqlite:///var/cnnlab.db}; data: ${CNNLAB_DATA_DIR:-./data}"

# The first start makes an admin API token (writes need one); it is kept, readable by you alone, in VAR_DIR.
token_file="${CNNLAB_VAR_DIR:-var}/admin-token"
new_token=$("$VENV/bin/python" -m shared.cli tokens first-admin --save "$token_file")
if [ -n "$new_token" ]; then
  echo "admin API token created: $new_token (kept in $token_file, mode 0600, to find it again)"
fi
if [ -r "$token_file" ]; then
  echo "submit a job: curl -H \"Authorization: Bearer $(cat "$token_file")\" -X POST http://127.0.0.1:$CNNLAB_PORT/jobs" \
       "-H 'Content-Type: application/json' -d '{\"preset\":\"mnist-fc\"}'"
else
  echo "writes need an API token: .venv/bin/cnnlab tokens create NAME [--admin]"
fi

# Both run in the background so a signal reaches this script at once (bash runs a trap only after a foreground
# child returns); the trap passes SIGTERM on and waits: the worker drains (CNNLAB_DRAIN_SECONDS, when a job
# runs), gunicorn ends its requests (graceful_timeout in gunicorn.conf.py).
pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM
"$VENV/bin/python" -m worker --loglevel WARNING &
pids+=($!)
echo "API: http://127.0.0.1:$CNNLAB_PORT  (results page at /, OpenAPI at /openapi.json)"
# No access log: the pages poll GET /jobs/<id> every 2 s and would flood this terminal; gunicorn's error log
# (stderr) still shows errors and the app's warnings.
"$VENV/bin/gunicorn" -c gunicorn.conf.py --bind "127.0.0.1:$CNNLAB_PORT" 'api:create_app()' &
pids+=($!)
wait -n  # either one ending ends both
