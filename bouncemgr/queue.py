"""Send Celery tasks by their name once the transaction commits, so services never import tasks.
Imports Celery and Django's transaction handling only."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction


def send_task(name: str, *args: Any) -> Any:
    """Send the task registered as ``name`` with ``args`` now and return its result handle.

    The same as the task's ``delay``: eager mode (tests) runs it here. A process that has not
    imported the tasks modules yet (a web worker) imports them on first use.
    """
    app = current_app
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name].delay(*args)


def send_task_on_commit(name: str, *args: Any) -> None:
    """Send task ``name`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(send_task, name, *args))
