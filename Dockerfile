# Production image: gunicorn + whitenoise for web; the same image runs the worker and beat.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BOUNCEMGR_VAR_DIR=/app/var
WORKDIR /app
RUN useradd --system --create-home --uid 10001 bouncemgr
COPY pyproject.toml README.md ./
COPY bouncemgr bouncemgr
COPY contacts contacts
COPY campaigns campaigns
COPY bounces bounces
RUN pip install --no-cache-dir .
COPY manage.py ./
COPY templates templates
COPY static static
RUN mkdir -p /app/var && DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && chown -R bouncemgr /app/var
USER bouncemgr
EXPOSE 8000
CMD ["gunicorn", "bouncemgr.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
