# Production image: gunicorn + whitenoise for web; the same image runs the worker and beat.
# Secrets are not baked in: SECRET_KEY_FILE etc. name Docker secrets at run time
# (docker-compose.yml). The build-only key below exists for collectstatic alone.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BOUNCEMGR_VAR_DIR=/app/var
WORKDIR /app
RUN useradd --system --create-home --uid 10001 bouncemgr
# Everything the app needs; .dockerignore keeps out .venv, var/, secrets/, .env and tests.
COPY . .
RUN pip install --no-cache-dir .
# DEBUG off selects whitenoise's compressed manifest storage, as at run time.
RUN mkdir -p /app/var/imports && DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && chown -R bouncemgr /app/var && chmod 0700 /app/var
USER bouncemgr
EXPOSE 8000
CMD ["gunicorn", "bouncemgr.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
