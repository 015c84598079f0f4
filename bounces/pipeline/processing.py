"""The bounce pipeline: fetch, store, process, dispose — and the services around it.

Flow of one run of one mailbox (`process_mailbox`):

1. Take the mailbox's run lock (conditional UPDATE of `Mailbox.locked_until`; it expires
   by itself if the worker dies, and is refreshed every batch).
2. List the messages on the server. Keys already stored and disposed are skipped; keys
   stored but not yet disposed (a run died between commit and disposition) are disposed
   of now, according to their stored verdict, and counted as duplicates, never again as
   bounces; keys stored but not processed are processed from the stored bytes.
3. For each batch (mailbox batch size, default 200; 500 in the bench): fetch; store the
   raw bytes (insert ignoring conflicts on the unique (mailbox, dedupe_key)) and COMMIT;
   parse (outside any transaction; large runs in a helper process, one batch ahead);
   match, run the rules and decide (reads only); then in ONE transaction: claim the rows
   and mark them processed with their outcome (`UPDATE ... WHERE state IN (new, failed)
   RETURNING id`; only rows this run got are recorded, so two runs never process one
   message), insert the Bounce rows, apply contact actions set-based; COMMIT.
4. Dispose of the batch on the server (only rows whose results are committed), then flag
   them disposed. Disposition waits for the verdict because unmatched messages have their
   own disposition (default: mark read and leave) and a rule may ask for deletion.

A crash anywhere leaves every fetched message either not stored (still on the server, the
next run fetches it) or stored (the next run finds its key and finishes the job without
counting it twice). See docs/pipeline.md.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formatdate
from hashlib import sha256
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from bounces.mailboxes import connect_mailbox
from bounces.mailboxes.base import (
    ConnectionSettings,
    Disposition,
    MailboxConnector,
    MailboxError,
    MessageRef,
    OAuth2Settings,
)
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from bounces.models import Disposition as DispositionChoice
from bounces.parsing import Category, Kind, ParseOptions, ParseResult, RecipientResult, parse_bounce
from bounces.pipeline import policies
from bounces.pipeline.decisions import Decision, decide
from bounces.pipeline.matching import NO_MATCH, BatchMatcher, Match
from bounces.pipeline.policies import Policy
from bounces.rules.ruleset import MessageView, RuleMatch, RuleSet
from bounces.rules.selectors import load_ruleset
from bounces.rules.services import record_rule_hits
from campaigns.models import SentMessage
from contacts.models import Contact, ContactEvent, Suppression
from contacts.services import Action, ContactActionBatch, bulk_insert, suppression_address

log = logging.getLogger(__name__)

LOCK_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
# Bytes of fetched mail held at once before a batch is cut short (memory bound).
MAX_BATCH_BYTES = 32 * 1024 * 1024
ERROR_LOG_LIMIT = 20_000

ProgressCallback = Callable[[ProcessingRun, int], None]


class MailboxBusyError(Exception):
    """Another run holds this mailbox's lock."""


class TransientRunError(Exception):
    """The run stopped on a temporary mailbox problem; worth retrying with backoff."""


# --------------------------------------------------------------------------- settings
def parse_options() -> ParseOptions:
    """The engine options from settings (VERP local part, tracking header)."""
    return ParseOptions(
        verp_local_prefix=django_settings.BOUNCE_LOCAL_PART,
        tracking_header=django_settings.BOUNCE_TRACKING_HEADER,
    )


def mailbox_connection_settings(mailbox: Mailbox) -> ConnectionSettings:
    """The connector settings of `mailbox` (decrypted secrets; never logged)."""
    oauth2 = None
    if mailbox.auth == Mailbox.Auth.XOAUTH2:
        oauth2 = OAuth2Settings(
            token_url=mailbox.oauth2_token_url, client_id=mailbox.oauth2_client_id,
            client_secret=mailbox.oauth2_client_secret or "",
            refresh_token=mailbox.oauth2_refresh_token or "", scope=mailbox.oauth2_scope,
            on_token=_token_saver(mailbox.pk),
        )
    return ConnectionSettings(
        ca_pem=mailbox.ca_pem or None,
        protocol=mailbox.protocol,  # type: ignore[arg-type]
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,  # type: ignore[arg-type]
        verify_certificate=mailbox.verify_certificate,
        username=mailbox.username,
        password=mailbox.password or "",
        folder=mailbox.folder or "INBOX",
        path=mailbox.path,
        oauth2=oauth2,
    )


def _token_saver(mailbox_id: int) -> Callable[[Any], None]:
    def save(token: Any) -> None:
        # Microsoft rotates refresh tokens: keep the newest one.
        if getattr(token, "refresh_token", None):
            Mailbox.objects.filter(pk=mailbox_id).update(oauth2_refresh_token=token.refresh_token)

    return save


def open_connector(conn: ConnectionSettings) -> MailboxConnector:
    """A connected connector for `conn`; the caller closes it."""
    return connect_mailbox(conn)


# --------------------------------------------------------------------------- rules adapter
def _load_rules() -> RuleSet | None:
    """The enabled rules, or None when there are none (the engine's verdict stands)."""
    ruleset = load_ruleset()
    return ruleset if len(ruleset) else None


def _rule_match(ruleset: RuleSet | None, raw: bytes, result: ParseResult, recipient: RecipientResult | None,
                view_cache: dict) -> RuleMatch | None:
    if ruleset is None:
        return None
    view = view_cache.get("view")
    if view is None:
        view = view_cache["view"] = MessageView.from_raw(raw, result)
    return ruleset.first_match(message=view, recipient=recipient)


# --------------------------------------------------------------------------- processing
@dataclass
class Item:
    """One stored message to process: its row id, bytes and parse result."""

    raw_id: int
    raw: bytes
    result: ParseResult
    forced_match: Match | None = None  # send-time refusals know their SentMessage


@dataclass
class BatchOutcome:
    counts: Counter = field(default_factory=Counter)
    processed_ids: list[int] = field(default_factory=list)
    bounces: list[Bounce] = field(default_factory=list)


@dataclass
class Processor:
    """Processes stored messages in batches; one transaction per batch (see module doc)."""

    run: ProcessingRun | None
    mailbox: Mailbox | None
    policy: Policy
    options: ParseOptions = field(default_factory=parse_options)
    ruleset: RuleSet | None = None
    actor_label: str = ""
    claim: str = field(default_factory=lambda: secrets.token_hex(8))

    def __post_init__(self) -> None:
        list_ids = list(self.mailbox.lists.values_list("id", flat=True)) if self.mailbox else []
        self.list_ids = list_ids
        if not self.actor_label:
            self.actor_label = f"run #{self.run.pk}" if self.run else "bounce pipeline"

    def parse(self, raw_id: int, raw: bytes) -> Item:
        return Item(raw_id=raw_id, raw=raw, result=parse_bounce(raw, self.options))

    # -- claim ------------------------------------------------------------------------
    def _claim(self, groups: dict[tuple[str, bool], list[int]], now: datetime) -> set[int]:
        """Conditionally take the rows, marking them processed; return the ids this run got.

        Per outcome: `UPDATE ... SET state='processed', outcome=…, claim=<run token> WHERE
        id IN (…) AND state IN ('new', 'failed') RETURNING id`. A row another run claimed
        (committed, or still locked by its open transaction) is not returned: under READ
        COMMITTED a concurrent claimer waits for that commit, re-checks the state and skips
        the row. Inside the caller's transaction, so a failure rolls the claim back too.
        """
        got: set[int] = set()
        table = connection.ops.quote_name(RawMessage._meta.db_table)
        returning = connection.features.can_return_rows_from_bulk_insert
        for (outcome_value, delete), ids in groups.items():
            for chunk in _chunked(ids, 900):
                marks = ", ".join(["%s"] * len(chunk))
                sql = (
                    f"UPDATE {table} SET state = %s, outcome = %s, delete_requested = %s, processed_at = %s, "
                    f"error = '', claim = %s, run_id = %s, attempts = attempts + 1 "
                    f"WHERE id IN ({marks}) AND state IN (%s, %s)"
                )
                params = [
                    RawMessage.State.PROCESSED.value, str(outcome_value), delete,
                    RawMessage._meta.get_field("processed_at").get_db_prep_save(now, connection),
                    self.claim, self.run.pk if self.run else None, *chunk,
                    RawMessage.State.NEW.value, RawMessage.State.FAILED.value,
                ]
                with connection.cursor() as cursor:
                    if returning:
                        cursor.execute(sql + " RETURNING id", params)
                        got.update(row[0] for row in cursor.fetchall())
                    else:  # pragma: no cover - every supported backend returns rows
                        cursor.execute(sql, params)
                        got.update(RawMessage.objects.filter(id__in=chunk, claim=self.claim,
                                                             state=RawMessage.State.PROCESSED)
                                   .values_list("id", flat=True))
        return got

    # -- one batch ---------------------------------------------------------------------
    def process(self, items: list[Item]) -> BatchOutcome:
        """Decide for `items`, then claim, record and act in one transaction.

        Matching, rules and decisions only read, so they run before the transaction; the
        transaction starts with the claim, which also marks the rows processed with their
        outcome (one conditional UPDATE per outcome), and only claimed rows are recorded.
        """
        outcome = BatchOutcome()
        if not items:
            return outcome
        now = timezone.now()
        matcher = BatchMatcher(list_ids=self.list_ids, verp_prefix=self.options.verp_local_prefix)
        matcher.prepare(i.result for i in items if i.forced_match is None)
        planned: list[tuple[Item, list[tuple[Bounce, Decision, Match]]]] = []
        rule_hits: dict[int, Counter] = {}
        failed: dict[int, str] = {}
        groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
        for item in items:
            hits: Counter = Counter()
            try:
                rows = self._plan(item, matcher, now, hits)
            except Exception as exc:  # a bug on one message must not stop the batch
                log.exception("processing raw message %s failed", item.raw_id)
                failed[item.raw_id] = f"raw message {item.raw_id}: {type(exc).__name__}: {exc}"
                rows = [self._error_row(item, now, exc)]
            rule_hits[item.raw_id] = hits
            planned.append((item, rows))
            groups[_outcome_of(rows)].append(item.raw_id)
        with transaction.atomic():
            got = self._claim(groups, now)
            mine = [(item, rows) for item, rows in planned if item.raw_id in got]
            outcome.counts["skipped_claimed"] = len(items) - len(mine)
            if not mine:
                return outcome
            for item, _ in mine:
                if item.raw_id in failed:
                    outcome.counts["errors"] += 1
                    self._log_error(failed[item.raw_id])
            self._apply(mine, now, outcome)
            total_hits: Counter = Counter()
            for item, _ in mine:
                total_hits.update(rule_hits[item.raw_id])
            record_rule_hits(hits=dict(total_hits))
        return outcome

    def _plan(self, item: Item, matcher: BatchMatcher, now: datetime, rule_hits: Counter
              ) -> list[tuple[Bounce, Decision, Match]]:
        result = item.result
        recipients: tuple[RecipientResult | None, ...] = result.recipients or (None,)
        rows: list[tuple[Bounce, Decision, Match]] = []
        seen: set[str] = set()
        view_cache: dict = {}
        for recipient in recipients:
            address = (recipient.recipient or "").lower() if recipient else ""
            if address in seen:
                continue
            seen.add(address)
            category = recipient.category if recipient else _category_without_recipient(result)
            rule = _rule_match(self.ruleset, item.raw, result, recipient, view_cache)
            if rule is not None:
                rule_hits[rule.rule_id] += 1
            decision = decide(category=category, rule=rule, mailbox_policy=self.policy)
            match = item.forced_match or (NO_MATCH if decision.not_bounce else
                                          matcher.match(result, recipient, item.raw))
            if not address and match.email and len(recipients) == 1:
                address = match.email  # e.g. an ARF report that hides the recipient
            bounce = Bounce(
                raw_message_id=item.raw_id,
                mailbox=self.mailbox,
                sent_message_id=match.sent_message_id,
                contact_id=match.contact_id,
                campaign_id=match.campaign_id,
                run=self.run,
                recipient=address[:254],
                kind=decision.kind,
                reason=(decision.reason or (recipient.reason if recipient else "")
                        or ("not_bounce" if result.kind == Kind.NOT_BOUNCE else ""))[:32],
                status_code=((recipient.status if recipient else None) or "")[:16],
                reply_code=((recipient.replycode if recipient else None) or "")[:3],
                diagnostic=(recipient.diagnostic if recipient else (result.error or ""))[:4000],
                remote_mta=((recipient.remote_mta if recipient else None) or "")[:255],
                permanent=recipient.permanent if recipient else None,
                address_bad=recipient.hard if recipient else None,
                matched_rule_id=decision.rule_id,
                match_method=match.method,
                bounced_at=now,
            )
            rows.append((bounce, decision, match))
        return rows

    def _error_row(self, item: Item, now: datetime, exc: Exception) -> tuple[Bounce, Decision, Match]:
        bounce = Bounce(
            raw_message_id=item.raw_id, mailbox=self.mailbox, run=self.run, recipient="",
            kind=Bounce.Kind.UNKNOWN, reason="error",
            diagnostic=f"processing error: {type(exc).__name__}: {exc}"[:4000], bounced_at=now,
        )
        return (bounce, Decision(kind=Bounce.Kind.UNKNOWN, queue=True), NO_MATCH)

    def _apply(self, planned: list, now: datetime, outcome: BatchOutcome) -> None:
        batch = ContactActionBatch(actor_label=self.actor_label, now=now)
        contact_ids = {m.contact_id for _, rows in planned for _, _, m in rows if m.contact_id}
        contacts = batch.lock(contact_ids)
        soft_matches = [m for _, rows in planned for _, d, m in rows if d.count_soft and m.contact_id in contacts]
        soft = _SoftCounter(
            self.policy, [contacts[m.contact_id] for m in soft_matches], soft_matches, now,
            bounced_sent_ids={m.sent_message_id for _, rows in planned for _, d, m in rows
                              if m.sent_message_id and d.kind in _SENT_STATUS and not d.not_bounce},
        )
        sent_status: dict[int, str] = {}
        counts = outcome.counts
        for item, rows in planned:
            for bounce, decision, match in rows:
                contact = contacts.get(match.contact_id) if match.contact_id else None
                if match.contact_id and contact is None:
                    # the contact vanished (deleted earlier in this batch or meanwhile)
                    bounce.contact_id = None
                if decision.not_bounce:
                    bounce.state = Bounce.State.IGNORED
                    counts["ignored"] += 1
                    continue
                counts[decision.kind] += 1
                needs_contact = decision.kind in (Bounce.Kind.HARD, Bounce.Kind.SOFT, Bounce.Kind.COMPLAINT)
                if decision.queue:
                    # unknown / not understood: the operator's "unexplained" queue
                    bounce.state = Bounce.State.UNMATCHED
                    continue
                if contact is None:
                    if needs_contact:
                        bounce.state = Bounce.State.UNMATCHED
                        counts["unmatched"] += 1
                    else:
                        bounce.state = Bounce.State.RECORDED  # blocked / delay / auto-reply
                    continue
                taken: list[str] = []
                detail = {"bounce_kind": decision.kind, "reason": bounce.reason, "run": self.actor_label}
                list_id = match.list_id
                if decision.kind == Bounce.Kind.SOFT:
                    taken += _count_soft(batch, soft, contact, match, list_id=list_id, detail=detail)
                    bounce.counted = True
                if decision.kind == Bounce.Kind.HARD:
                    bounce.counted = True
                reason = (Suppression.Reason.COMPLAINT if decision.kind == Bounce.Kind.COMPLAINT
                          else Suppression.Reason.HARD_BOUNCE)
                if decision.actions:
                    taken += batch.apply(contact, decision.actions, list_id=list_id, reason=reason,
                                         detail=detail)
                bounce.actions_taken = taken
                bounce.state = Bounce.State.APPLIED if (taken or bounce.counted) else Bounce.State.RECORDED
                if match.sent_message_id:
                    status = _SENT_STATUS.get(decision.kind)
                    if status and _SENT_RANK[status] > _SENT_RANK.get(sent_status.get(match.sent_message_id, ""), 0):
                        sent_status[match.sent_message_id] = status
            outcome.processed_ids.append(item.raw_id)
            outcome.bounces.extend(b for b, _, _ in rows)
        bulk_insert(Bounce, outcome.bounces)
        batch.flush()
        by_status: dict[str, list[int]] = defaultdict(list)
        for sent_id, status in sent_status.items():
            by_status[status].append(sent_id)
        for status, ids in by_status.items():
            # never downgrade: bounced > complained > soft_bounced
            lower = [s for s, rank in _SENT_RANK.items() if rank < _SENT_RANK[status]]
            SentMessage.objects.filter(id__in=ids, status__in=lower).update(status=status)

    def mark_failed(self, ids: list[int], error: str) -> None:
        """After a failed batch transaction: leave the rows stored and retryable."""
        RawMessage.objects.filter(id__in=ids).exclude(state=RawMessage.State.PROCESSED).update(
            state=RawMessage.State.FAILED, error=error[:2000], attempts=F("attempts") + 1
        )

    def _log_error(self, line: str) -> None:
        if self.run is not None:
            self.run.error_log = (self.run.error_log + line + "\n")[-ERROR_LOG_LIMIT:]


def _outcome_of(rows: list[tuple[Bounce, Decision, Match]]) -> tuple[str, bool]:
    """The message's outcome (for its disposition) and whether a rule asked for deletion."""
    delete = any(d.delete_message for _, d, _ in rows)
    if all(d.not_bounce for _, d, _ in rows):
        return RawMessage.Outcome.IGNORED, delete
    if any(m.matched for _, d, m in rows if not d.not_bounce):
        return RawMessage.Outcome.MATCHED, delete
    return RawMessage.Outcome.UNMATCHED, delete


_SENT_STATUS = {
    Bounce.Kind.HARD: SentMessage.Status.BOUNCED,
    Bounce.Kind.SOFT: SentMessage.Status.SOFT_BOUNCED,
    Bounce.Kind.COMPLAINT: SentMessage.Status.COMPLAINED,
}
_SENT_RANK = {
    SentMessage.Status.SENT: 0, SentMessage.Status.QUEUED: 0, SentMessage.Status.DEFERRED: 0,
    SentMessage.Status.SOFT_BOUNCED: 1, SentMessage.Status.COMPLAINED: 2, SentMessage.Status.REFUSED: 2,
    SentMessage.Status.BOUNCED: 3,
}


def _category_without_recipient(result: ParseResult) -> str:
    if result.kind == Kind.COMPLAINT:
        return Category.COMPLAINT
    if result.kind == Kind.AUTOREPLY:
        return Category.AUTOREPLY
    if result.kind == Kind.DELIVERED:
        return Category.DELIVERED
    if result.kind == Kind.NOT_BOUNCE:
        return Category.NOT_BOUNCE
    return Category.UNKNOWN


def _count_soft(batch: ContactActionBatch, soft: _SoftCounter, contact: Contact, match: Match, *,
                list_id: int | None, detail: dict) -> list[str]:
    """Count one soft bounce of `contact` under the policy; at a threshold, act. Returns what was done."""
    contact.soft_bounce_count += 1
    contact.last_bounce_at = batch.now
    batch.touch(contact)
    res = soft.register(contact, match)
    batch.event(contact, ContactEvent.Kind.SOFT_BOUNCE,
                detail={**detail, "level": res.level, "policy": soft.policy.soft_policy})
    taken = ["count_soft"]
    extra: list[str] = []
    # The hard action runs once: a contact already hard-bounced (a window or score crossed
    # again, or an earlier hard bounce) is not marked again; an operator's reset re-arms it.
    to_hard = res.reached_threshold and not contact.has_bounced
    if to_hard:
        extra += [Action.MARK_HARD, *soft.policy.hard_actions]
    if res.reached_blacklist:
        extra.append(Action.BLACKLIST_ADDRESS)
    if extra:
        taken += batch.apply(contact, extra, list_id=list_id, reason=Suppression.Reason.SOFT_BOUNCE,
                             detail={**detail, "threshold": True})
        if to_hard:
            taken.append("soft_threshold")
    return taken


class _SoftCounter:
    """Soft-policy arithmetic for one batch: one query for window counts, one for chains.

    `contacts` are the locked contacts with soft bounces in the batch; `bounced_sent_ids`
    the SentMessages this batch records a bounce for (their status is updated only at the
    end of the batch, but they did bounce, so they never break a chain).
    """

    def __init__(self, policy: Policy, contacts: list[Contact], matches: list[Match], now: datetime,
                 bounced_sent_ids: set[int]) -> None:
        self.policy = policy
        self.now = now
        ids = sorted({c.id for c in contacts})
        self.window: Counter = Counter()
        self.clean: dict[int, list[datetime]] = defaultdict(list)
        if not ids:
            return
        if policy.soft_policy == "window":
            since = now - timedelta(days=policy.soft_window_days)
            rows = (Bounce.objects.filter(contact_id__in=ids, kind=Bounce.Kind.SOFT, counted=True,
                                          bounced_at__gte=since)
                    .values("contact_id").annotate(n=Count("id")).values_list("contact_id", "n"))
            self.window.update(dict(rows))
        # Messages sent to these contacts that did not bounce, from the earliest point a
        # chain can start at in this batch (a contact's last counted send, or a send bounced here).
        starts = [c.last_bounce_sent_at for c in contacts if c.last_bounce_sent_at]
        starts += [m.sent_at for m in matches if m.sent_at]
        if starts:
            for contact_id, sent_id, sent_at in SentMessage.objects.filter(
                contact_id__in=ids, status=SentMessage.Status.SENT, sent_at__gt=min(starts),
            ).values_list("contact_id", "id", "sent_at"):
                if sent_id not in bounced_sent_ids:
                    self.clean[contact_id].append(sent_at)

    def register(self, contact: Contact, match: Match) -> policies.SoftOutcome:
        state = policies.SoftState(
            consecutive_bounces=contact.consecutive_bounces, bounce_score=contact.bounce_score,
            bounce_scored_on=contact.bounce_scored_on, last_bounce_sent_at=contact.last_bounce_sent_at,
        )
        result = policies.register_soft(
            self.policy, state, at=self.now, sent_at=match.sent_at,
            chain_broken=policies.chain_broken(contact.last_bounce_sent_at, match.sent_at,
                                               self.clean[contact.id]),
            window_before=self.window[contact.id],
        )
        self.window[contact.id] += 1
        s = result.state
        contact.consecutive_bounces = s.consecutive_bounces
        contact.bounce_score = s.bounce_score
        contact.bounce_scored_on = s.bounce_scored_on
        contact.last_bounce_sent_at = s.last_bounce_sent_at
        return result


# --------------------------------------------------------------------------- locking
def acquire_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Take the mailbox's run lock if free or expired (conditional UPDATE; True if taken)."""
    now = timezone.now()
    taken = Mailbox.objects.filter(pk=mailbox_id).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(lock_token=token)
    ).update(lock_token=token, locked_until=now + ttl)
    return taken == 1


def refresh_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Extend our lock; False when it was lost (expired and taken by another run)."""
    return Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(
        locked_until=timezone.now() + ttl
    ) == 1


def release_mailbox_lock(mailbox_id: int, token: str) -> None:
    Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(lock_token="", locked_until=None)


# --------------------------------------------------------------------------- runs
def create_run(*, mailbox: Mailbox | None, trigger: str, actor: Any = None, dry_run: bool = False
               ) -> ProcessingRun:
    """A queued run (the admin button creates it before queuing the task)."""
    return ProcessingRun.objects.create(
        mailbox=mailbox, trigger=trigger, dry_run=dry_run,
        triggered_by=actor if getattr(actor, "pk", None) else None,
    )


_COUNT_FIELDS = ("fetched", "duplicates", "hard", "soft", "blocked", "complaint", "autoreply", "delay",
                 "unknown", "unmatched", "errors", "total", "processed")


def _save_run(run: ProcessingRun, *extra: str) -> None:
    run.save(update_fields=[*_COUNT_FIELDS, "error_log", *extra])


def _add_counts(run: ProcessingRun, counts: Counter) -> None:
    for name in ("hard", "soft", "blocked", "complaint", "autoreply", "delay", "unknown", "unmatched", "errors"):
        setattr(run, name, getattr(run, name) + counts.get(name, 0))


@dataclass
class _Fetched:
    ref: MessageRef
    raw: bytes


def process_mailbox(
    *,
    mailbox_id: int,
    run_id: int | None = None,
    trigger: str = ProcessingRun.Trigger.SCHEDULE,
    dry_run: bool = False,
    actor: Any = None,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
    crash_after_commit: Callable[[list[int]], None] | None = None,
) -> ProcessingRun:
    """Run the pipeline once for one mailbox; returns the finished run.

    Raises `TransientRunError` (after recording it on the run and the mailbox) when the
    server could not be reached or dropped the connection, so the task can retry with
    backoff. `crash_after_commit` is a test hook called after a batch's results are
    committed and before its disposition.
    """
    mailbox = Mailbox.objects.get(pk=mailbox_id)
    if run_id is not None:
        run = ProcessingRun.objects.get(pk=run_id)
    else:
        run = create_run(mailbox=mailbox, trigger=trigger, actor=actor, dry_run=dry_run)
    dry_run = dry_run or run.dry_run
    token = secrets.token_hex(8)
    now = timezone.now()
    run.status = ProcessingRun.Status.RUNNING
    run.started_at = now
    run.save(update_fields=["status", "started_at"])
    if not acquire_mailbox_lock(mailbox.pk, token):
        run.status = ProcessingRun.Status.SKIPPED
        run.finished_at = timezone.now()
        run.error_log = "Another run of this mailbox is in progress; this one did nothing."
        run.save(update_fields=["status", "finished_at", "error_log"])
        return run
    # We hold the lock, so no other run of this mailbox is alive: one still marked running
    # was interrupted (worker killed, machine restarted). Say so instead of "running" forever.
    # (Reprocessing runs take no lock and may legitimately run alongside.)
    ProcessingRun.objects.filter(mailbox=mailbox, status=ProcessingRun.Status.RUNNING).exclude(
        pk=run.pk).exclude(trigger=ProcessingRun.Trigger.REPROCESS).update(
        status=ProcessingRun.Status.FAILED, finished_at=timezone.now(),
        error_log="Interrupted: the worker stopped before the run finished. What it stored was "
                  "picked up by a later run.",
    )
    transient = False
    try:
        _run_mailbox(run, mailbox, token, dry_run=dry_run, progress=progress,
                     batch_size=batch_size or mailbox.batch_size, crash_after_commit=crash_after_commit)
        run.status = ProcessingRun.Status.PARTIAL if run.errors else ProcessingRun.Status.SUCCEEDED
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_run_at=now, last_success_at=timezone.now(), last_error="",
        )
    except MailboxError as exc:
        transient = bool(exc.transient)
        _fail(run, mailbox, f"{exc.category}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), now)
    except Exception as exc:
        log.exception("run %s of mailbox %s failed", run.pk, mailbox.pk)
        _fail(run, mailbox, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", now)
        raise
    finally:
        run.finished_at = timezone.now()
        _save_run(run, "status", "finished_at")
        release_mailbox_lock(mailbox.pk, token)
    if transient:
        raise TransientRunError(run.error_log.strip().splitlines()[-1] if run.error_log else "transient error")
    return run


def _fail(run: ProcessingRun, mailbox: Mailbox, message: str, started: datetime) -> None:
    run.status = ProcessingRun.Status.FAILED
    run.errors += 1
    run.error_log = (run.error_log + message + "\n")[-ERROR_LOG_LIMIT:]
    Mailbox.objects.filter(pk=mailbox.pk).update(
        last_run_at=started, last_error=message[:2000], last_error_at=timezone.now()
    )


def _disposition(mailbox: Mailbox, outcome: str, delete_requested: bool) -> Disposition:
    if delete_requested:
        return Disposition.delete()
    if outcome == RawMessage.Outcome.MATCHED:
        action, folder = mailbox.processed_action, mailbox.processed_folder
    else:
        action, folder = mailbox.unmatched_action, mailbox.unmatched_folder
    if action == DispositionChoice.MOVE:
        if not folder:
            return Disposition.mark_read()  # no target: the safe choice
        return Disposition.move(folder)
    return Disposition(action)


def _run_mailbox(run: ProcessingRun, mailbox: Mailbox, token: str, *, dry_run: bool,
                 progress: ProgressCallback | None, batch_size: int,
                 crash_after_commit: Callable[[list[int]], None] | None) -> None:
    processor = Processor(run=run, mailbox=mailbox, policy=policies.effective_policy(mailbox),
                          ruleset=_load_rules())
    conn = mailbox_connection_settings(mailbox)
    box = open_connector(conn)
    try:
        state = box.open_folder(conn.folder, expected_uidvalidity=mailbox.uidvalidity)
        if state.uidvalidity != mailbox.uidvalidity and not dry_run:
            Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=state.uidvalidity)
        # The folder was reset (restored, recreated): every stored key is void, so messages
        # we already processed come back under new keys. Recognise them by their bytes.
        by_content = bool(state.uidvalidity_changed and mailbox.uidvalidity is not None)
        if by_content:
            run.error_log += (f"UIDVALIDITY changed ({mailbox.uidvalidity} -> {state.uidvalidity}); "
                              "recognising known messages by their content this run.\n")
        refs = box.list_messages(unseen_only=mailbox.fetch_mode == Mailbox.FetchMode.UNSEEN)
        known = _known_rows(mailbox, [r.key for r in refs])
        if not dry_run:
            _settle_vanished(mailbox, run, {r.key for r in refs})
        # 1. stored earlier, results committed, disposition not done: finish the job.
        pending_dispose = {r: known[r.key] for r in refs if r.key in known
                           and known[r.key]["state"] == RawMessage.State.PROCESSED
                           and not known[r.key]["disposed"]}
        # 2. stored earlier, not processed (crash or failure): process from the stored bytes.
        stored_unprocessed = [r for r in refs if r.key in known
                              and known[r.key]["state"] != RawMessage.State.PROCESSED]
        new_refs = [r for r in refs if r.key not in known]
        limit = mailbox.max_messages_per_run
        if limit:
            new_refs = new_refs[: max(0, limit - len(stored_unprocessed))]
        run.total = len(new_refs) + len(stored_unprocessed)
        run.duplicates += len(pending_dispose)
        _save_run(run)
        if pending_dispose and not dry_run:
            _dispose(box, mailbox, {ref: (row["id"], row["outcome"], row["delete_requested"])
                                    for ref, row in pending_dispose.items()})
        if stored_unprocessed:
            by_key = {r.key: r for r in stored_unprocessed}
            for chunk in _chunked([known[r.key]["id"] for r in stored_unprocessed], batch_size):
                rows = list(RawMessage.objects.filter(id__in=chunk).values_list("id", "dedupe_key", "raw"))
                items = [processor.parse(i, bytes(raw)) for i, _, raw in rows]
                if dry_run:  # counts only: nothing claimed, recorded or disposed
                    _dry_process_items(run, processor, items)
                    _after_batch(run, mailbox, token, len(items), progress)
                    continue
                refs_by_id = {i: by_key[k] for i, k, _ in rows}
                _process_and_dispose(run, box, mailbox, processor, items, refs_by_id,
                                     crash_after_commit=crash_after_commit)
                _after_batch(run, mailbox, token, len(items), progress)
        parser = BackgroundParser.start(processor.options) if (
            not dry_run and len(new_refs) >= PARALLEL_PARSE_MIN) else None
        pending: tuple[dict[int, MessageRef], Any] | None = None

        def finish(entry: tuple[dict[int, MessageRef], Any]) -> None:
            refs_by_id, parsed = entry
            items = parsed.result() if parser is not None else parsed
            _process_and_dispose(run, box, mailbox, processor, items, refs_by_id,
                                 crash_after_commit=crash_after_commit)
            _after_batch(run, mailbox, token, len(items), progress)

        try:
            for batch in _fetch_batches(box, new_refs, batch_size):
                run.fetched += len(batch)
                if dry_run:
                    _dry_process(run, processor, mailbox, batch)
                    _after_batch(run, mailbox, token, len(batch), progress)
                    continue
                if by_content:
                    batch = _skip_known_content(box, mailbox, run, batch)
                    if not batch:
                        continue
                ids_by_key = _store(mailbox, run, batch)
                refs_by_id = {ids_by_key[f.ref.key]: f.ref for f in batch if f.ref.key in ids_by_key}
                pairs = [(ids_by_key[f.ref.key], f.raw) for f in batch if f.ref.key in ids_by_key]
                del batch
                if parser is None:
                    finish((refs_by_id, [processor.parse(i, raw) for i, raw in pairs]))
                    continue
                # Large runs: parse this batch in a worker process while the previous
                # batch is processed and disposed here (one batch of lookahead).
                entry = (refs_by_id, parser.submit(pairs))
                if pending is not None:
                    finish(pending)
                pending = entry
            if pending is not None:
                finish(pending)
                pending = None
        finally:
            if parser is not None:
                parser.close()
    finally:
        box.close()


# Runs with at least this many new messages parse in a helper process, overlapping the
# engine (the biggest CPU cost) with the database work and the IMAP traffic.
PARALLEL_PARSE_MIN = 2000
# Tests that start helper threads of their own may allow the fork anyway.
FORK_WITH_THREADS = False


def _parse_pairs(pairs: list[tuple[int, bytes]], options: ParseOptions) -> list[Item]:
    return [Item(raw_id=i, raw=raw, result=parse_bounce(raw, options)) for i, raw in pairs]


class BackgroundParser:
    """One forked worker process that parses batches (the engine is pure Python, no DB).

    Falls back to parsing in-process when a process cannot be started here (e.g. inside
    a daemonic worker): `start` then returns an object that parses synchronously.
    """

    def __init__(self, options: ParseOptions, executor: Any) -> None:
        self.options = options
        self.executor = executor

    @classmethod
    def start(cls, options: ParseOptions) -> BackgroundParser:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = None
        # Forking a process that runs other threads can deadlock the child on a lock one
        # of them held (logging, ...): then parse here (e.g. Celery's thread pool).
        alone = threading.active_count() == 1 or FORK_WITH_THREADS
        if alone and not multiprocessing.current_process().daemon and (os.cpu_count() or 1) > 1:
            try:
                executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
            except (OSError, ValueError):  # pragma: no cover - no fork here
                executor = None
        return cls(options, executor)

    def submit(self, pairs: list[tuple[int, bytes]]) -> Any:
        from concurrent.futures import Future

        if self.executor is not None:
            try:
                return self.executor.submit(_parse_pairs, pairs, self.options)
            except Exception:  # noqa: BLE001 - a broken pool: parse here instead
                log.warning("background parser unavailable; parsing in-process", exc_info=True)
                self.executor = None
        done: Future = Future()
        done.set_result(_parse_pairs(pairs, self.options))
        return done

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _after_batch(run: ProcessingRun, mailbox: Mailbox, token: str, n: int,
                 progress: ProgressCallback | None) -> None:
    run.processed += n
    _save_run(run)
    if not refresh_mailbox_lock(mailbox.pk, token):
        raise RuntimeError("the mailbox lock expired and was taken by another run")
    if progress is not None:
        progress(run, n)


def _chunked(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _settle_vanished(mailbox: Mailbox, run: ProcessingRun, listed: set[str]) -> None:
    """Flag as disposed the processed rows of recent failed runs that left the server.

    A worker killed after the server carried out a disposition but before the `disposed`
    flag was committed leaves rows that look undisposed while the message is gone (or
    seen); nothing is left to do for them.
    """
    since = timezone.now() - timedelta(days=7)
    failed_runs = (ProcessingRun.objects.filter(mailbox=mailbox, created_at__gte=since)
                   .exclude(status=ProcessingRun.Status.SUCCEEDED).exclude(pk=run.pk).values("id"))
    stale = [pk for pk, key in RawMessage.objects.filter(
        run_id__in=failed_runs, state=RawMessage.State.PROCESSED, disposed=False,
    ).values_list("id", "dedupe_key") if key not in listed]
    for chunk in _chunked(stale, 900):
        RawMessage.objects.filter(id__in=chunk).update(disposed=True)


def _known_rows(mailbox: Mailbox, keys: list[str]) -> dict[str, dict]:
    known: dict[str, dict] = {}
    for chunk in _chunked(keys, 900):
        for row in RawMessage.objects.filter(mailbox=mailbox, dedupe_key__in=chunk).values(
            "id", "dedupe_key", "state", "outcome", "delete_requested", "disposed"
        ):
            known[row["dedupe_key"]] = row
    return known


def _fetch_batches(box: MailboxConnector, refs: list[MessageRef], batch_size: int) -> Iterator[list[_Fetched]]:
    batch: list[_Fetched] = []
    size = 0
    for message in box.fetch(refs, batch_size=batch_size):
        batch.append(_Fetched(message.ref, message.raw))
        size += len(message.raw)
        if len(batch) >= batch_size or size >= MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def dedupe_key_for(ref: MessageRef | None, raw: bytes) -> str:
    """The stored identity of a message: the connector's key, else a hash of the bytes."""
    if ref is not None and ref.key:
        return ref.key[:255]
    return "sha256:" + sha256(raw).hexdigest()


def _skip_known_content(box: MailboxConnector, mailbox: Mailbox, run: ProcessingRun,
                        batch: list[_Fetched]) -> list[_Fetched]:
    """Drop (and dispose of) messages whose exact bytes this mailbox already processed."""
    hashes = {sha256(f.raw).hexdigest(): f for f in batch}
    known: dict[str, tuple[int, str, bool]] = {}
    for chunk in _chunked(list(hashes), 500):
        for pk, digest, outcome, delete in RawMessage.objects.filter(
            mailbox=mailbox, sha256__in=chunk, state=RawMessage.State.PROCESSED
        ).values_list("id", "sha256", "outcome", "delete_requested"):
            known[digest] = (pk, outcome, delete)
    if not known:
        return batch
    run.duplicates += len(known)
    box.apply({hashes[d].ref: _disposition(mailbox, outcome, delete) for d, (_, outcome, delete) in known.items()})
    return [f for d, f in hashes.items() if d not in known]


def _store(mailbox: Mailbox, run: ProcessingRun, batch: list[_Fetched]) -> dict[str, int]:
    """Insert the raw rows (skipping keys already stored) and commit; return key -> id."""
    rows = []
    for f in batch:
        rows.append(RawMessage(
            mailbox=mailbox, source=RawMessage.Source.MAILBOX, dedupe_key=dedupe_key_for(f.ref, f.raw),
            sha256=sha256(f.raw).hexdigest(), raw=f.raw, size=len(f.raw), run=run,
        ))
    keys = [r.dedupe_key for r in rows]
    with transaction.atomic():
        bulk_insert(RawMessage, rows, ignore_conflicts=True)
    ids: dict[str, int] = {}
    fresh = 0
    for chunk in _chunked(keys, 900):
        for pk, key, row_run in RawMessage.objects.filter(mailbox=mailbox, dedupe_key__in=chunk).values_list(
            "id", "dedupe_key", "run_id"
        ):
            ids[key] = pk
            fresh += row_run == run.pk
    run.duplicates += len(set(keys)) - fresh
    return ids


def _process_and_dispose(run: ProcessingRun, box: MailboxConnector, mailbox: Mailbox, processor: Processor,
                         items: list[Item], refs_by_id: dict[int, MessageRef], *,
                         crash_after_commit: Callable[[list[int]], None] | None) -> None:
    try:
        outcome = processor.process(items)
    except Exception as exc:
        log.exception("batch of %s messages failed", len(items))
        error = f"{type(exc).__name__}: {exc}"
        processor.mark_failed([i.raw_id for i in items], error)
        run.errors += 1
        run.error_log = (run.error_log + f"batch of {len(items)} failed: {error}\n")[-ERROR_LOG_LIMIT:]
        return
    _add_counts(run, outcome.counts)
    if crash_after_commit is not None:
        crash_after_commit(outcome.processed_ids)
    # Dispose of every row of this batch whose results are committed (ours, or a
    # concurrent run's that claimed it first: the message is done either way).
    rows = RawMessage.objects.filter(id__in=list(refs_by_id), state=RawMessage.State.PROCESSED,
                                     disposed=False).values_list("id", "outcome", "delete_requested")
    _dispose(box, mailbox, {refs_by_id[i]: (i, o, d) for i, o, d in rows})


def _dispose(box: MailboxConnector, mailbox: Mailbox, rows: dict[MessageRef, tuple[int, str, bool]]) -> None:
    if not rows:
        return
    box.apply({ref: _disposition(mailbox, outcome, delete) for ref, (_, outcome, delete) in rows.items()})
    RawMessage.objects.filter(id__in=[i for i, _, _ in rows.values()]).update(disposed=True)


def _dry_process(run: ProcessingRun, processor: Processor, mailbox: Mailbox, batch: list[_Fetched]) -> None:
    """Store and process in a transaction that is rolled back: counts only, no changes."""
    with transaction.atomic():
        ids = _store(mailbox, run, batch)
        items = [processor.parse(ids[f.ref.key], f.raw) for f in batch if f.ref.key in ids]
        _dry_process_items(run, processor, items)
        transaction.set_rollback(True)


def _dry_process_items(run: ProcessingRun, processor: Processor, items: list[Item]) -> None:
    """Process `items` in a transaction that is rolled back: counts only, no changes."""
    with transaction.atomic():
        outcome = processor.process(items)
        transaction.set_rollback(True)
    _add_counts(run, outcome.counts)


def process_stored_messages(*, mailbox: Mailbox | None = None, run: ProcessingRun | None = None,
                            batch_size: int = 500, limit: int | None = None) -> ProcessingRun:
    """Process stored rows that are new or failed (no server involved; no disposition).

    Safe to run concurrently with anything: rows are claimed per batch.
    """
    run = run or create_run(mailbox=mailbox, trigger=ProcessingRun.Trigger.REPROCESS)
    run.status = ProcessingRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    processor = Processor(run=run, mailbox=mailbox, policy=policies.effective_policy(mailbox),
                          ruleset=_load_rules())
    qs = RawMessage.objects.filter(state__in=[RawMessage.State.NEW, RawMessage.State.FAILED],
                                   attempts__lt=MAX_ATTEMPTS)
    if mailbox is not None:
        qs = qs.filter(mailbox=mailbox)
    ids = list(qs.order_by("id").values_list("id", flat=True)[:limit])
    for chunk in _chunked(ids, batch_size):
        rows = RawMessage.objects.filter(id__in=chunk).values_list("id", "raw")
        items = [processor.parse(i, bytes(raw)) for i, raw in rows]
        try:
            outcome = processor.process(items)
        except Exception as exc:
            processor.mark_failed(chunk, f"{type(exc).__name__}: {exc}")
            run.errors += 1
            continue
        _add_counts(run, outcome.counts)
        run.processed += len(outcome.processed_ids)
    run.status = ProcessingRun.Status.PARTIAL if run.errors else ProcessingRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    _save_run(run, "status", "finished_at")
    return run


# --------------------------------------------------------------------------- send-time refusals
def record_send_refusal(*, sent_message: SentMessage, reply_code: int, enhanced_status: str | None,
                        text: str, remote_mta: str = "") -> Bounce:
    """Record an SMTP refusal at send time as a Bounce and apply the same actions.

    Idempotent on "smtp:<token>:<reply_code>": calling it twice returns the first Bounce.
    """
    from bounces.parsing.classify import classify

    key = f"smtp:{sent_message.token}:{reply_code}"
    existing = Bounce.objects.filter(raw_message__mailbox__isnull=True, raw_message__dedupe_key=key).first()
    if existing is not None:
        return existing
    verdict = classify(status=enhanced_status, replycode=str(reply_code), diagnostic=text or "")
    record = (
        f"From: bouncemgr <{django_settings.DEFAULT_FROM_EMAIL}>\r\n"
        f"Subject: SMTP refusal at send time\r\nDate: {formatdate(usegmt=True)}\r\n"
        f"{django_settings.BOUNCE_TRACKING_HEADER}: {sent_message.token}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Recipient: {sent_message.email}\r\nRemote MTA: {remote_mta}\r\n"
        f"Reply: {reply_code} {enhanced_status or ''} {text}\r\n"
    ).encode("utf-8", "replace")
    raw, _ = RawMessage.objects.get_or_create(
        mailbox=None, dedupe_key=key,
        defaults={"source": RawMessage.Source.SMTP, "raw": record, "size": len(record),
                  "sha256": sha256(record).hexdigest()},
    )
    recipient = RecipientResult(
        recipient=sent_message.email.lower(), action="failed", status=verdict.status,
        replycode=str(reply_code), diagnostic=text or "", remote_mta=remote_mta or None,
        reason=verdict.reason, hard=verdict.hard, permanent=verdict.permanent, category=verdict.category,
    )
    result = ParseResult(kind=Kind.FAILURE, recipients=(recipient,), message_id=None,
                         token=sent_message.token, subject=None, from_address=None, mta="smtp")
    campaign_list = SentMessage.objects.filter(pk=sent_message.pk).values_list(
        "campaign__mailing_list_id", flat=True).first()
    match = Match(method=Bounce.MatchMethod.TOKEN, sent_message_id=sent_message.pk,
                  contact_id=sent_message.contact_id, campaign_id=sent_message.campaign_id,
                  list_id=campaign_list, sent_at=sent_message.sent_at)
    processor = Processor(run=None, mailbox=None, policy=policies.global_policy(), ruleset=_load_rules(),
                          actor_label="send-time refusal")
    processor.process([Item(raw_id=raw.pk, raw=record, result=result, forced_match=match)])
    bounce = Bounce.objects.filter(raw_message=raw).order_by("id").first()
    if bounce is None:  # pragma: no cover - processed by a concurrent call
        raise RuntimeError(f"send refusal {key} was not recorded")
    return bounce


# --------------------------------------------------------------------------- the unexplained queue
def assign_bounce(*, bounce: Bounce, contact: Contact, kind: str | None = None, actor: Any = None) -> Bounce:
    """An operator assigns an unmatched bounce to a contact; the kind's actions then apply.

    Only a bounce still in the queue (state unmatched) is assigned; any other is returned
    unchanged, so a repeated request (double submit, two operators) counts nothing twice.
    """
    with transaction.atomic():
        bounce = Bounce.objects.select_for_update().get(pk=bounce.pk)
        if bounce.state != Bounce.State.UNMATCHED:
            return bounce
        if kind:
            bounce.kind = kind
        bounce.contact = contact
        bounce.match_method = Bounce.MatchMethod.MANUAL
        policy = policies.effective_policy(bounce.mailbox)
        decision = decide(category=bounce.kind, mailbox_policy=policy)
        label = f"user {getattr(actor, 'pk', '')}".strip()
        batch = ContactActionBatch(actor=actor if getattr(actor, "pk", None) else None, actor_label=label)
        locked = batch.lock([contact.pk]).get(contact.pk)
        taken: list[str] = []
        # the same audit detail as processing writes (reset_bounce_state reads bounce_kind)
        detail = {"bounce_id": bounce.pk, "bounce_kind": decision.kind, "reason": bounce.reason}
        if locked is not None:
            if decision.count_soft:
                sent_at = (SentMessage.objects.filter(pk=bounce.sent_message_id).values_list("sent_at", flat=True)
                           .first() if bounce.sent_message_id else None)
                match = Match(method=Bounce.MatchMethod.MANUAL, sent_message_id=bounce.sent_message_id,
                              contact_id=locked.pk, sent_at=sent_at)
                soft = _SoftCounter(policy, [locked], [match], batch.now,
                                    bounced_sent_ids={bounce.sent_message_id} - {None})
                taken += _count_soft(batch, soft, locked, match, list_id=None, detail=detail)
                bounce.counted = True
            if decision.kind == Bounce.Kind.HARD:
                bounce.counted = True
            reason = (Suppression.Reason.COMPLAINT if decision.kind == Bounce.Kind.COMPLAINT
                      else Suppression.Reason.HARD_BOUNCE)
            taken += batch.apply(locked, decision.actions, reason=reason, detail=detail)
            batch.flush()
        bounce.actions_taken = [*bounce.actions_taken, *taken]
        bounce.state = Bounce.State.RESOLVED
        bounce.save(update_fields=["kind", "contact", "match_method", "actions_taken", "state", "counted"])
    return bounce


def mark_not_a_bounce(*, bounce: Bounce, actor: Any = None) -> Bounce:
    """An operator says an unexplained message is not a bounce: it leaves the queue.

    Only a queued (unmatched) bounce changes: one whose actions were applied keeps its state.
    """
    Bounce.objects.filter(pk=bounce.pk, state=Bounce.State.UNMATCHED).update(state=Bounce.State.IGNORED)
    bounce.refresh_from_db()
    return bounce


# --------------------------------------------------------------------------- policy changes
def recompute_bounce_state(*, contact_ids: Iterable[int] | None = None, apply_thresholds: bool = True,
                           actor_label: str = "policy change") -> int:
    """Replay stored soft bounces under the current policy; return contacts changed.

    Counters (consecutive, score) are recomputed from history. A contact that now reaches
    a threshold it had not reached gets the hard action (never undone automatically:
    lifting actions is an operator's "un-bounce").
    """
    qs = Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True, contact__isnull=False)
    if contact_ids is not None:
        qs = qs.filter(contact_id__in=list(contact_ids))
    ids = sorted(set(qs.values_list("contact_id", flat=True)))
    changed = 0
    for chunk in _chunked(ids, 200):
        with transaction.atomic():
            batch = ContactActionBatch(actor_label=actor_label)
            contacts = batch.lock(chunk)
            history: dict[int, list] = defaultdict(list)
            for contact_id, at, sent_at, mailbox_id in (
                Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True, contact_id__in=chunk)
                .order_by("bounced_at", "id")
                .values_list("contact_id", "bounced_at", "sent_message__sent_at", "mailbox_id")
            ):
                history[contact_id].append((policies.SoftEvent(at=at, sent_at=sent_at), mailbox_id))
            clean: dict[int, list[datetime]] = defaultdict(list)
            for contact_id, sent_at in SentMessage.objects.filter(
                contact_id__in=chunk, status=SentMessage.Status.SENT, sent_at__isnull=False
            ).values_list("contact_id", "sent_at"):
                clean[contact_id].append(sent_at)
            mailboxes = {m.pk: m for m in Mailbox.objects.filter(
                pk__in={mb for evs in history.values() for _, mb in evs if mb})}
            blacklisted = set(Suppression.objects.filter(
                kind=Suppression.Kind.ADDRESS, reason=Suppression.Reason.BLACKLIST,
                value__in=[suppression_address(c) for c in contacts.values() if suppression_address(c)],
            ).values_list("value", flat=True))
            for contact_id, events in history.items():
                contact = contacts.get(contact_id)
                if contact is None:
                    continue
                last_mailbox = mailboxes.get(events[-1][1]) if events[-1][1] else None
                policy = policies.effective_policy(last_mailbox)
                state, outcomes = policies.recompute_soft_state(policy, [e for e, _ in events], clean[contact_id])
                before = (contact.consecutive_bounces, contact.bounce_score, contact.bounce_scored_on)
                contact.consecutive_bounces = state.consecutive_bounces
                contact.bounce_score = state.bounce_score
                contact.bounce_scored_on = state.bounce_scored_on
                contact.last_bounce_sent_at = state.last_bounce_sent_at
                after = (contact.consecutive_bounces, contact.bounce_score, contact.bounce_scored_on)
                # Only what is new acts (and is logged): a contact already hard-bounced or an
                # address already blacklisted is left alone, so an unchanged history changes nothing.
                to_hard = apply_thresholds and not contact.has_bounced and any(
                    o.reached_threshold for o in outcomes)
                to_blacklist = apply_thresholds and suppression_address(contact) not in blacklisted and any(
                    o.reached_blacklist for o in outcomes)
                if before != after or to_hard:
                    batch.touch(contact)
                    batch.event(contact, ContactEvent.Kind.RECOMPUTE, detail={
                        "policy": policy.soft_policy, "before": [str(v) for v in before],
                        "after": [str(v) for v in after]})
                    changed += 1
                if to_hard:
                    actions = [Action.MARK_HARD, *policy.hard_actions]
                    batch.apply(contact, actions, reason=Suppression.Reason.SOFT_BOUNCE,
                                detail={"threshold": True, "recomputed": True})
                if to_blacklist:
                    batch.apply(contact, [Action.BLACKLIST_ADDRESS], reason=Suppression.Reason.SOFT_BOUNCE,
                                detail={"threshold": "blacklist", "recomputed": True})
            batch.flush()
    return changed


# --------------------------------------------------------------------------- schedules
PERIODIC_TASK_NAME = "bounces: process mailbox #{id}"
TASK_NAME = "bounces.tasks.process_mailbox_task"


def sync_mailbox_schedule(*, mailbox: Mailbox) -> None:
    """Create/update the django-celery-beat entry of `mailbox` (interval, enabled)."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=mailbox.interval_minutes, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.update_or_create(
        name=PERIODIC_TASK_NAME.format(id=mailbox.pk),
        defaults={"task": TASK_NAME, "interval": schedule, "args": json.dumps([mailbox.pk]),
                  "enabled": mailbox.enabled, "description": f"Bounce processing of {mailbox.name}"},
    )


def remove_mailbox_schedule(*, mailbox_id: int) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME.format(id=mailbox_id)).delete()


def sync_all_schedules() -> tuple[int, int]:
    """Every mailbox gets its entry; entries of deleted mailboxes go. Returns (synced, removed)."""
    from django_celery_beat.models import PeriodicTask

    ids = set()
    for mailbox in Mailbox.objects.all():
        sync_mailbox_schedule(mailbox=mailbox)
        ids.add(mailbox.pk)
    removed = 0
    for task in PeriodicTask.objects.filter(task=TASK_NAME, name__startswith="bounces: process mailbox #"):
        try:
            mailbox_id = int(task.name.rsplit("#", 1)[1])
        except ValueError:
            continue
        if mailbox_id not in ids:
            task.delete()
            removed += 1
    return len(ids), removed


def queue_mailbox_run(*, mailbox: Mailbox, actor: Any = None, trigger: str = ProcessingRun.Trigger.MANUAL
                      ) -> ProcessingRun:
    """Create a queued run and send its task once the transaction commits."""
    from bounces.tasks import process_mailbox_task

    run = create_run(mailbox=mailbox, trigger=trigger, actor=actor)
    transaction.on_commit(lambda: _send(process_mailbox_task, mailbox.pk, run.pk))
    return run


def _send(task: Any, mailbox_id: int, run_id: int) -> None:
    try:
        result = task.delay(mailbox_id, run_id)
        ProcessingRun.objects.filter(pk=run_id).update(task_id=getattr(result, "id", "") or "")
    except Exception as exc:  # the broker is down: say so on the run instead of a 500
        log.exception("could not queue run %s", run_id)
        ProcessingRun.objects.filter(pk=run_id, status=ProcessingRun.Status.QUEUED).update(
            status=ProcessingRun.Status.FAILED, error_log=f"Could not queue the task: {exc}",
            finished_at=timezone.now(),
        )
