"""Issue 12, scale-out: a run over stored messages is split into chunks (one Celery task each);
the run's counters are exact, it ends once, a chunk delivered again is not counted twice, and a
run whose chunks were lost is ended by the sweep with what it has. The two-worker scenario on
PostgreSQL is tests/reliability/test_scale_out_chunks.py."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command

from bounces.intake import stored
from bounces.intake.notices import Notice, store_notices, sweep_notices
from bounces.intake.stored import finish_run, process_chunk, process_stored_messages
from bounces.models import Bounce, ProcessingRun, RawMessage, RunChunk
from bounces.pipeline.processing import Processor
from contacts.models import Contact, ContactEvent

from .conftest import dsn, send

pytestmark = pytest.mark.postgres  # runs on SQLite and again on PostgreSQL


def _store(campaign, n: int, prefix: str = "chunk") -> list[int]:
    """`n` hard bounces for our contacts, pushed to us (SMTP receiver) and stored, not processed."""
    sent = [send(campaign, f"{prefix}{i}@example.net") for i in range(n)]
    stored_ = store_notices(notices=[Notice.mail(source="smtpd", raw=dsn(s.email, token=s.token)) for s in sent])
    return stored_.new_ids


def _counts(run: ProcessingRun) -> tuple:
    run.refresh_from_db()
    return (run.status, run.total, run.processed, run.hard, run.errors, run.chunks_done, run.chunks_total)


def test_a_reprocess_runs_in_chunks_with_exact_counts_and_ends_once(campaign, settings):
    settings.PROCESSING_CHUNK_SIZE = 3
    _store(campaign, 7)

    run = process_stored_messages()

    assert _counts(run) == (ProcessingRun.Status.SUCCEEDED, 7, 7, 7, 0, 3, 3)
    assert list(run.chunks.order_by("number").values_list("state", "processed")) == [
        ("done", 3), ("done", 3), ("done", 1)]
    assert Bounce.objects.filter(kind="hard", run=run).count() == 7
    assert Contact.objects.filter(has_bounced=True).count() == 7
    first_end = run.finished_at
    assert finish_run(run.pk) is False  # it ended once
    run.refresh_from_db()
    assert run.finished_at == first_end


def test_the_chunks_go_through_the_celery_task_and_run_one_after_another_when_eager(
    campaign, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from celery import current_app

    from bouncemgr.celery import app

    for conf in (app.conf, current_app.conf):
        monkeypatch.setattr(conf, "task_always_eager", True)
    settings.PROCESSING_CHUNK_SIZE = 4
    _store(campaign, 10)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = process_stored_messages(spread=True)
        assert run.status == ProcessingRun.Status.RUNNING and run.chunks_done == 0  # queued, not run yet
    assert len(callbacks) == 1

    assert _counts(run) == (ProcessingRun.Status.SUCCEEDED, 10, 10, 10, 0, 3, 3)
    assert set(run.chunks.values_list("attempts", flat=True)) == {1}


def test_a_chunk_delivered_again_after_a_partial_commit_counts_only_what_was_left(campaign, monkeypatch):
    _store(campaign, 6)
    run = ProcessingRun.objects.create(trigger=ProcessingRun.Trigger.REPROCESS)
    ids = list(RawMessage.objects.values_list("id", flat=True))
    real = Processor.process
    calls = {"n": 0}

    def dies_after_one_batch(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("worker killed")  # not an Exception: nothing of the chunk's end runs
        return real(self, items)

    monkeypatch.setattr(Processor, "process", dies_after_one_batch)
    with pytest.raises(SystemExit):
        stored.start_chunked_run(run=run, ids=ids, batch_size=3, size=6)
    chunk = run.chunks.get()
    assert chunk.state == "running"
    assert _counts(run)[2:] == (0, 3, 0, 0, 1)  # the first batch counted with its commit; not ended

    monkeypatch.setattr(Processor, "process", real)
    process_chunk(chunk_id=chunk.pk, batch_size=3)  # acks_late: the broker delivers it again

    assert _counts(run) == (ProcessingRun.Status.SUCCEEDED, 6, 6, 6, 0, 1, 1)
    chunk.refresh_from_db()
    assert (chunk.state, chunk.attempts, chunk.processed) == ("done", 2, 6)
    assert Bounce.objects.filter(run=run).count() == 6

    ended = run.finished_at
    assert process_chunk(chunk_id=chunk.pk) is None  # a third delivery: nothing done, nothing counted
    assert _counts(run) == (ProcessingRun.Status.SUCCEEDED, 6, 6, 6, 0, 1, 1)
    assert run.finished_at == ended


def test_a_failing_batch_is_counted_once_and_the_run_finishes_with_errors(campaign, settings, monkeypatch):
    settings.PROCESSING_CHUNK_SIZE = 2
    ids = _store(campaign, 4)
    real = Processor.process

    def fails_on_the_first_rows(self, items):
        if items and items[0].raw_id == min(ids):
            raise RuntimeError("database said no")
        return real(self, items)

    monkeypatch.setattr(Processor, "process", fails_on_the_first_rows)
    run = process_stored_messages()

    assert _counts(run) == (ProcessingRun.Status.PARTIAL, 4, 2, 2, 1, 2, 2)
    assert "chunk 1: 2 messages failed: RuntimeError: database said no" in run.error_log
    assert RawMessage.objects.filter(state="failed").count() == 2


def test_a_run_whose_chunks_were_lost_is_ended_by_the_sweep_and_its_notices_processed_once(campaign, settings):
    settings.PROCESSING_CHUNK_SIZE = 3
    _store(campaign, 7)
    # Spread, but the queue loses every chunk (the tasks were never sent: no commit here).
    run = sweep_notices(spread=True)
    assert run is not None and _counts(run) == (ProcessingRun.Status.RUNNING, 7, 0, 0, 0, 0, 3)
    assert process_stored_messages().total == 0  # its rows are left to it while it runs
    assert sweep_notices() is None  # ... by the sweep too

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=76)
    with time_machine.travel(later, tick=False):
        again = sweep_notices()

    run.refresh_from_db()
    assert run.status == ProcessingRun.Status.PARTIAL and run.processed == 0
    assert "Ended by the sweep: 3 of 3 chunks did not finish within 75 minutes" in run.error_log
    assert set(run.chunks.values_list("state", flat=True)) == {"abandoned"}
    assert again is not None and _counts(again) == (ProcessingRun.Status.SUCCEEDED, 7, 7, 7, 0, 3, 3)
    # a lost chunk that turns up after all does nothing
    assert process_chunk(chunk_id=run.chunks.first().pk) is None
    assert Bounce.objects.count() == 7 and not RawMessage.objects.exclude(state="processed").exists()


def test_a_busy_run_is_not_ended_by_the_sweep(campaign, settings):
    settings.PROCESSING_CHUNK_SIZE = 2
    _store(campaign, 3)
    run = sweep_notices(spread=True)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30), tick=False):
        assert stored.finish_stale_runs() == []
    first = run.chunks.order_by("number").first()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50), tick=False):
        process_chunk(chunk_id=first.pk)  # activity 50 minutes in
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=100), tick=False):
        assert stored.finish_stale_runs() == []
    assert _counts(run) == (ProcessingRun.Status.RUNNING, 3, 2, 2, 0, 1, 2)


def test_the_command_processes_stored_messages_in_process_and_says_what_it_did(campaign, capsys):
    _store(campaign, 5)
    call_command("process_stored", "--in-process", "--chunk-size", "2")
    out = capsys.readouterr().out
    run = ProcessingRun.objects.get()
    assert run.trigger == ProcessingRun.Trigger.REPROCESS
    assert f"run #{run.pk}: 5 stored messages in 3 chunks" in out
    assert f"run #{run.pk}: Succeeded — 5 processed, 5 hard" in out
    assert RunChunk.objects.filter(run=run, state="done").count() == 3


def test_a_chunk_whose_worker_dies_every_time_is_given_up_and_the_run_ends(campaign, settings):
    settings.PROCESSING_CHUNK_SIZE = 2
    _store(campaign, 4)
    run = sweep_notices(spread=True)  # queued; the queue never runs them here
    doomed, healthy = run.chunks.order_by("number")
    RunChunk.objects.filter(pk=doomed.pk).update(attempts=stored.MAX_CHUNK_DELIVERIES)  # died 3 times

    process_chunk(chunk_id=doomed.pk)
    process_chunk(chunk_id=healthy.pk)

    assert _counts(run) == (ProcessingRun.Status.PARTIAL, 4, 2, 2, 1, 2, 2)
    assert "chunk 1: given up after 3 deliveries" in run.error_log
    assert RawMessage.objects.filter(state="new").count() == 2  # left for the next run
    assert sweep_notices().processed == 2


def test_the_run_page_shows_the_chunks(campaign, settings, admin_client):
    from django.urls import reverse

    settings.PROCESSING_CHUNK_SIZE = 2
    _store(campaign, 3)
    run = sweep_notices(spread=True)
    process_chunk(chunk_id=run.chunks.order_by("number").first().pk)

    data = admin_client.get(reverse("bounces:pipeline_run_status", args=[run.pk])).json()
    assert (data["status"], data["processed"], data["total"], data["chunks_done"], data["chunks_total"]) == (
        "running", 2, 3, 1, 2)
    page = admin_client.get(reverse("bounces:pipeline_run", args=[run.pk])).content.decode()
    assert '<span id="run-chunks-done">1</span> / 2 chunks' in page
    admin_page = admin_client.get(reverse("admin:bounces_processingrun_change", args=[run.pk])).content.decode()
    assert "Run chunks" in admin_page or "run chunk" in admin_page.lower()


def test_a_soft_state_recompute_over_many_contacts_is_spread_by_contact_with_the_same_result(
    campaign, monkeypatch
):
    from celery import current_app

    from bouncemgr.celery import app
    from bounces import tasks
    from bounces.models import BounceSettings

    from .test_actions import soft_bounces

    for conf in (app.conf, current_app.conf):
        monkeypatch.setattr(conf, "task_always_eager", True)
    contacts = [soft_bounces(campaign, f"spread{i}@example.net", 3) for i in range(5)]
    assert not any(c.has_bounced for c in contacts)  # threshold 5 by default
    row = BounceSettings.load()
    row.soft_threshold = 3
    row.save()
    monkeypatch.setattr(tasks, "RECOMPUTE_CHUNK", 2)
    sent = []
    real = tasks.recompute_bounce_state_chunk_task.delay
    monkeypatch.setattr(tasks.recompute_bounce_state_chunk_task, "delay", lambda *a: sent.append(a) or real(*a))

    assert tasks.recompute_bounce_state_task("policy change") == {"contacts": 5, "chunks": 3}

    assert [len(ids) for ids, _ in sent] == [2, 2, 1]
    assert Contact.objects.filter(pk__in=[c.pk for c in contacts], has_bounced=True).count() == 5
    events = ContactEvent.objects.count()
    assert tasks.recompute_bounce_state_task("again") == {"contacts": 5, "chunks": 3}  # twice: nothing more
    assert Contact.objects.filter(has_bounced=True).count() == 5 and ContactEvent.objects.count() == events
