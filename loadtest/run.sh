#!/usr/bin/env bash
# Load test on 127.0.0.1: gunicorn (production settings) + PostgreSQL + Redis + one Celery
# worker, seeded with real scans from ../shared/data, then locust headless.
#
#   loadtest/run.sh                 # 20 users for 2 minutes (the documented run)
#   USERS=5 DURATION=20s loadtest/run.sh   # a quick smoke run
#
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), Redis at 127.0.0.1:6379,
# the dev requirements plus locust. Uses its own database (portal_loadtest) and Redis DB 9,
# and writes everything else under var/loadtest/. Prints the markdown table for
# docs/performance.md and exits 1 if a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
USERS=${USERS:-20}
SPAWN_RATE=${SPAWN_RATE:-5}
DURATION=${DURATION:-2m}
PORT=${PORT:-8765}
DB_NAME=${DB_NAME:-portal_loadtest}
REDIS_DB=${REDIS_DB:-9}
GUNICORN_WORKERS=${GUNICORN_WORKERS:-3}
GUNICORN_THREADS=${GUNICORN_THREADS:-4}

export LOADTEST_VAR=$PWD/var/loadtest
export DJANGO_SETTINGS_MODULE=portal.settings.production
export DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')}
export DJANGO_ALLOWED_HOSTS=127.0.0.1
export DJANGO_SECURE_SSL_REDIRECT=false   # plain HTTP on 127.0.0.1; requests say X-Forwarded-Proto: https
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB_NAME
export DATABASE_CONN_MAX_AGE=60
export REDIS_URL=redis://127.0.0.1:6379/$REDIS_DB
export DJANGO_MEDIA_ROOT=$LOADTEST_VAR/media
export DJANGO_STATIC_ROOT=$LOADTEST_VAR/static
export DJANGO_LOG_LEVEL=WARNING
export SHARED_DATA=${SHARED_DATA:-$PWD/../shared/data}

rm -rf "$LOADTEST_VAR" && mkdir -p "$LOADTEST_VAR"
psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME"
$PY -c "import redis; redis.Redis.from_url('$REDIS_URL').flushdb()"

echo "== migrate, collectstatic, seed"
$PY manage.py migrate --noinput -v 0
$PY manage.py collectstatic --noinput -v 0
$PY manage.py shell < loadtest/seed.py

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== start gunicorn ($GUNICORN_WORKERS workers x $GUNICORN_THREADS threads) and one Celery worker"
.venv/bin/gunicorn portal.wsgi:application --bind 127.0.0.1:$PORT --workers "$GUNICORN_WORKERS" \
  --threads "$GUNICORN_THREADS" --worker-class gthread --timeout 120 --keep-alive 75 \
  --error-logfile "$LOADTEST_VAR/gunicorn.log" &
pids+=($!)
.venv/bin/celery -A portal worker -Q inference,llm,default --concurrency 1 -l warning \
  --logfile "$LOADTEST_VAR/celery.log" &
pids+=($!)
for _ in $(seq 60); do
  curl -fsS -H 'X-Forwarded-Proto: https' "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done

echo "== warm-up (${WARMUP:-15s}, 4 users, not measured): every gunicorn worker imports its views once"
.venv/bin/locust -f loadtest/locustfile.py --headless -u 4 -r 4 -t "${WARMUP:-15s}" \
  --host "http://127.0.0.1:$PORT" --only-summary --exit-code-on-error 0 >"$LOADTEST_VAR/warmup.log" 2>&1 || true

echo "== machine load before the run: $(uptime)"
echo "== locust: $USERS users, spawn rate $SPAWN_RATE/s, $DURATION"
.venv/bin/locust -f loadtest/locustfile.py --headless -u "$USERS" -r "$SPAWN_RATE" -t "$DURATION" \
  --host "http://127.0.0.1:$PORT" --csv "$LOADTEST_VAR/stats" --only-summary --exit-code-on-error 0 \
  2>&1 | tail -n 40 || true

echo "== machine load after the run: $(uptime)"
echo "== jobs after the run"
$PY manage.py shell -c "from scans.models import Job; from django.db.models import Count; print(list(Job.objects.values('kind','state').annotate(n=Count('id')).order_by('kind','state')))" || true
echo "== report"
$PY loadtest/report.py "$LOADTEST_VAR/stats_stats.csv"
