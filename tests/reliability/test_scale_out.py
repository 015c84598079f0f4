"""Issue 12, scale-out: a worker never holds a database transaction open while it talks to a
mail server (so any number of workers can share the database without one slow server holding
row locks), and runs of different mailboxes proceed side by side. bench/bench_scale.py measures
the throughput with 1 and 2 worker processes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

import bounces.intake.mailbox as intake_mailbox
from bounces.intake.connections import open_connector
from bounces.models import Bounce, Mailbox, ProcessingRun
from bounces.pipeline import background
from tests.pipeline.conftest import dsn, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.postgres]


class WatchedConnector:
    """The real connector; every call (and every message of a fetch) notes whether the
    database connection of this thread was inside a transaction at that moment."""

    def __init__(self, inner, seen: list[tuple[str, bool]]) -> None:
        self._inner, self._seen = inner, seen

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._seen.append((name, connection.in_atomic_block))
            result = attr(*args, **kwargs)
            if name == "fetch":
                return self._watch(result)
            return result

        return call

    def _watch(self, iterator):
        while True:
            self._seen.append(("fetch:next", connection.in_atomic_block))
            try:
                item = next(iterator)
            except StopIteration:
                return
            yield item


@pytest.mark.parametrize("parse_helper", [False, True], ids=["parsing in-process", "forked parse helper"])
def test_no_transaction_is_open_while_a_run_talks_to_the_mail_server(
    pipeline_dovecot, mail_user, mailbox, campaign, monkeypatch, parse_helper
):
    sent = [send(campaign, f"tx{i}@example.net") for i in range(12)]
    pipeline_dovecot.inject_many(mail_user, [dsn(s.email, token=s.token) for s in sent])
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(intake_mailbox, "open_connector", lambda conn: WatchedConnector(open_connector(conn), seen))
    helpers: list = []
    if parse_helper:  # large runs parse in a forked helper, one batch ahead of the database work
        monkeypatch.setattr(intake_mailbox, "PARALLEL_PARSE_MIN", 1)
        monkeypatch.setattr(background, "FORK_WITH_THREADS", True)
        start = background.BackgroundParser.start
        monkeypatch.setattr(background.BackgroundParser, "start",
                            classmethod(lambda cls, options: helpers.append(start(options)) or helpers[-1]))

    run = intake_mailbox.process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    if parse_helper:
        assert helpers and helpers[0].executor is not None  # the helper process did the parsing
    assert Bounce.objects.count() == 12
    names = {name for name, _ in seen}
    assert {"open_folder", "list_messages", "fetch", "fetch:next", "apply", "close"} <= names
    assert [name for name, in_transaction in seen if in_transaction] == []


def test_runs_of_different_mailboxes_proceed_side_by_side(pipeline_dovecot, campaign):
    """Two mailboxes, two threads (as two worker processes would be): both runs succeed at
    once, each with its own lock, every message recorded once."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (pytest --postgres)")
    boxes = []
    for i in range(2):
        user = pipeline_dovecot.add_user()
        sent = [send(campaign, f"side{i}-{j}@example.net") for j in range(20)]
        pipeline_dovecot.inject_many(user, [dsn(s.email, token=s.token) for s in sent])
        boxes.append(Mailbox.objects.create(
            name=f"side-{i}", protocol=Mailbox.Protocol.IMAP, host="127.0.0.1", port=pipeline_dovecot.imap_port,
            security=Mailbox.Security.NONE, username=user.name, password=user.password, batch_size=5))
    barrier = threading.Barrier(2)
    results: list = []

    def work(pk: int) -> None:
        try:
            barrier.wait()
            results.append(intake_mailbox.process_mailbox(mailbox_id=pk))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=[m.pk]) for m in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [getattr(r, "status", r) for r in results] == [ProcessingRun.Status.SUCCEEDED] * 2
    assert Bounce.objects.count() == 40
    assert not Mailbox.objects.filter(locked_until__isnull=False).exists()
