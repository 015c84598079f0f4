"""Celery tasks of the contacts app: interfaces that call one service by ids."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="contacts.expire_suppressions", acks_late=True, soft_time_limit=300, time_limit=330)
def expire_suppressions_task() -> int:
    """Move suppressions whose time ran out into the history (sending already ignores them)."""
    return services.expire_suppressions()


@shared_task(name="contacts.import_contacts_file", acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def import_contacts_file_task(job_id: str) -> dict:
    """Import an uploaded CSV file stored by the import page (contacts.import_jobs)."""
    from .import_jobs import run_import_job

    job = run_import_job(job_id)
    return {"job": job_id, "status": job.status if job else "unknown", "rows": job.rows if job else 0}
