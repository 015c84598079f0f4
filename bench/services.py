"""The real services a long bench runs against: a durable PostgreSQL, Redis and Dovecot on
loopback (the test suite's own server classes), with Django set up and migrated on that
PostgreSQL. Used by bench/soak.py, bench/bench_scale.py, bench/faults.py and
bench/storage_faults.py."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def django_on_test_services(prefix: str, *, durable: bool = True, with_redis: bool = True) -> Iterator[tuple]:
    """Start the servers in a fresh folder, set Django up on them and migrate; yield
    (postgres, redis or None, dovecot, work folder); stop them and remove the folder
    afterwards, also when the bench is ended with SIGTERM. `durable` False keeps the test
    cluster's tuning (synchronous_commit off: what the fault benches must survive)."""
    from tests.servers.dovecot import DovecotServer
    from tests.servers.postgres import PostgresServer
    from tests.servers.redis import RedisServer

    # SIGTERM ends the bench through the finally below (the servers are stopped, not orphaned)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    pg = PostgresServer.start(durable=durable)
    redis = RedisServer.start() if with_redis else None
    dovecot = DovecotServer.start(work / "dovecot", tls=False)
    try:
        os.environ["DATABASE_URL"] = pg.url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")
        os.environ.setdefault("BOUNCEMGR_VAR_DIR", str(work / "var"))
        from tests.conftest import TEST_ENCRYPTION_KEY

        os.environ["FIELD_ENCRYPTION_KEY"] = TEST_ENCRYPTION_KEY
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "k" * 40)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield pg, redis, dovecot, work
    finally:
        dovecot.stop()
        if redis is not None:
            redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def mailbox_of_bounces(dovecot, name: str, n: int, prefix: str) -> tuple[list, object, object]:
    """A list, campaign and `n` sent messages (`prefix`0..n-1@example.net), their hard bounces
    in a fresh Dovecot user's INBOX, and an IMAP mailbox `name` on it (batches of 5); returns
    (sent messages, mailbox, Dovecot user)."""
    from bounces.models import Mailbox
    from campaigns.models import Campaign
    from contacts.models import MailingList
    from tests.pipeline.conftest import dsn, send

    mlist = MailingList.objects.create(name=name)
    campaign = Campaign.objects.create(name=name, subject="s", from_email="news@example.org", mailing_list=mlist)
    user = dovecot.add_user()
    sent = [send(campaign, f"{prefix}{i}@example.net") for i in range(n)]
    dovecot.inject_many(user, [dsn(s.email, token=s.token) for s in sent])
    mailbox = Mailbox.objects.create(
        name=name.replace(" ", "-"), protocol=Mailbox.Protocol.IMAP, host="127.0.0.1", port=dovecot.imap_port,
        security=Mailbox.Security.NONE, username=user.name, password=user.password, batch_size=5,
    )
    return sent, mailbox, user


def next_run_problems(dovecot, user, mailbox, sent: list) -> tuple[list[str], float]:
    """Run the mailbox once more after a fault and check what must hold: the run succeeds
    within a minute, every message is stored and recorded once, every run together counted
    each hard bounce once, every contact was counted once, nothing is left on the server.
    Returns (problems, seconds the run took)."""
    import time

    from bounces.intake.mailbox import process_mailbox
    from bounces.models import Bounce, ProcessingRun, RawMessage
    from contacts.models import Contact

    n = len(sent)
    problems = []
    took = time.monotonic()
    run = process_mailbox(mailbox_id=mailbox.pk)
    took = time.monotonic() - took
    if run.status != ProcessingRun.Status.SUCCEEDED:
        problems.append(f"next run {run.status}: {run.error_log[-300:]}")
    if took > 60:
        problems.append(f"next run took {took:.0f} s (blocked?)")
    bounces = Bounce.objects.filter(mailbox=mailbox).count()
    counted = sum(ProcessingRun.objects.filter(mailbox=mailbox).values_list("hard", flat=True))
    hard = sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True))
    if bounces != n or RawMessage.objects.filter(mailbox=mailbox).count() != n:
        problems.append(f"{bounces} bounces stored for {n} messages")
    if counted != n:
        problems.append(f"runs counted {counted} hard bounces for {n}")
    if hard != [1] * n:
        problems.append("a contact was not counted exactly once")
    if dovecot.message_files(user):
        problems.append(f"{len(dovecot.message_files(user))} messages left on the server")
    return problems, took
