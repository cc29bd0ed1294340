#!/usr/bin/env bash
# Start one worker and the API on 127.0.0.1:$CNNLAB_PORT; Redis if reachable, else an embedded broker.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export CNNLAB_PORT=${CNNLAB_PORT:-5000}

if [ -z "${CNNLAB_BROKER_URL:-}" ]; then
  if "$VENV/bin/python" - <<'PY' 2>/dev/null
import redis
from shared.settings import settings
redis.Redis.from_url(settings().redis_url, socket_connect_timeout=1).ping()
PY
  then
    echo "broker: Redis at ${CNNLAB_REDIS_URL:-redis://127.0.0.1:6379/0}"
  else
    export CNNLAB_BROKER_URL=filesystem://
    echo "broker: Redis is not reachable, using the embedded filesystem broker under ${CNNLAB_VAR_DIR:-var}/broker"
  fi
fi
echo "database: ${CNNLAB_DATABASE_URL:-sqlite:///var/cnnlab.db}; data: ${CNNLAB_DATA_DIR:-./data}"

"$VENV/bin/python" -m worker --loglevel WARNING &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
echo "API: http://127.0.0.1:$CNNLAB_PORT  (results page at /, OpenAPI at /openapi.json)"
# No access log: the pages poll GET /jobs/<id> every 2 s and would flood this terminal; gunicorn's error log
# (stderr) still shows errors and the app's warnings.
"$VENV/bin/gunicorn" --bind "127.0.0.1:$CNNLAB_PORT" --workers 2 --threads 4 'api:create_app()'
