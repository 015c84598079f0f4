"""Infrastructure tasks."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="bouncemgr.ping")
def ping_task(value: str = "pong") -> dict[str, str]:
    """Answer with the value it was given: proves broker, worker and result backend work."""
    import socket

    return {"value": value, "worker_host": socket.gethostname()}
