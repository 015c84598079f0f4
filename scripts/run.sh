#!/usr/bin/env bash
# Serve the web app with a Celery worker and Celery beat; Ctrl-C (or SIGTERM) stops all.
# Background jobs of a non-interactive bash ignore SIGINT, so we trap it and forward
# SIGTERM to each child's main PID (shared/notes/embedded-default.md).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
host="${HOST:-127.0.0.1}"; port="${PORT:-8000}"
pids=()
"$bin/python" manage.py runserver "$host:$port" --noreload & pids+=($!)
# Threads pool: shuts down cleanly and suits SQLite; with Redis/PostgreSQL set
# CELERY_POOL=prefork for CPU-bound parsing on several cores.
"$bin/celery" -A bouncemgr worker -l info --pool="${CELERY_POOL:-threads}" --concurrency="${CELERY_CONCURRENCY:-2}" & pids+=($!)
"$bin/celery" -A bouncemgr beat -l info --schedule var/celerybeat-schedule & pids+=($!)
stop() { trap - INT TERM; echo "stopping..."; kill -TERM "${pids[@]}" 2>/dev/null; wait; exit 0; }
trap stop INT TERM HUP
wait -n "${pids[@]}"
echo "a process exited; stopping the others"
stop
