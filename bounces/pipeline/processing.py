"""Processing stored messages in batches: match, run the rules, decide, then claim, record and
act in one transaction per batch. Imports models, the engine and the pipeline's modules (the
rule set and its hit counter are handed in by the intake, so the pipeline never imports rules)."""

from __future__ import annotations

import logging
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from bounces.incidents.guard import guard_batch
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from bounces.parsing import Kind, ParseOptions, ParseResult, RecipientResult, parse_bounce
from campaigns.models import SentMessage
from contacts.services import Cause, ContactActionBatch, bulk_insert, lift_on_delivery

from .actions import SoftCounter, count_soft, notice_at, suppression_expiry, suppression_reason
from .decisions import Decision, category_without_recipient, decide
from .dispositions import strongest
from .matching import NO_MATCH, BatchMatcher, Match
from .policies import Policy
from .runs import ERROR_LOG_LIMIT, chunked, count_in_batch_transaction, writes_refused

if TYPE_CHECKING:  # the rule set is handed in; the pipeline imports nothing of bounces.rules
    from bounces.rules.ruleset import RuleSet

log = logging.getLogger(__name__)


class RecordedHook(Protocol):
    """Told a batch's recorded bounces in its transaction (the campaigns' rate guardrails,
    `campaigns.guardrails.note_recorded_bounces`, handed in by the intake)."""

    def __call__(self, *, bounces: list[Bounce]) -> None: ...


class HitRecorder(Protocol):
    """Adds rule hits (rule id -> count) to the rules' counters (`bounces.rules.services`)."""

    def __call__(self, *, hits: dict[int, int]) -> None: ...


def parse_options() -> ParseOptions:
    """The engine options from settings (VERP local part, tracking header)."""
    return ParseOptions(
        verp_local_prefix=django_settings.BOUNCE_LOCAL_PART,
        tracking_header=django_settings.BOUNCE_TRACKING_HEADER,
    )


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
    record_hits: HitRecorder | None = None  # rules' hit counts, written in the batch transaction
    after_record: RecordedHook | None = None  # guardrails: count and check, in the batch transaction
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
    def _claim(self, groups: dict[tuple[str, str], list[int]], now: datetime) -> set[int]:
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
        for (outcome_value, message), ids in groups.items():
            delete = message == "delete"
            for chunk in chunked(ids, 900):
                marks = ", ".join(["%s"] * len(chunk))
                sql = (
                    f"UPDATE {table} SET state = %s, outcome = %s, delete_requested = %s, requested_disposition = %s, "
                    f"processed_at = %s, "
                    f"error = '', claim = %s, run_id = %s, attempts = attempts + 1 "
                    f"WHERE id IN ({marks}) AND state IN (%s, %s)"
                )
                params = [
                    RawMessage.State.PROCESSED.value, str(outcome_value), delete, "" if delete else message,
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
            durable_commit()
            got = self._claim(groups, now)
            mine = [(item, rows) for item, rows in planned if item.raw_id in got]
            outcome.counts["skipped_claimed"] = len(items) - len(mine)
            if not mine:
                return outcome
            for item, _ in mine:
                if item.raw_id in failed:
                    outcome.counts["errors"] += 1
                    self._log_error(failed[item.raw_id])
            # issue 14: bounces in an open incident's scope (or one this batch opens) are held
            guard_batch([b for _, rows in mine for b, d, _ in rows if not (d.not_bounce or d.queue)], now=now)
            self._apply(mine, now, outcome)
            total_hits: Counter = Counter()
            for item, _ in mine:
                total_hits.update(rule_hits[item.raw_id])
            if self.record_hits is not None:
                self.record_hits(hits=dict(total_hits))
            if self.after_record is not None:
                self.after_record(bounces=outcome.bounces)
            count_in_batch_transaction(self.run, outcome.counts)  # counted with the commit
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
            category = recipient.category if recipient else category_without_recipient(result)
            rule = (self.ruleset.first_match_in(raw=item.raw, result=result, recipient=recipient, views=view_cache,
                                                category=str(category))
                    if self.ruleset is not None else None)
            if rule is not None:
                rule_hits[rule.rule_id] += 1
            decision = decide(category=category, rule=rule, policy=self.policy)
            noticed = notice_at(result, now)
            match = item.forced_match or (NO_MATCH if decision.not_bounce else
                                          matcher.match(result, recipient, item.raw, at=noticed))
            if not address and match.email and len(recipients) == 1:
                address = match.email  # e.g. an ARF report that hides the recipient
            # The message a token or Message-ID names went out before its bounce, whatever
            # the notice's clock says.
            at = max(noticed, match.sent_at) if match.sent_at and match.sent_at <= now else noticed
            # A bounce older than every message sent to its address, or one a rule leaves out
            # of the statistics, counts against no campaign.
            campaign_id = match.campaign_id if decision.in_statistics and not match.before_sends else None
            bounce = Bounce(
                raw_message_id=item.raw_id,
                mailbox=self.mailbox,
                sent_message_id=match.sent_message_id,
                contact_id=match.contact_id,
                campaign_id=campaign_id,
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
                bounced_at=at,
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
        """Record the batch's bounces and act on their contacts: the decision's actions (the
        kind's policy, or what the rule says explicitly), soft counting at the bounce's own
        time, and every suppression / unsubscription / move with its cause."""
        batch = ContactActionBatch(actor_label=self.actor_label, now=now)
        contact_ids = {m.contact_id for _, rows in planned for _, _, m in rows if m.contact_id}
        contacts = batch.lock(contact_ids)
        soft_rows = [(b, m) for _, rows in planned for b, d, m in rows
                     if d.count_soft and m.contact_id in contacts and b.incident_id is None]
        soft = SoftCounter(
            self.policy, [contacts[m.contact_id] for _, m in soft_rows], [m for _, m in soft_rows],
            min((b.bounced_at for b, _ in soft_rows), default=now),
            bounced_sent_ids={m.sent_message_id for _, rows in planned for _, d, m in rows
                              if m.sent_message_id and d.kind in _SENT_STATUS and not d.not_bounce},
        )
        sent_status: dict[int, str] = {}
        delivered: list[str] = []
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
                    if bounce.reason == "delivered" and bounce.recipient:
                        delivered.append(bounce.recipient)  # a delivery lifts soft suppressions
                    continue
                counts[decision.kind] += 1
                if bounce.incident_id is not None:
                    # held by an open incident (bounces.incidents.guard): recorded, no action, not counted
                    bounce.state = Bounce.State.HELD
                    counts["held"] += 1
                    continue
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
                cause = Cause(bounce_kind=decision.kind, bounce_reason=bounce.reason, rule_id=decision.rule_id,
                              raw_message_id=item.raw_id, recipient=bounce.recipient)
                list_id = match.list_id
                if decision.kind == Bounce.Kind.SOFT:
                    taken += count_soft(batch, soft, contact, match, list_id=list_id, detail=detail,
                                        at=bounce.bounced_at, cause=cause)
                    bounce.counted = True
                if decision.kind == Bounce.Kind.HARD:
                    bounce.counted = True
                if decision.actions:
                    taken += batch.apply(contact, decision.actions, list_id=list_id,
                                         reason=suppression_reason(decision.kind), detail=detail, cause=cause,
                                         expires_at=suppression_expiry(self.policy, decision.kind, bounce.bounced_at),
                                         at=bounce.bounced_at)
                bounce.actions_taken = taken
                bounce.state = Bounce.State.APPLIED if (taken or bounce.counted) else Bounce.State.RECORDED
                if match.sent_message_id:
                    status = _SENT_STATUS.get(decision.kind)
                    if status and _SENT_RANK[status] > _SENT_RANK.get(sent_status.get(match.sent_message_id, ""), 0):
                        sent_status[match.sent_message_id] = status
            outcome.processed_ids.append(item.raw_id)
            outcome.bounces.extend(b for b, _, _ in rows)
        bulk_insert(Bounce, outcome.bounces)
        emit_recorded(outcome.bounces)
        if batch.has_causes():
            # the causes name their bounce: (stored message, recipient) is the bounces' unique key
            batch.resolve_bounce_ids({
                (raw_id, recipient): pk for pk, raw_id, recipient in Bounce.objects.filter(
                    raw_message_id__in=outcome.processed_ids).values_list("id", "raw_message_id", "recipient")})
        batch.flush()
        if delivered:
            lift_on_delivery(addresses=delivered, actor_label=self.actor_label)
        by_status: dict[str, list[int]] = defaultdict(list)
        for sent_id, status in sent_status.items():
            by_status[status].append(sent_id)
        for status, ids in by_status.items():
            # never downgrade: bounced > complained > soft_bounced
            lower = [s for s, rank in _SENT_RANK.items() if rank < _SENT_RANK[status]]
            SentMessage.objects.filter(id__in=ids, status__in=lower).update(status=status)

    def mark_failed(self, ids: list[int], error: str) -> None:
        """After a failed batch transaction: leave the rows stored and retryable. A batch the
        database refused (read-only, out of space) uses up none of the rows' attempts: the
        notices are not at fault, and are processed once it takes writes again (issue 12)."""
        # `error` is "<exception type>: <text>"; only the database's own errors count here
        # (a notice's text could say "disk is full").
        refused = error.split(":", 1)[0] in ("OperationalError", "InternalError") and writes_refused(error)
        attempts = F("attempts") if refused else F("attempts") + 1
        RawMessage.objects.filter(id__in=ids).exclude(state=RawMessage.State.PROCESSED).update(
            state=RawMessage.State.FAILED, error=error[:2000], attempts=attempts
        )

    def _log_error(self, line: str) -> None:
        if self.run is not None:
            self.run.error_log = (self.run.error_log + line + "\n")[-ERROR_LOG_LIMIT:]


def durable_commit() -> None:
    """Make the current transaction's commit wait for its WAL write, whatever the server's
    `synchronous_commit` (PostgreSQL; raised from `off` only, never lowered).

    A batch's commit is what allows its messages to be deleted or moved on the mail server. With
    asynchronous commit the server acknowledges before the WAL is written, and a crash (or
    `pg_ctl stop -m immediate`) up to a few hundred milliseconds later takes the batch back while
    its messages are already gone from the server: never recorded, never counted (issue 12).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('synchronous_commit', 'on', true) "
                       "WHERE current_setting('synchronous_commit') = 'off'")


def _outcome_of(rows: list[tuple[Bounce, Decision, Match]]) -> tuple[str, str]:
    """The message's outcome (for its disposition) and what a rule asked for (dispositions.strongest)."""
    delete = strongest(d.message or ("delete" if d.delete_message else "") for _, d, _ in rows)
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


def emit_recorded(bounces: list[Bounce]) -> None:
    """`bounce.recorded` webhook events (api.events) for a batch's new bounces, in its transaction.

    Only when an endpoint subscribes (else no query at all): one query for the new rows'
    ids (bulk_insert sets none), then two bulk INSERTs. Messages that are no bounce are left out.
    """
    from api.events import emit_events, subscribed

    recorded = [b for b in bounces if b.state != Bounce.State.IGNORED]
    if not recorded or not subscribed("bounce.recorded"):
        return
    ids = {
        (raw_id, recipient): pk for pk, raw_id, recipient in Bounce.objects.filter(
            raw_message_id__in={b.raw_message_id for b in recorded}).values_list("id", "raw_message_id", "recipient")
    }
    emit_events("bounce.recorded", [
        {"bounce_id": ids.get((b.raw_message_id, b.recipient)), "recipient": b.recipient, "kind": b.kind,
         "reason": b.reason, "state": b.state, "status_code": b.status_code, "reply_code": b.reply_code,
         "diagnostic": (b.diagnostic or "")[:500], "remote_mta": b.remote_mta, "permanent": b.permanent,
         "counted": b.counted, "actions": list(b.actions_taken or []), "contact_id": b.contact_id,
         "campaign_id": b.campaign_id, "sent_message_id": b.sent_message_id, "mailbox_id": b.mailbox_id,
         "run_id": b.run_id, "bounced_at": b.bounced_at.isoformat() if b.bounced_at else None}
        for b in recorded
    ])
