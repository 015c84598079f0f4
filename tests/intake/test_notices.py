"""The one intake entry point: store first (once per key), then process (once per row)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from bounces.intake.notices import (
    Notice,
    process_notices,
    receive_notices,
    store_notices,
    sweep_notices,
)
from bounces.intake.structured import StructuredNotice
from bounces.models import Bounce, ProcessingRun, RawMessage

from .conftest import dsn, send

pytestmark = pytest.mark.postgres  # runs on SQLite and again on PostgreSQL


def _notice(rcpt: str, key: str = "k1") -> Notice:
    return Notice.structured(source="mta_log", key=f"pmta:{key}", notice=StructuredNotice(
        source="pmta", event="failure", recipient=rcpt, status="5.1.1", diagnostic="550 5.1.1 user unknown"))


def test_a_notice_stored_twice_is_one_row_and_processing_twice_counts_it_once(campaign):
    sent = send(campaign, "a@example.net")
    first = store_notices(notices=[_notice(sent.email)])
    again = store_notices(notices=[_notice(sent.email), _notice(sent.email)])
    assert first.new_ids and not again.new_ids and again.ids == first.ids and again.duplicates == 1

    assert process_notices(ids=first.new_ids)["processed"] == 1
    assert process_notices(ids=first.new_ids)["processed"] == 0
    assert Bounce.objects.count() == 1
    assert Bounce.objects.get().contact_id == sent.contact_id  # matched by address


def test_a_large_push_is_queued_as_one_task_per_chunk(campaign, eager, settings,
                                                     django_capture_on_commit_callbacks):
    """Notices pushed together (an accounting file, a webhook batch) are processed by one task
    per PROCESSING_CHUNK_SIZE rows, which the workers share, each row once."""
    from celery.signals import task_prerun

    settings.PROCESSING_CHUNK_SIZE = 2
    sent = [send(campaign, f"push{i}@example.net") for i in range(5)]
    sizes: list[int] = []

    def seen(sender=None, args=None, **_):
        if sender is not None and sender.name == "bounces.intake.process_notices":
            sizes.append(len(args[0]))

    task_prerun.connect(seen, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            receive_notices(notices=[_notice(s.email, key=s.email) for s in sent])
    finally:
        task_prerun.disconnect(seen)
    assert sizes == [2, 2, 1]
    assert Bounce.objects.filter(kind="hard").count() == 5 == RawMessage.objects.filter(state="processed").count()


def test_mail_and_structured_notices_share_one_batch(campaign):
    sent = send(campaign, "mail@example.net")
    stored = receive_notices(notices=[
        Notice.mail(source="smtpd", raw=dsn(sent.email, token=sent.token)),
        _notice("other@example.net", key="k2"),
    ], process="now")
    assert len(stored.new_ids) == 2
    assert set(Bounce.objects.values_list("recipient", "kind")) == {(sent.email, "hard"), ("other@example.net", "hard")}
    assert not RawMessage.objects.exclude(state="processed").exists()


def test_the_sweep_processes_what_was_stored_but_never_processed_and_leaves_mailbox_rows(db):
    receive_notices(notices=[_notice("late@example.net")], process="later")
    RawMessage.objects.create(source="mailbox", dedupe_key="1:1", sha256="x", raw=b"x", size=1)
    run = sweep_notices()
    assert run is not None and run.trigger == ProcessingRun.Trigger.INTAKE and run.hard == 1
    assert RawMessage.objects.get(source="mailbox").state == "new"  # its mailbox run disposes of it too
    assert sweep_notices() is None  # nothing left: no empty runs


def test_a_corrupt_stored_notice_lands_in_the_unexplained_queue(db):
    stored = store_notices(notices=[Notice(source="webhook", key="esp:x", raw=b'{"bouncemgr_notice": {"oops": 1}}')])
    process_notices(ids=stored.new_ids)
    assert Bounce.objects.get().state == "unmatched"


def test_the_receiver_command_needs_a_domain(settings):
    settings.BOUNCE_SMTPD_DOMAINS = []
    with pytest.raises(CommandError, match="no return-path domain"):
        call_command("run_bounce_smtpd", "--port", "0")
    with pytest.raises(CommandError, match="--tls-cert and --tls-key"):
        call_command("run_bounce_smtpd", "--domain", "b.example", "--tls-cert", "/x.pem")
