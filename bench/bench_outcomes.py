"""Scenario benchmark (issue 11): do the shipped defaults keep dead addresses out of the next
campaign without touching good contacts?

Both shared corpora (shared/bounce-corpus and shared/bounce-corpus-flufl) are replayed as
the bounces of a first campaign:

1. a contact for every bounced recipient of every corpus message (its address rewritten to a
   unique one, so each contact has exactly one bounce), one for every message that names
   nobody, and contacts that never bounce; all subscribed to one list;
2. campaign 1 is sent through the real sending path (campaigns.services.send_campaign) to a
   real SMTP server on loopback (tests/servers/smtp.py);
3. each corpus message comes back as the bounce of the message sent to its contact (to our
   VERP address, as a real bounce does), is dropped into a real Dovecot, and one
   `process_mailbox` run handles them: the shipped defaults (settings as created, starter
   rules loaded);
4. campaign 2 is sent through the same sending path;

then it prints, per kind the engine gave, how many contacts were acted on and mailed again,
and the two figures that must be 0:

* dead addresses still mailed: the engine said hard, and campaign 2 went to the address;
* good contacts punished: any action on a contact whose message was an auto-reply, a delay,
  a soft bounce (one each: below any threshold), blocked, or a complaint beyond the complaint
  policy, or on a contact that never bounced.

    .venv/bin/python bench/bench_outcomes.py [--good 500] [--sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BOUNCEMGR_SHARED", ROOT.parent / "shared"))
CORPORA = [SHARED / "bounce-corpus", SHARED / "bounce-corpus-flufl"]
sys.path.insert(0, str(ROOT))

GOOD_KINDS = ("autoreply", "delay", "soft", "blocked")


def load_corpora() -> list[tuple[str, bytes, list[str]]]:
    """(name, raw bytes, labelled recipients) per message of both corpora."""
    out = []
    for corpus in CORPORA:
        recipients: dict[str, list[str]] = defaultdict(list)
        for line in (corpus / "labels.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row.get("recipient") and row["recipient"] not in recipients[row["file"]]:
                recipients[row["file"]].append(row["recipient"])
        for f in sorted((corpus / "eml").iterdir()):
            if f.is_file():
                out.append((f"{corpus.name}/{f.name}", f.read_bytes(), recipients.get(f.name, [])))
    return out


def rewrite(raw: bytes, mapping: dict[str, str], token: str) -> bytes:
    """Point a corpus bounce at our contacts' addresses and at the VERP address of `token`."""
    for original, address in mapping.items():
        raw = re.sub(re.escape(original).encode(), address.encode(), raw, flags=re.I)
    return f"Delivered-To: bounces+{token}@return.example.net\n".encode() + raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=500, help="contacts that never bounce")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of a PostgreSQL server")
    args = parser.parse_args()

    from tests.servers.dovecot import DovecotServer
    from tests.servers.postgres import PostgresServer
    from tests.servers.smtp import SMTPServer

    work = Path(tempfile.mkdtemp(prefix="bm-bench-outcomes-"))
    pg = None if args.sqlite else PostgresServer.start()
    dovecot = DovecotServer.start(work / "dovecot", tls=False)
    try:
        if pg is not None:
            os.environ["DATABASE_URL"] = pg.url
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")
        os.environ.setdefault("BOUNCEMGR_VAR_DIR", str(work / "var"))
        os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gta2V5LWZvci1ib3VuY2VtZ3ItYmVuY2gtMDA=")
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "k" * 40)  # settings refuse to start without one
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with SMTPServer() as smtp:
            for name, value in smtp.email_settings().items():
                setattr(settings, name, value)
            settings.BOUNCE_LOCAL_PART = "bounces"
            settings.BOUNCE_RETURN_DOMAIN = "return.example.net"
            run(args, dovecot, smtp)
    finally:
        dovecot.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def _state(contact, subs: dict[int, set[str]], suppressed: set[str]) -> tuple:
    """Everything about a contact that an action can change."""
    if contact is None:
        return ("deleted",)
    return (contact.email, contact.status, contact.has_bounced, tuple(sorted(subs.get(contact.pk, ()))),
            (contact.email or contact.bounced_address).lower() in suppressed)


def run(args: argparse.Namespace, dovecot, smtp) -> None:
    from bounces.intake.mailbox import process_mailbox
    from bounces.models import Bounce, BounceSettings, Mailbox
    from bounces.parsing import parse_bounce
    from campaigns import services as sending
    from campaigns.models import Campaign, SentMessage
    from contacts.models import Contact, MailingList, Subscription, Suppression

    try:
        from bounces.rules.services import load_starter_rules
    except ImportError:  # before the layout move (issue 10)
        from bounces.rule_services import load_starter_rules

    BounceSettings.load()
    starter = load_starter_rules()
    corpus = load_corpora()
    mlist = MailingList.objects.create(name="bench news")
    plan: list[tuple[str, bytes, dict[str, str]]] = []
    n = 0
    for name, raw, recipients in corpus:
        mapping = {}
        for original in recipients or [None]:
            n += 1
            mapping[original or f"__none{n}"] = f"r{n}@rcpt{n % 37}.example.org"
        plan.append((name, raw, mapping))
    addresses = [a for _, _, m in plan for a in m.values()]
    good = [f"good{i}@ok.example.org" for i in range(args.good)]
    contacts = Contact.objects.bulk_create([Contact(email=a) for a in addresses + good], batch_size=1000)
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mlist) for c in contacts],
                                     batch_size=1000)
    print(f"{len(corpus)} corpus messages, {len(addresses)} bounced contacts, {len(good)} that never bounce; "
          f"{starter.created} starter rules loaded")

    def campaign(name: str) -> tuple[Campaign, set[str]]:
        before = len(smtp.received)
        c = Campaign.objects.create(name=name, subject=name, body_text="Hello", from_email="News <news@example.com>",
                                    mailing_list=mlist, status=Campaign.Status.QUEUED)
        start = time.perf_counter()
        report = sending.send_campaign(campaign_id=c.pk)
        print(f"{name}: sent {report.sent}, skipped {report.skipped} ({time.perf_counter() - start:.1f} s)")
        return c, {rcpt.lower() for env in smtp.received[before:] for rcpt in env.rcpt_tos}

    first, _ = campaign("campaign 1")
    tokens = dict(SentMessage.objects.filter(campaign=first).values_list("email", "token"))

    # What the engine says of each contact's bounce (before any rule).
    from bounces.pipeline.processing import parse_options

    options = parse_options()
    engine_kind: dict[str, str] = {}
    user = dovecot.add_user()
    for _name, raw, mapping in plan:
        first_address = next(iter(mapping.values()))
        data = rewrite(raw, {k: v for k, v in mapping.items() if not k.startswith("__none")},
                       tokens[first_address])
        result = parse_bounce(data, options) if options else parse_bounce(data)
        by_rcpt = {(r.recipient or "").lower(): str(r.category) for r in result.recipients}
        for address in mapping.values():
            kind = by_rcpt.get(address)
            if kind is None:  # the engine did not name this address: its only recipient, or the message
                kind = (str(result.recipients[0].category) if len(result.recipients) == 1 and len(mapping) == 1
                        else str(result.kind))
            engine_kind[address] = kind
        dovecot.inject(user, data)

    subs_before = _subscriptions(Subscription)
    supp_before = set(Suppression.objects.values_list("value", flat=True))
    before = {c.email: _state(c, subs_before, supp_before) for c in Contact.objects.all()}
    mailbox = Mailbox.objects.create(
        name="bench", protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
        username=user.name, password=user.password, batch_size=200,
    )
    start = time.perf_counter()
    result_run = process_mailbox(mailbox_id=mailbox.pk, trigger="command")
    print(f"pipeline: {result_run.status}; {result_run.summary()} ({time.perf_counter() - start:.1f} s)")

    _, mailed = campaign("campaign 2")
    subs_after = _subscriptions(Subscription)
    supp_after = set(Suppression.objects.values_list("value", flat=True))
    by_address = {a: c for c in Contact.objects.all() for a in (c.email, c.bounced_address) if a}
    complaint_allowed = _complaint_policy()

    table: dict[str, Counter] = defaultdict(Counter)
    dead_mailed: list[str] = []
    punished: list[tuple[str, str]] = []
    for address in addresses + good:
        kind = engine_kind.get(address, "never bounced")
        contact = by_address.get(address)
        after = _state(contact, subs_after, supp_after)
        changed = after != before[address]
        row = table[kind]
        row["contacts"] += 1
        row["acted on"] += changed
        row["mailed again"] += address in mailed
        if kind == "hard" and address in mailed:
            dead_mailed.append(address)
        if kind in GOOD_KINDS or kind == "never bounced":
            if changed:
                punished.append((address, kind))
        elif kind == "complaint" and changed and not complaint_allowed(before[address], after):
            punished.append((address, kind))
    print()
    print("| engine's kind | contacts | acted on | mailed again by campaign 2 |")
    print("|---|---:|---:|---:|")
    for kind in sorted(table, key=lambda k: -table[k]["contacts"]):
        row = table[kind]
        print(f"| {kind} | {row['contacts']} | {row['acted on']} | {row['mailed again']} |")
    print()
    print(f"dead addresses still mailed: {len(dead_mailed)}")
    print(f"good contacts punished: {len(punished)}")
    for address, kind in punished[:10]:
        bounce = Bounce.objects.filter(recipient__iexact=address).first()
        print(f"  punished {kind}: {address} -> {bounce and bounce.kind} rule {bounce and bounce.matched_rule_id}"
              f" actions {bounce and bounce.actions_taken}")
    for address in dead_mailed[:10]:
        bounce = Bounce.objects.filter(recipient__iexact=address).first()
        print(f"  still mailed: {address} -> {bounce and bounce.kind} {bounce and bounce.state}"
              f" rule {bounce and bounce.matched_rule_id} actions {bounce and bounce.actions_taken}")


def _subscriptions(Subscription) -> dict[int, set[str]]:
    subs: dict[int, set[str]] = defaultdict(set)
    for contact_id, status in Subscription.objects.values_list("contact_id", "status"):
        subs[contact_id].add(status)
    return subs


def _complaint_policy():
    """A complaint may suppress and unsubscribe (the complaint policy), nothing else."""

    def allowed(before: tuple, after: tuple) -> bool:
        if after == ("deleted",) or before == ("deleted",):
            return False
        email_b, status_b, bounced_b, _, _ = before
        email_a, status_a, bounced_a, _, _ = after
        return email_a == email_b and status_a == status_b and bounced_a == bounced_b

    return allowed


if __name__ == "__main__":
    main()
