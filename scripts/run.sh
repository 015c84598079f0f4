#!/usr/bin/env bash
# `make run`: serve like production on one machine (docs/security.md, README "Run").
# Prepares var/ (private modes, secrets in var/local.env), migrates, collects static files,
# makes the admin login (its password is printed once, the first time), then runs gunicorn
# (with whitenoise for static files), a Celery worker and Celery beat. Ctrl-C (or SIGTERM)
# stops all. Background jobs of a non-interactive bash ignore SIGINT, so we trap it and
# forward SIGTERM to each child's main PID (shared/notes/embedded-default.md).
#
# DEBUG is off unless DEBUG=true is set; gunicorn listens on 127.0.0.1:8000 unless HOST /
# PORT say otherwise. On a loopback address the site is plain HTTP, so the HTTPS redirect
# and secure-only cookies are off unless set; on any other address put a TLS proxy in front
# (README "Deployment").
set -uo pipefail
cd "$(dirname "$0")/.."
umask 077
bin=.venv/bin
host="${HOST:-127.0.0.1}"; port="${PORT:-8000}"
var="${BOUNCEMGR_VAR_DIR:-var}"
case "$host" in
  127.*|localhost|::1|\[::1\])
    export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-false}"
    export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-false}"
    export CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-false}"
    export SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"
    ;;
esac
case "$host" in *:*) bind="[${host#[}"; bind="${bind%]}]:$port" ;; *) bind="$host:$port" ;; esac

"$bin/python" -m bouncemgr.localenv "$var" || exit 1
"$bin/python" manage.py migrate --noinput || exit 1
"$bin/python" manage.py collectstatic --noinput -v0 || exit 1
"$bin/python" manage.py setup_instance || exit 1
"$bin/python" -m bouncemgr.localenv "$var" || exit 1  # files made meanwhile: private too
[ "${BOUNCEMGR_PREPARE_ONLY:-}" = 1 ] && exit 0

echo "Serving http://$bind/admin/ (DEBUG=${DEBUG:-false}) with a Celery worker and beat (Ctrl-C stops all)."
pids=()
"$bin/gunicorn" bouncemgr.wsgi:application --bind "$bind" --workers "${WEB_CONCURRENCY:-2}" \
  --threads "${WEB_THREADS:-4}" --timeout 120 --access-logfile - & pids+=($!)
# Threads pool: shuts down cleanly and suits SQLite; with Redis/PostgreSQL set
# CELERY_POOL=prefork for CPU-bound parsing on several cores.
"$bin/celery" -A bouncemgr worker -l info --pool="${CELERY_POOL:-threads}" --concurrency="${CELERY_CONCURRENCY:-2}" & pids+=($!)
"$bin/celery" -A bouncemgr beat -l info --schedule "$var/celerybeat-schedule" & pids+=($!)
stop() { trap - INT TERM; echo "stopping..."; kill -TERM "${pids[@]}" 2>/dev/null; wait; exit 0; }
trap stop INT TERM HUP
wait -n "${pids[@]}"
echo "a process exited; stopping the others"
stop
