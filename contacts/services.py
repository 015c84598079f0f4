"""Writes on contacts: the actions a bounce (or an operator) takes on a contact.

Every change to a contact's state writes a `ContactEvent` (who, what, old and new status).
The bounce pipeline applies actions to hundreds of contacts per transaction, so the work
is done by `ContactActionBatch`: contacts are locked once (`select_for_update`, in id
order so two batches never deadlock), changed in memory, and written set-based in
`flush()` (one bulk UPDATE, bulk INSERTs for events and suppressions, one UPDATE per
list for unsubscriptions). `apply_contact_action` is the one-contact form of the same code.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from .models import (
    Contact,
    ContactEvent,
    LiftedSuppression,
    Subscription,
    Suppression,
    SuppressionRelease,
)


class Action:
    """Contact actions: what a kind's policy or a rule does to a contact (a set of these)."""

    MARK_HARD = "mark_hard"  # has_bounced, hard count + 1
    UNCONFIRM = "unconfirm"
    UNSUBSCRIBE = "unsubscribe"  # from the bounced message's list (all lists when unknown)
    UNSUBSCRIBE_ALL = "unsubscribe_all"  # from every list
    SUPPRESS = "suppress"  # the address goes on the suppression list (global do-not-send)
    BLACKLIST_CONTACT = "blacklist_contact"
    BLACKLIST_ADDRESS = "blacklist_address"  # suppression with reason "blacklist"
    REMOVE_ADDRESS = "remove_address"  # OpenCRM: the address moves aside to bounced_address
    DELETE_CONTACT = "delete_contact"
    COUNT_ONLY = "count_only"  # legacy no-op values (old rules, old settings)
    NOTHING = "nothing"


# The actions an operator can choose, in the order they run, with the words the admin shows.
ACTION_WORDS: dict[str, str] = {
    Action.MARK_HARD: "mark the contact hard-bounced",
    Action.UNCONFIRM: "unconfirm the contact",
    Action.UNSUBSCRIBE: "unsubscribe from the bounced message's list",
    Action.UNSUBSCRIBE_ALL: "unsubscribe from all lists",
    Action.SUPPRESS: "suppress the address (never mailed again)",
    Action.BLACKLIST_CONTACT: "blacklist the contact",
    Action.BLACKLIST_ADDRESS: "blacklist the address",
    Action.REMOVE_ADDRESS: "move the address aside (kept as 'bounced address')",
    Action.DELETE_CONTACT: "delete the contact",
}
ACTION_CHOICES: list[tuple[str, str]] = [(k, v[0].upper() + v[1:]) for k, v in ACTION_WORDS.items()]
ALL_ACTIONS = frozenset(v for k, v in vars(Action).items() if k.isupper())
NO_OP_ACTIONS = frozenset({Action.COUNT_ONLY, Action.NOTHING})

# Order in which actions of one bounce are carried out: the suppression needs the address
# before `remove_address` clears it; deletion comes last.
_ORDER = {
    Action.MARK_HARD: 0, Action.SUPPRESS: 1, Action.BLACKLIST_ADDRESS: 2, Action.UNSUBSCRIBE: 3,
    Action.UNSUBSCRIBE_ALL: 3, Action.UNCONFIRM: 4, Action.BLACKLIST_CONTACT: 5, Action.REMOVE_ADDRESS: 6,
    Action.COUNT_ONLY: 7, Action.NOTHING: 7, Action.DELETE_CONTACT: 9,
}

_CONTACT_FIELDS = [
    "email", "status", "consecutive_bounces", "hard_bounce_count", "soft_bounce_count",
    "bounce_score", "bounce_scored_on", "last_bounce_sent_at", "last_bounce_at", "has_bounced",
    "bounced_address", "updated_at",
]
# Subscription.unsubscribe_reason values a bounce writes (Suppression.Reason values).
BOUNCE_UNSUBSCRIBE_REASONS = ("hard_bounce", "soft_bounce", "complaint", "blacklist")


def suppression_address(contact: Contact) -> str:
    """The address a suppression of `contact` is keyed on: its email, or the removed one."""
    return (contact.email or contact.bounced_address).strip().lower()


def describe_actions(actions: Iterable[str]) -> str:
    """A set of actions in words, in the order they run ("nothing" when empty)."""
    words = [ACTION_WORDS[a] for a in sort_actions(actions) if a in ACTION_WORDS]
    if not words:
        return "nothing (recorded only)"
    return ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + words[-1]


class UnknownActionError(ValueError):
    """An action name that is not one of `ALL_ACTIONS`."""


def sort_actions(actions: Iterable[str]) -> list[str]:
    """Actions in the order they must run, without duplicates."""
    unique = dict.fromkeys(a for a in actions if a)
    for action in unique:
        if action not in ALL_ACTIONS:
            raise UnknownActionError(f"unknown contact action {action!r}")
    return sorted(unique, key=lambda a: _ORDER[a])


@dataclass
class Cause:
    """Why an action is taken: the bounce (its stored message and recipient until its id
    is known), its kind and reason, the rule that matched. Recorded on suppressions,
    unsubscriptions and events."""

    bounce_kind: str = ""
    bounce_reason: str = ""
    rule_id: int | None = None
    bounce_id: int | None = None
    raw_message_id: int | None = None
    recipient: str = ""

    def as_detail(self) -> dict[str, Any]:
        return {"bounce_id": self.bounce_id, "bounce_kind": self.bounce_kind, "reason": self.bounce_reason,
                "rule_id": self.rule_id}


@dataclass
class _PendingSuppression:
    reason: str
    source: str
    cause: Cause | None
    expires_at: datetime | None
    contact_id: int | None


@dataclass
class ContactActionBatch:
    """Contact changes of many bounces, written set-based by `flush()`.

    Use inside one `transaction.atomic()`: `lock()` the contacts first, then `apply()`
    per bounce, then `flush()`. Nothing is written before `flush()`.
    """

    actor: Any = None
    actor_label: str = ""
    now: datetime = field(default_factory=timezone.now)
    contacts: dict[int, Contact] = field(default_factory=dict)
    _dirty: set[int] = field(default_factory=set)
    _events: list[tuple[ContactEvent, Cause | None]] = field(default_factory=list)
    _suppress: dict[str, _PendingSuppression] = field(default_factory=dict)
    _unsubscribe: dict[tuple[int, int | None], tuple[str, Cause | None]] = field(default_factory=dict)
    _delete: set[int] = field(default_factory=set)

    def lock(self, contact_ids: Iterable[int]) -> dict[int, Contact]:
        """Load and row-lock the contacts (id order: concurrent batches never deadlock)."""
        wanted = sorted({i for i in contact_ids if i is not None and i not in self.contacts})
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            for contact in Contact.objects.select_for_update().filter(id__in=chunk).order_by("id"):
                self.contacts[contact.id] = contact
        return self.contacts

    def touch(self, contact: Contact) -> None:
        """Mark a contact changed by the caller (counters), to be written by `flush()`."""
        self._dirty.add(contact.id)

    def event(self, contact: Contact, kind: str, *, old_status: str = "", detail: dict | None = None,
              cause: Cause | None = None) -> ContactEvent:
        """Queue an audit row for `contact` (its bounce id is filled in by `flush()`)."""
        row = ContactEvent(
            contact_id=contact.id, email=contact.email or contact.bounced_address, kind=kind,
            actor=self.actor if getattr(self.actor, "pk", None) else None, actor_label=self.actor_label,
            old_status=old_status, new_status=contact.status if old_status else "",
            detail=detail or {},
        )
        self._events.append((row, cause))
        return row

    def apply(
        self,
        contact: Contact,
        actions: Iterable[str],
        *,
        list_id: int | None = None,
        reason: str = Suppression.Reason.HARD_BOUNCE,
        detail: dict | None = None,
        cause: Cause | None = None,
        expires_at: datetime | None = None,
        at: datetime | None = None,
    ) -> list[str]:
        """Carry out `actions` on `contact` in memory; return what changed, for the record.

        `list_id` is the bounced message's list (`unsubscribe`); None means every list.
        `reason` is the suppression reason; `cause` says which bounce, kind, reason and
        rule, recorded on the suppression, the unsubscriptions and the events;
        `expires_at` makes a suppression lapse by itself (soft / blocked TTL); `at` is
        the bounce's own time (default: now). Idempotent: a repeated action changes nothing.

        Audit rows: the suppression and unsubscription that come with a hard bounce or a
        complaint are recorded in that bounce's one event (`detail["actions"]`), not as
        rows of their own (a run writes thousands); status changes always get their row.
        """
        done: list[str] = []
        if contact.id in self._delete:
            return done
        detail = dict(detail or {})
        if cause is not None:
            detail.update({k: v for k, v in cause.as_detail().items() if v not in (None, "")})
        ordered = sort_actions(actions)
        head: ContactEvent | None = None
        when = at or self.now
        if Action.MARK_HARD in ordered:
            contact.has_bounced = True
            contact.hard_bounce_count += 1
            if contact.last_bounce_at is None or contact.last_bounce_at < when:
                contact.last_bounce_at = when
            self.touch(contact)
            head = self.event(contact, ContactEvent.Kind.HARD_BOUNCE, detail=detail, cause=cause)
            done.append(Action.MARK_HARD)
        elif reason == Suppression.Reason.COMPLAINT and {
            Action.SUPPRESS, Action.UNSUBSCRIBE, Action.UNSUBSCRIBE_ALL} & set(ordered):
            head = self.event(contact, ContactEvent.Kind.COMPLAINT, detail=detail, cause=cause)
        for action in ordered:
            old = contact.status
            if action == Action.MARK_HARD:
                continue
            elif action in (Action.SUPPRESS, Action.BLACKLIST_ADDRESS):
                address = suppression_address(contact)
                if not address:
                    continue
                why = Suppression.Reason.BLACKLIST if action == Action.BLACKLIST_ADDRESS else reason
                expiry = None if action == Action.BLACKLIST_ADDRESS else expires_at
                self._queue_suppression(address, why, cause, expiry, contact.id)
                if head is None or action == Action.BLACKLIST_ADDRESS:
                    self.event(contact, ContactEvent.Kind.SUPPRESS, cause=cause, detail={
                        **detail, "address": address, "reason": str(why),
                        **({"expires_at": expiry.isoformat()} if expiry else {})})
                done.append(action)
            elif action in (Action.UNSUBSCRIBE, Action.UNSUBSCRIBE_ALL):
                target = None if action == Action.UNSUBSCRIBE_ALL else list_id
                if (contact.id, None) in self._unsubscribe:
                    done.append(action)  # already from every list
                    continue
                self._unsubscribe[(contact.id, target)] = (str(reason), cause)
                if head is None:
                    self.event(contact, ContactEvent.Kind.UNSUBSCRIBE, cause=cause,
                               detail={**detail, "list_id": target})
                done.append(action)
            elif action in (Action.UNCONFIRM, Action.BLACKLIST_CONTACT):
                new = (
                    Contact.Status.UNCONFIRMED if action == Action.UNCONFIRM else Contact.Status.BLACKLISTED
                )
                # Unconfirming never lifts a stronger state (blacklisted, unsubscribed).
                if old == new or (action == Action.UNCONFIRM and old != Contact.Status.ACTIVE):
                    continue
                contact.status = new
                self.touch(contact)
                kind = ContactEvent.Kind.BLACKLIST if new == Contact.Status.BLACKLISTED else (
                    ContactEvent.Kind.STATUS_CHANGE
                )
                self.event(contact, kind, old_status=old, detail=detail, cause=cause)
                done.append(action)
            elif action == Action.REMOVE_ADDRESS:
                if not contact.email:
                    continue
                contact.bounced_address = contact.email
                contact.email = ""
                contact.has_bounced = True
                self.touch(contact)
                self.event(contact, ContactEvent.Kind.ADDRESS_REMOVED, cause=cause,
                           detail={**detail, "address": contact.bounced_address})
                done.append(action)
            elif action == Action.DELETE_CONTACT:
                self._delete.add(contact.id)
                self.event(contact, ContactEvent.Kind.DELETED, detail=detail, cause=cause)
                done.append(action)
        if head is not None:
            head.detail = {**head.detail, "actions": done, "list_id": list_id}
        return done

    def _queue_suppression(self, address: str, why: str, cause: Cause | None, expires_at: datetime | None,
                           contact_id: int | None) -> None:
        """One pending suppression per address: a blacklisting, then one that never expires, wins."""
        pending = self._suppress.get(address)
        new = _PendingSuppression(reason=str(why), source=(self.actor_label or "bounce")[:200], cause=cause,
                                  expires_at=expires_at, contact_id=contact_id)
        if pending is None:
            self._suppress[address] = new
            return
        if pending.reason == Suppression.Reason.BLACKLIST:
            return
        if why == Suppression.Reason.BLACKLIST or (pending.expires_at is not None and (
                expires_at is None or expires_at > pending.expires_at)):
            self._suppress[address] = new

    def has_causes(self) -> bool:
        """Whether a queued change names a bounce whose id is not known yet."""
        return any(c is not None and c.bounce_id is None and c.raw_message_id is not None
                   for c in [c for _, c in self._events] + [p.cause for p in self._suppress.values()])

    def resolve_bounce_ids(self, ids: dict[tuple[int, str], int]) -> None:
        """Fill in the bounce ids of the causes once the Bounce rows exist.

        `ids` maps (raw message id, recipient) to the Bounce id (the bounces' own unique key).
        """
        causes = [c for _, c in self._events] + [p.cause for p in self._suppress.values()] + [
            c for _, c in self._unsubscribe.values()]
        for cause in causes:
            if cause is not None and cause.bounce_id is None and cause.raw_message_id is not None:
                cause.bounce_id = ids.get((cause.raw_message_id, cause.recipient))

    def flush(self) -> None:
        """Write every queued change (call inside the caller's transaction)."""
        dirty = [self.contacts[i] for i in sorted(self._dirty) if i not in self._delete]
        for contact in dirty:
            contact.updated_at = self.now
        if dirty:
            _write_contacts(dirty)
        if self._suppress:
            self._write_suppressions()
        self._write_unsubscriptions()
        # Events of deleted contacts are kept too: the deletion sets their contact to NULL.
        if self._events:
            rows = []
            for row, cause in self._events:
                if cause is not None and cause.bounce_id is not None:
                    row.detail = {**row.detail, "bounce_id": cause.bounce_id}
                rows.append(row)
            bulk_insert(ContactEvent, rows)
        if self._delete:
            Contact.objects.filter(id__in=self._delete).delete()
        self._dirty.clear()
        self._events.clear()
        self._suppress.clear()
        self._unsubscribe.clear()
        self._delete.clear()

    def _write_suppressions(self) -> None:
        values = list(self._suppress)
        # A suppression that lapsed but was not swept yet would block the new one: sweep it now.
        expired = list(Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=values,
                                                  expires_at__lte=self.now))
        if expired:
            _move_to_lifted(expired, reason=LiftedSuppression.LiftReason.EXPIRED, actor=None, now=self.now)
        self._emit_suppressed()
        actor = self.actor if getattr(self.actor, "pk", None) else None
        rows = []
        for value, p in self._suppress.items():
            c = p.cause or Cause()
            rows.append(Suppression(
                kind=Suppression.Kind.ADDRESS, value=value, reason=p.reason, source=p.source,
                contact_id=p.contact_id if p.contact_id not in self._delete else None,
                bounce_id=c.bounce_id, bounce_kind=c.bounce_kind[:10], bounce_reason=c.bounce_reason[:32],
                rule_id=c.rule_id, actor=actor, expires_at=p.expires_at,
            ))
        bulk_insert(Suppression, rows, ignore_conflicts=True)
        # An address already suppressed: one that never lapses wins over one that does ...
        permanent = [v for v, p in self._suppress.items() if p.expires_at is None]
        if permanent:
            Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=permanent,
                                       expires_at__isnull=False).update(expires_at=None, updated_at=self.now)
        # ... and a blacklisting wins over a bounce's suppression.
        blacklisted = [v for v, p in self._suppress.items() if p.reason == Suppression.Reason.BLACKLIST]
        if blacklisted:
            Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=blacklisted).exclude(
                reason=Suppression.Reason.BLACKLIST
            ).update(reason=Suppression.Reason.BLACKLIST, updated_at=self.now)

    def _write_unsubscriptions(self) -> None:
        self._emit_unsubscribed()
        table = connection.ops.quote_name(Subscription._meta.db_table)
        q = connection.ops.quote_name
        at = Subscription._meta.get_field("unsubscribed_at").get_db_prep_save(self.now, connection)
        base = (f"UPDATE {table} SET {q('status')} = %s, {q('unsubscribed_at')} = %s, "
                f"{q('unsubscribe_reason')} = %s, {q('unsubscribe_bounce_id')} = %s, {q('updated_at')} = %s "
                f"WHERE {q('contact_id')} = %s AND {q('status')} <> %s")
        one: list[list] = []
        every: list[list] = []
        unsubscribed = Subscription.Status.UNSUBSCRIBED.value
        for (contact_id, list_id), (why, cause) in self._unsubscribe.items():
            if contact_id in self._delete:
                continue
            params = [unsubscribed, at, why[:200], cause.bounce_id if cause else None, at, contact_id, unsubscribed]
            if list_id is None:
                every.append(params)
            else:
                one.append([*params, list_id])
        executemany(base, every)
        executemany(base + f" AND {q('mailing_list_id')} = %s", one)


    def _emit_suppressed(self) -> None:
        """`contact.suppressed` (api.events) for each address this flush newly suppresses."""
        from api.events import emit_events, subscribed

        if not subscribed("contact.suppressed"):
            return
        existing = set(Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=list(self._suppress))
                       .values_list("value", flat=True))
        emit_events("contact.suppressed", [
            {"kind": Suppression.Kind.ADDRESS, "value": value, "email": value, "contact_id": p.contact_id,
             "reason": str(p.reason), "source": p.source,
             "bounce_id": p.cause.bounce_id if p.cause else None,
             "expires_at": p.expires_at.isoformat() if p.expires_at else None}
            for value, p in self._suppress.items() if value not in existing
        ])

    def _emit_unsubscribed(self) -> None:
        """`contact.unsubscribed` (api.events) for each subscription this flush ends."""
        from api.events import emit_events, subscribed

        if not self._unsubscribe or not subscribed("contact.unsubscribed"):
            return
        wanted = {key: why for key, (why, _) in self._unsubscribe.items() if key[0] not in self._delete}
        ids = sorted({contact_id for contact_id, _ in wanted})
        rows = Subscription.objects.filter(contact_id__in=ids).exclude(
            status=Subscription.Status.UNSUBSCRIBED).values_list("contact_id", "mailing_list_id")
        items = []
        for contact_id, list_id in rows:
            why = wanted.get((contact_id, list_id), wanted.get((contact_id, None)))
            if why is None:
                continue
            contact = self.contacts.get(contact_id)
            items.append({"contact_id": contact_id, "email": suppression_address(contact) if contact else None,
                          "list_id": list_id, "reason": str(why)})
        emit_events("contact.unsubscribed", items)


def _write_contacts(contacts: list[Contact]) -> None:
    """One parametrised UPDATE per contact, sent with executemany.

    Django's bulk_update builds a CASE per field over every row, which costs seconds of
    Python per 500 contacts; executemany of a plain UPDATE is cheap on both SQLite and
    PostgreSQL (psycopg pipelines it).
    """
    fields = [Contact._meta.get_field(name) for name in _CONTACT_FIELDS]
    table = connection.ops.quote_name(Contact._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {connection.ops.quote_name('id')} = %s"
    plain = _plain_flags(fields)
    rows = [
        [getattr(c, f.attname) if p else f.get_db_prep_save(getattr(c, f.attname), connection)
         for f, p in zip(fields, plain, strict=True)] + [c.pk]
        for c in contacts
    ]
    executemany(sql, rows)


_PLAIN_FIELDS = (
    models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.FloatField,
    models.ForeignKey,
)


def _plain_flags(fields: list) -> tuple[bool, ...]:
    """Which fields' values go to the driver as they are (no Django preparation needed)."""
    kinds = _PLAIN_FIELDS
    if connection.vendor == "postgresql":
        # psycopg adapts aware datetimes and dates itself; SQLite needs Django's strings
        kinds = (*kinds, models.DateTimeField, models.DateField)
    return tuple(isinstance(f, kinds) for f in fields)


def bulk_insert(model: type, objs: list, *, ignore_conflicts: bool = False) -> None:
    """INSERT `objs` with executemany of a one-row statement (no ids are set on `objs`).

    Faster than `bulk_create` for hundreds of rows: no giant multi-row statement to build
    and convert, and psycopg pipelines executemany. Defaults (auto_now_add, callables)
    are applied as `Model.save` would; `ignore_conflicts` adds ON CONFLICT DO NOTHING
    (PostgreSQL, SQLite >= 3.24).
    """
    if not objs:
        return
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key or f.attname not in ("id",)]
    fields = [f for f in fields if not (f.primary_key and getattr(objs[0], f.attname) is None)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({placeholders})"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    # Plain columns need no conversion; only call Django's preparation where it matters
    # (dates on SQLite, JSON, binary...). Saves a million method calls per 10,000 bounces.
    auto = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    now = timezone.now()
    plain = _plain_flags(fields)
    attnames = [f.attname for f in fields]
    rows = []
    for obj in objs:
        for f in auto:
            if getattr(obj, f.attname) is None or f.auto_now:
                setattr(obj, f.attname, now)
        rows.append([
            getattr(obj, a) if p else f.get_db_prep_save(getattr(obj, a), connection)
            for a, p, f in zip(attnames, plain, fields, strict=True)
        ])
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        copy_sql = f"COPY {quote(opts.db_table)} ({columns}) FROM STDIN"
        if not ignore_conflicts:
            copy_rows(copy_sql, rows)
            return
        # COPY cannot skip conflicts; they only happen when two runs race, so try COPY
        # under a savepoint and fall back to INSERT ... ON CONFLICT DO NOTHING.
        import psycopg

        try:
            with transaction.atomic():
                copy_rows(copy_sql, rows)
            return
        except (IntegrityError, psycopg.IntegrityError):
            pass
    executemany(sql, rows)


# From this many rows on, PostgreSQL inserts go through COPY (less per-row work on both
# sides than even a pipelined executemany).
COPY_MIN_ROWS = 50


def copy_rows(sql: str, rows: list[list]) -> None:
    """Stream `rows` into a `COPY ... FROM STDIN` (PostgreSQL only)."""
    connection.ensure_connection()
    # wrap_database_errors: a broken connection surfaces as django.db's OperationalError,
    # like every ORM query, so the pipeline's database-failure handling sees it.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def executemany(sql: str, rows: list[list]) -> None:
    """Run one statement for many parameter rows, as fast as the backend allows.

    On PostgreSQL a server-side-binding psycopg cursor is used: Django's default client
    cursor renders every parameter into SQL text in Python, which costs more than the
    database work itself for thousands of rows; the server-side cursor pipelines the
    statements and adapts parameters in C.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.executemany(sql, rows)
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def apply_contact_action(
    *, contact: Contact, action: str, bounce: Any = None, actor: Any = None, actor_label: str = ""
) -> list[str]:
    """Apply one action to one contact, with its audit row; return what changed.

    `action` is one of `ALL_ACTIONS` (the BounceRule.Action values, plus `remove_address`
    and `nothing`). With `bounce`, the unsubscription targets its campaign's list and the
    event records the bounce id. One transaction; the contact row is locked.
    """
    list_id = None
    detail: dict[str, Any] = {}
    reason = Suppression.Reason.HARD_BOUNCE
    if bounce is not None:
        detail["bounce_id"] = bounce.pk
        campaign = getattr(bounce, "campaign", None)
        list_id = getattr(campaign, "mailing_list_id", None)
        if getattr(bounce, "kind", "") == "complaint":
            reason = Suppression.Reason.COMPLAINT
    with transaction.atomic():
        batch = ContactActionBatch(actor=actor, actor_label=actor_label)
        locked = batch.lock([contact.pk]).get(contact.pk)
        if locked is None:
            return []
        done = batch.apply(locked, [action], list_id=list_id, reason=reason, detail=detail)
        batch.flush()
    if Action.DELETE_CONTACT not in done:
        contact.refresh_from_db()
    return done


def preview_action(contact: Contact, action: str) -> list[str]:
    """What `action` would change on `contact`, without writing anything."""
    batch = ContactActionBatch()
    return batch.apply(copy.copy(contact), [action])


def _status_set_by_complaint(contact: Contact) -> bool:
    """Whether the contact's current status came from a complaint (not a bounce to reset)."""
    last = (ContactEvent.objects.filter(contact=contact, new_status=contact.status).exclude(old_status="")
            .order_by("-created_at", "-id").values_list("detail", flat=True).first())
    return bool(last) and last.get("bounce_kind") == "complaint"


def reset_bounce_state(*, contact: Contact, actor: Any, reactivate: bool = True) -> None:
    """"Un-bounce" a contact: clear counters and flags, logged as a ContactEvent.

    The address goes back from `bounced_address` to `email` when it was removed (and no
    other contact took it meanwhile); bounce-made suppressions of the address are lifted;
    with `reactivate`, a contact that bounces had unconfirmed or blacklisted is active
    again (one a complaint blacklisted stays so). List subscriptions are left as they are
    (re-subscribing is the operator's call).
    """
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        old_status = locked.status
        before = {
            "consecutive_bounces": locked.consecutive_bounces, "hard_bounce_count": locked.hard_bounce_count,
            "soft_bounce_count": locked.soft_bounce_count, "bounce_score": locked.bounce_score,
            "has_bounced": locked.has_bounced, "bounced_address": locked.bounced_address,
        }
        locked.consecutive_bounces = 0
        locked.bounce_score = 0.0
        locked.bounce_scored_on = None
        locked.last_bounce_sent_at = None
        locked.has_bounced = False
        address = suppression_address(locked)
        if not locked.email and locked.bounced_address:
            taken = Contact.objects.by_email(locked.bounced_address).exclude(pk=locked.pk).exists()
            if not taken:
                locked.email = locked.bounced_address
                locked.bounced_address = ""
        if (reactivate and locked.status in (Contact.Status.UNCONFIRMED, Contact.Status.BLACKLISTED)
                and not _status_set_by_complaint(locked)):
            locked.status = Contact.Status.ACTIVE
        locked.save(update_fields=[
            "consecutive_bounces", "bounce_score", "bounce_scored_on", "last_bounce_sent_at",
            "has_bounced", "email", "bounced_address", "status", "updated_at",
        ])
        lifted = 0
        if address:
            lifted = _move_to_lifted(
                list(Suppression.objects.filter(
                    kind=Suppression.Kind.ADDRESS, value=address,
                    reason__in=[Suppression.Reason.HARD_BOUNCE, Suppression.Reason.SOFT_BOUNCE])),
                reason=LiftedSuppression.LiftReason.RESET, actor=actor, now=timezone.now(),
            )
        ContactEvent.objects.create(
            contact=locked, email=locked.email or locked.bounced_address, kind=ContactEvent.Kind.BOUNCE_RESET,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label="" if getattr(actor, "pk", None) else str(actor or ""),
            old_status=old_status, new_status=locked.status,
            detail={"before": before, "suppressions_lifted": lifted},
        )
    contact.refresh_from_db()


def record_status_change(*, contact: Contact, old_status: str, actor: Any = None, actor_label: str = "") -> None:
    """Audit a status an operator set by hand (e.g. in the admin): one ContactEvent."""
    if old_status == contact.status:
        return
    ContactEvent.objects.create(
        contact=contact, email=contact.email,
        kind=ContactEvent.Kind.BLACKLIST if contact.status == Contact.Status.BLACKLISTED
        else ContactEvent.Kind.STATUS_CHANGE,
        actor=actor if getattr(actor, "pk", None) else None, actor_label=actor_label,
        old_status=old_status, new_status=contact.status, detail={"manual": True},
    )


# --------------------------------------------------------------------------- suppressions
_LIFT_COPY = ("kind", "value", "reason", "source", "note", "contact_id", "bounce_id", "bounce_kind",
              "bounce_reason", "rule_id", "actor_id", "expires_at")


def _move_to_lifted(rows: list[Suppression], *, reason: str, actor: Any, now: datetime,
                    release: SuppressionRelease | None = None) -> int:
    """Move suppressions out of force into `LiftedSuppression` (history kept); return how many."""
    if not rows:
        return 0
    lifted_by = actor if getattr(actor, "pk", None) else None
    LiftedSuppression.objects.bulk_create([
        LiftedSuppression(**{name: getattr(row, name) for name in _LIFT_COPY}, suppressed_at=row.created_at,
                          lifted_at=now, lift_reason=reason, lifted_by=lifted_by, release=release)
        for row in rows
    ])
    Suppression.objects.filter(id__in=[r.id for r in rows]).delete()
    from api.events import emit_events

    emit_events("contact.released", [
        {"kind": row.kind, "value": row.value, "email": row.value if row.kind == Suppression.Kind.ADDRESS else None,
         "contact_id": row.contact_id, "reason": row.reason, "lift_reason": str(reason),
         "released_by": getattr(lifted_by, "username", "") or ""}
        for row in rows
    ])
    return len(rows)


def suppress_address(*, value: str, kind: str = Suppression.Kind.ADDRESS, actor: Any = None,
                     reason: str = Suppression.Reason.MANUAL, note: str = "",
                     expires_at: datetime | None = None) -> Suppression:
    """An operator (or the API) suppresses an address or a domain; returns the row in force.

    An existing suppression of the same value is kept as it is.
    """
    value = value.strip().lower()
    label = "" if getattr(actor, "pk", None) else str(actor or "")
    with transaction.atomic():
        row, created = Suppression.objects.get_or_create(
            kind=kind, value=value,
            defaults={"reason": reason, "note": note, "expires_at": expires_at,
                      "actor": actor if getattr(actor, "pk", None) else None,
                      "source": (f"user {actor.pk}" if getattr(actor, "pk", None) else label)[:200]},
        )
        if created:
            _emit_new_suppressions([row])
        if created and kind == Suppression.Kind.ADDRESS:
            contact = Contact.objects.by_email(value).first()
            if contact is not None:
                ContactEvent.objects.create(
                    contact=contact, email=value, kind=ContactEvent.Kind.SUPPRESS,
                    actor=actor if getattr(actor, "pk", None) else None, actor_label=label,
                    detail={"address": value, "reason": reason, "manual": True})
    return row


def expire_suppressions(*, now: datetime | None = None) -> int:
    """Sweep suppressions whose time ran out into the history (sending already ignores them)."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(Suppression.objects.select_for_update().filter(expires_at__lte=now)[:10_000])
        n = _move_to_lifted(rows, reason=LiftedSuppression.LiftReason.EXPIRED, actor=None, now=now)
        _lift_events(rows, kind_detail={"lift_reason": "expired"}, actor=None, actor_label="expiry")
    return n


# What a later delivery lifts: suppressions made by soft or blocked bounces only. A hard
# bounce, a complaint, a blacklisting or an operator's suppression stays.
_LIFTED_BY_DELIVERY = Q(reason=Suppression.Reason.SOFT_BOUNCE) | Q(
    bounce_kind__in=["soft", "blocked"], reason__in=[Suppression.Reason.SOFT_BOUNCE, Suppression.Reason.HARD_BOUNCE])


def lift_on_delivery(*, addresses: Iterable[str], actor_label: str = "delivery") -> int:
    """A delivery to these addresses (a success DSN) lifts their soft / blocked suppressions."""
    wanted = sorted({a.strip().lower() for a in addresses if a})
    if not wanted:
        return 0
    with transaction.atomic():
        rows = list(Suppression.objects.select_for_update().filter(
            _LIFTED_BY_DELIVERY, kind=Suppression.Kind.ADDRESS, value__in=wanted))
        n = _move_to_lifted(rows, reason=LiftedSuppression.LiftReason.DELIVERED, actor=None, now=timezone.now())
        _lift_events(rows, kind_detail={"lift_reason": "delivered"}, actor=None, actor_label=actor_label)
    return n


def delivery_liftable() -> Any:
    """The address suppressions a later delivery may lift (made by soft or blocked bounces)."""
    return Suppression.objects.filter(_LIFTED_BY_DELIVERY, kind=Suppression.Kind.ADDRESS)


def lift_after_accepted_send(*, evidence: dict[int, dict], actor_label: str = "accepted send") -> int:
    """Lift these suppressions (ids -> the send that proves the address takes mail again).

    Re-checked under the row lock: only soft / blocked suppressions are lifted."""
    if not evidence:
        return 0
    with transaction.atomic():
        rows = list(delivery_liftable().select_for_update().filter(id__in=sorted(evidence)))
        n = _move_to_lifted(rows, reason=LiftedSuppression.LiftReason.DELIVERED, actor=None, now=timezone.now())
        _lift_events(rows, kind_detail={"lift_reason": "accepted_send"}, actor=None, actor_label=actor_label,
                     extra=evidence)
    return n


def _lift_events(rows: list[Suppression], *, kind_detail: dict, actor: Any, actor_label: str,
                 extra: dict[int, dict] | None = None) -> None:
    events = []
    for row in rows:
        if row.contact_id is None:
            continue
        events.append(ContactEvent(
            contact_id=row.contact_id, email=row.value, kind=ContactEvent.Kind.UNSUPPRESS,
            actor=actor if getattr(actor, "pk", None) else None, actor_label=actor_label,
            detail={**kind_detail, "address": row.value, "reason": row.reason, "bounce_id": row.bounce_id,
                    "bounce_kind": row.bounce_kind, **(extra or {}).get(row.id, {})},
        ))
    if events:
        ContactEvent.objects.bulk_create(events)


@dataclass(frozen=True)
class ReleasePreviewRow:
    """What releasing one suppression changes."""

    suppression_id: int
    value: str
    kind: str
    reason: str
    why: str  # kind, reason, bounce, rule in words
    contact_id: int | None
    changes: tuple[str, ...]


def _why(row: Suppression) -> str:
    parts = [row.get_reason_display()]
    if row.bounce_kind:
        parts.append(f"{row.bounce_kind} bounce" + (f" ({row.bounce_reason})" if row.bounce_reason else ""))
    if row.bounce_id:
        parts.append(f"bounce #{row.bounce_id}")
    if row.rule_id:
        parts.append(f"rule #{row.rule_id}")
    if row.source:
        parts.append(f"by {row.source}")
    return ", ".join(parts)


def _contact_for(row: Suppression) -> Contact | None:
    if row.contact_id:
        return Contact.objects.filter(pk=row.contact_id).first()
    if row.kind == Suppression.Kind.ADDRESS:
        return (Contact.objects.by_email(row.value).first()
                or Contact.objects.filter(email="", bounced_address__iexact=row.value).first())
    return None


def _reset_changes(contact: Contact) -> tuple[list[str], list[int]]:
    """What resetting `contact`'s bounce state changes (words, subscription ids to resubscribe)."""
    words: list[str] = []
    subs = list(Subscription.objects.filter(
        contact=contact, status=Subscription.Status.UNSUBSCRIBED, unsubscribe_reason__in=BOUNCE_UNSUBSCRIBE_REASONS,
    ).values_list("id", flat=True))
    if subs:
        words.append(f"re-subscribed to {len(subs)} list(s) a bounce unsubscribed")
    if contact.has_bounced:
        words.append("hard-bounced flag cleared")
    if not contact.email and contact.bounced_address:
        words.append(f"address {contact.bounced_address} put back")
    if contact.status in (Contact.Status.UNCONFIRMED, Contact.Status.BLACKLISTED) and not _status_set_by_complaint(
            contact):
        words.append(f"status {contact.status} → active")
    return words, subs


def preview_release(*, suppression_ids: Iterable[int], reset_contacts: bool = False) -> list[ReleasePreviewRow]:
    """What `release_suppressions` would do, row by row (nothing is written)."""
    rows = []
    for row in Suppression.objects.filter(id__in=list(suppression_ids)).order_by("value"):
        contact = _contact_for(row)
        changes = [f"{row.value} may be mailed again"]
        if reset_contacts and contact is not None:
            changes += _reset_changes(contact)[0]
        rows.append(ReleasePreviewRow(
            suppression_id=row.pk, value=row.value, kind=row.kind, reason=row.reason, why=_why(row),
            contact_id=contact.pk if contact else None, changes=tuple(changes)))
    return rows


def release_suppressions(*, suppression_ids: Iterable[int], actor: Any, note: str = "",
                         reset_contacts: bool = False, contact_ids: Iterable[int] = ()) -> SuppressionRelease:
    """An operator lifts suppressions (bulk, from the suppression list); undoable as a whole.

    With `reset_contacts`, each address's contact also gets its bounce state reset: lists a
    bounce unsubscribed it from are subscribed again, the hard-bounced flag is cleared, a
    moved-aside address is put back, a status a bounce set is active again. Every change
    is recorded (one event per contact) so `undo_release` can put it back. `contact_ids`
    (with `reset_contacts`) are contacts reset in the same release although no suppression
    of theirs is lifted (a bounce that marked or unsubscribed them without suppressing):
    their event is a `bounce_reset` one, undone with the release.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(Suppression.objects.select_for_update().filter(id__in=list(suppression_ids)).order_by("id"))
        release = SuppressionRelease.objects.create(
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label="" if getattr(actor, "pk", None) else str(actor or ""),
            note=note, count=len(rows), reset_contacts=reset_contacts)
        extra: dict[int, dict] = {}
        reset: set[int] = set()
        for row in rows:
            contact = _contact_for(row)
            if contact is None:
                continue
            if row.contact_id is None:
                row.contact_id = contact.pk
            if not reset_contacts:
                continue
            extra[row.id] = _reset_for_release(contact.pk, release=release, now=now)
            reset.add(contact.pk)
        for row in rows:
            extra.setdefault(row.id, {"release_id": release.pk})
        _lift_events(rows, kind_detail={"lift_reason": "released", "note": note}, actor=actor,
                     actor_label=release.actor_label, extra=extra)
        _move_to_lifted(rows, reason=LiftedSuppression.LiftReason.RELEASED, actor=actor, now=now, release=release)
        for contact_id in sorted(set(contact_ids) - reset) if reset_contacts else ():
            if not Contact.objects.filter(pk=contact_id).exists():
                continue
            detail = _reset_for_release(contact_id, release=release, now=now)
            contact = Contact.objects.get(pk=contact_id)
            ContactEvent.objects.create(
                contact=contact, email=contact.email or contact.bounced_address, kind=ContactEvent.Kind.BOUNCE_RESET,
                actor=actor if getattr(actor, "pk", None) else None, actor_label=release.actor_label,
                old_status=detail["before"]["status"], new_status=contact.status,
                detail={**detail, "lift_reason": "released", "note": note})
    return release


def _reset_for_release(contact_id: int, *, release: SuppressionRelease, now: datetime) -> dict:
    """Reset one contact's bounce state for `release`; return what `undo_release` needs."""
    contact = Contact.objects.select_for_update().get(pk=contact_id)
    words, subs = _reset_changes(contact)
    before = {"has_bounced": contact.has_bounced, "status": contact.status, "email": contact.email,
              "bounced_address": contact.bounced_address}
    restored = False
    if not contact.email and contact.bounced_address and not Contact.objects.by_email(
            contact.bounced_address).exclude(pk=contact.pk).exists():
        contact.email, contact.bounced_address, restored = contact.bounced_address, "", True
    if contact.status in (Contact.Status.UNCONFIRMED, Contact.Status.BLACKLISTED) and not (
            _status_set_by_complaint(contact)):
        contact.status = Contact.Status.ACTIVE
    contact.has_bounced = False
    contact.consecutive_bounces = 0
    contact.save(update_fields=["email", "bounced_address", "status", "has_bounced",
                                "consecutive_bounces", "updated_at"])
    Subscription.objects.filter(id__in=subs).update(status=Subscription.Status.SUBSCRIBED,
                                                     unsubscribed_at=None, updated_at=now)
    return {"release_id": release.pk, "before": before, "resubscribed": subs,
            "address_restored": restored, "changes": words}


@dataclass
class UndoReleaseReport:
    restored: int = 0  # suppressions back in force
    already: int = 0  # the address was suppressed again meanwhile
    contacts: int = 0  # contacts whose reset was undone


def undo_release(*, release: SuppressionRelease, actor: Any) -> UndoReleaseReport:
    """Put a release's suppressions back in force and undo its contact resets (once)."""
    report = UndoReleaseReport()
    with transaction.atomic():
        release = SuppressionRelease.objects.select_for_update().get(pk=release.pk)
        if release.undone_at is not None:
            return report
        lifted = list(LiftedSuppression.objects.filter(release=release))
        for row in lifted:
            _, created = Suppression.objects.get_or_create(
                kind=row.kind, value=row.value,
                defaults={name: getattr(row, name) for name in _LIFT_COPY if name not in ("kind", "value")},
            )
            report.restored += created
            report.already += not created
        events = ContactEvent.objects.filter(kind__in=[ContactEvent.Kind.UNSUPPRESS, ContactEvent.Kind.BOUNCE_RESET],
                                             detail__release_id=release.pk)
        for event in events:
            detail = event.detail or {}
            before = detail.get("before")
            if not before or event.contact_id is None:
                continue
            contact = Contact.objects.select_for_update().filter(pk=event.contact_id).first()
            if contact is None:
                continue
            if detail.get("address_restored") and contact.email.lower() == (before.get("bounced_address") or "").lower():
                contact.email, contact.bounced_address = before.get("email", ""), before.get("bounced_address", "")
            contact.status = before.get("status", contact.status)
            contact.has_bounced = bool(before.get("has_bounced"))
            contact.save(update_fields=["email", "bounced_address", "status", "has_bounced", "updated_at"])
            Subscription.objects.filter(id__in=detail.get("resubscribed") or []).update(
                status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=timezone.now())
            report.contacts += 1
        for row in lifted:
            if row.contact_id:
                ContactEvent.objects.create(
                    contact_id=row.contact_id, email=row.value, kind=ContactEvent.Kind.RESTORED,
                    actor=actor if getattr(actor, "pk", None) else None,
                    actor_label="" if getattr(actor, "pk", None) else str(actor or ""),
                    detail={"release_id": release.pk, "address": row.value})
        LiftedSuppression.objects.filter(release=release).delete()
        release.undone_at = timezone.now()
        release.undone_by = actor if getattr(actor, "pk", None) else None
        release.save(update_fields=["undone_at", "undone_by"])
    return report
# --------------------------------------------------------------------------- by address, in bulk (API)
def _emit_new_suppressions(rows: list[Suppression]) -> None:
    """`contact.suppressed` (api.events) for suppressions just made by hand."""
    from api.events import emit_events

    emit_events("contact.suppressed", [
        {"kind": row.kind, "value": row.value, "email": row.value if row.kind == Suppression.Kind.ADDRESS else None,
         "contact_id": row.contact_id, "reason": row.reason, "source": row.source, "bounce_id": None,
         "expires_at": row.expires_at.isoformat() if row.expires_at else None}
        for row in rows
    ])


@dataclass
class SuppressionChange:
    """What a bulk add or release did (or, as a preview, would do)."""

    requested: int
    invalid: list[str]
    changed: list[str]
    unchanged: list[str]


def normalise_suppression_values(*, values: Iterable[str], kind: str) -> tuple[list[str], list[str]]:
    """(valid lower-case values without duplicates, invalid inputs as given)."""
    from django.core.exceptions import ValidationError
    from django.core.validators import EmailValidator, validate_domain_name

    email_ok = EmailValidator()
    valid: dict[str, None] = {}
    invalid: list[str] = []
    for raw in values:
        value = (raw or "").strip().lower()
        try:
            if not value or len(value) > 254:
                raise ValidationError("length")
            if kind == Suppression.Kind.DOMAIN:
                if "@" in value or "." not in value:
                    raise ValidationError("domain")
                validate_domain_name(value)
            else:
                email_ok(value)
        except ValidationError:
            invalid.append(raw)
            continue
        valid[value] = None
    return list(valid), invalid


def add_suppressions(
    *, values: Iterable[str], kind: str = Suppression.Kind.ADDRESS, reason: str = Suppression.Reason.MANUAL,
    note: str = "", actor: Any = None, actor_label: str = "", preview: bool = False,
) -> SuppressionChange:
    """Suppress many addresses (or domains) at once; those already suppressed stay as they are.

    Idempotent: adding twice changes nothing the second time. A lapsed suppression not yet
    swept counts as absent (it is moved to the history first). Contacts with a newly
    suppressed address get a `suppress` audit row; each new entry emits `contact.suppressed`.
    With `preview`, nothing is written.
    """
    values = list(values)
    wanted, invalid = normalise_suppression_values(values=values, kind=kind)
    now = timezone.now()
    with transaction.atomic():
        existing = {row.value: row for row in Suppression.objects.filter(kind=kind, value__in=wanted)}
        in_force = {v for v, row in existing.items() if row.expires_at is None or row.expires_at > now}
        new = [v for v in wanted if v not in in_force]
        result = SuppressionChange(len(values), invalid, new, [v for v in wanted if v in in_force])
        if preview or not new:
            return result
        lapsed = [row for v, row in existing.items() if v not in in_force]
        if lapsed:
            _move_to_lifted(lapsed, reason=LiftedSuppression.LiftReason.EXPIRED, actor=None, now=now)
        user = actor if getattr(actor, "pk", None) else None
        source = (actor_label or (f"user {user.pk}" if user else "operator"))[:200]
        contacts = {c.email.lower(): c for c in _contacts_with(values=new, kind=kind)}
        rows = [Suppression(kind=kind, value=v, reason=reason, source=source, note=note, actor=user,
                            contact=contacts.get(v)) for v in new]
        Suppression.objects.bulk_create(rows, ignore_conflicts=True)
        ContactEvent.objects.bulk_create([
            ContactEvent(contact=c, email=c.email, kind=ContactEvent.Kind.SUPPRESS, actor=user,
                         actor_label=actor_label, detail={"address": v, "reason": reason, "manual": True})
            for v, c in contacts.items()
        ])
        _emit_new_suppressions(rows)
    return result


def release_addresses(
    *, values: Iterable[str], kind: str = Suppression.Kind.ADDRESS, actor: Any = None, note: str = "",
    preview: bool = False,
) -> SuppressionChange:
    """Release the suppressions of many addresses (or domains) by value: `release_suppressions`
    (history kept, undoable as one release, `contact.released` emitted). Idempotent:
    releasing what is not suppressed changes nothing."""
    values = list(values)
    wanted, invalid = normalise_suppression_values(values=values, kind=kind)
    found = dict(Suppression.objects.filter(kind=kind, value__in=wanted).values_list("value", "id"))
    result = SuppressionChange(len(values), invalid, [v for v in wanted if v in found],
                               [v for v in wanted if v not in found])
    if found and not preview:
        release_suppressions(suppression_ids=list(found.values()), actor=actor, note=note)
    return result


def _contacts_with(*, values: list[str], kind: str) -> list[Contact]:
    """Contacts whose address is one of `values` (address entries only)."""
    if kind != Suppression.Kind.ADDRESS or not values:
        return []
    from django.db.models.functions import Lower

    found: list[Contact] = []
    for start in range(0, len(values), 1000):
        chunk = values[start : start + 1000]
        found += Contact.objects.exclude(email="").annotate(email_lower=Lower("email")).filter(
            email_lower__in=chunk
        ).only("id", "email")
    return found


def unsubscribe_recipient(*, contact_id: int, list_id: int | None, source: str) -> bool:
    """The recipient asked to leave the list `list_id` (None: every list), e.g. with the
    one-click link of a campaign (RFC 8058). Idempotent; audited like any contact action.
    Returns whether a subscription ended."""
    with transaction.atomic():
        batch = ContactActionBatch(actor_label=source)
        locked = batch.lock([contact_id]).get(contact_id)
        if locked is None:
            return False
        done = batch.apply(locked, [Action.UNSUBSCRIBE], list_id=list_id,
                           reason=Suppression.Reason.UNSUBSCRIBE, detail={"source": source})
        batch.flush()
    return bool(done)
