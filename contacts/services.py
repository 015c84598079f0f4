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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from .models import Contact, ContactEvent, Subscription, Suppression


class Action:
    """Contact actions (the BounceRule.Action values plus what policies need)."""

    MARK_HARD = "mark_hard"  # has_bounced, hard count + 1
    UNSUBSCRIBE = "unsubscribe"  # from the campaign's list (all lists when unknown)
    SUPPRESS = "suppress"  # the address goes on the suppression list
    UNCONFIRM = "unconfirm"
    BLACKLIST_CONTACT = "blacklist_contact"
    BLACKLIST_ADDRESS = "blacklist_address"  # suppression with reason "blacklist"
    DELETE_CONTACT = "delete_contact"
    REMOVE_ADDRESS = "remove_address"  # OpenCRM: email moves to bounced_address
    COUNT_ONLY = "count_only"
    NOTHING = "nothing"


ALL_ACTIONS = frozenset(v for k, v in vars(Action).items() if k.isupper())

# Order in which actions of one bounce are carried out: the suppression needs the address
# before `remove_address` clears it; deletion comes last.
_ORDER = {
    Action.MARK_HARD: 0, Action.SUPPRESS: 1, Action.BLACKLIST_ADDRESS: 2, Action.UNSUBSCRIBE: 3,
    Action.UNCONFIRM: 4, Action.BLACKLIST_CONTACT: 5, Action.REMOVE_ADDRESS: 6,
    Action.COUNT_ONLY: 7, Action.NOTHING: 7, Action.DELETE_CONTACT: 9,
}

_CONTACT_FIELDS = [
    "email", "status", "consecutive_bounces", "hard_bounce_count", "soft_bounce_count",
    "bounce_score", "bounce_scored_on", "last_bounce_sent_at", "last_bounce_at", "has_bounced",
    "bounced_address", "updated_at",
]


def suppression_address(contact: Contact) -> str:
    """The address a suppression of `contact` is keyed on: its email, or the removed one."""
    return (contact.email or contact.bounced_address).strip().lower()


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
    _events: list[ContactEvent] = field(default_factory=list)
    _suppress: dict[str, tuple[str, str]] = field(default_factory=dict)
    _unsubscribe: dict[tuple[int, int | None], str] = field(default_factory=dict)
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

    def event(self, contact: Contact, kind: str, *, old_status: str = "", detail: dict | None = None) -> None:
        """Queue an audit row for `contact`."""
        self._events.append(
            ContactEvent(
                contact_id=contact.id, email=contact.email or contact.bounced_address, kind=kind,
                actor=self.actor, actor_label=self.actor_label,
                old_status=old_status, new_status=contact.status if old_status else "",
                detail=detail or {},
            )
        )

    def apply(
        self,
        contact: Contact,
        actions: Iterable[str],
        *,
        list_id: int | None = None,
        reason: str = Suppression.Reason.HARD_BOUNCE,
        detail: dict | None = None,
    ) -> list[str]:
        """Carry out `actions` on `contact` in memory; return what changed, for the record.

        `list_id` is the list to unsubscribe from (the campaign's); None means every list.
        `reason` is the suppression reason. Idempotent: a repeated action changes nothing.

        Audit rows: the suppression and unsubscription that come with a hard bounce or a
        complaint are recorded in that bounce's one event (`detail["actions"]`), not as
        rows of their own (a run writes thousands); status changes always get their row.
        """
        done: list[str] = []
        if contact.id in self._delete:
            return done
        detail = dict(detail or {})
        ordered = sort_actions(actions)
        head: ContactEvent | None = None
        if Action.MARK_HARD in ordered:
            contact.has_bounced = True
            contact.hard_bounce_count += 1
            contact.last_bounce_at = self.now
            self.touch(contact)
            self.event(contact, ContactEvent.Kind.HARD_BOUNCE, detail=detail)
            head = self._events[-1]
            done.append(Action.MARK_HARD)
        elif reason == Suppression.Reason.COMPLAINT and {Action.SUPPRESS, Action.UNSUBSCRIBE} & set(ordered):
            self.event(contact, ContactEvent.Kind.COMPLAINT, detail=detail)
            head = self._events[-1]
        for action in ordered:
            old = contact.status
            if action == Action.MARK_HARD:
                continue
            elif action in (Action.SUPPRESS, Action.BLACKLIST_ADDRESS):
                address = suppression_address(contact)
                if not address:
                    continue
                why = Suppression.Reason.BLACKLIST if action == Action.BLACKLIST_ADDRESS else reason
                if address not in self._suppress or why == Suppression.Reason.BLACKLIST:
                    self._suppress[address] = (why, self.actor_label or "bounce")
                if head is None or action == Action.BLACKLIST_ADDRESS:
                    self.event(contact, ContactEvent.Kind.SUPPRESS, detail={**detail, "address": address,
                                                                             "reason": str(why)})
                done.append(action)
            elif action == Action.UNSUBSCRIBE:
                self._unsubscribe[(contact.id, list_id)] = str(reason)
                if head is None:
                    self.event(contact, ContactEvent.Kind.UNSUBSCRIBE, detail={**detail, "list_id": list_id})
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
                self.event(contact, kind, old_status=old, detail=detail)
                done.append(action)
            elif action == Action.REMOVE_ADDRESS:
                if not contact.email:
                    continue
                contact.bounced_address = contact.email
                contact.email = ""
                contact.has_bounced = True
                self.touch(contact)
                self.event(contact, ContactEvent.Kind.ADDRESS_REMOVED,
                           detail={**detail, "address": contact.bounced_address})
                done.append(action)
            elif action == Action.DELETE_CONTACT:
                self._delete.add(contact.id)
                self.event(contact, ContactEvent.Kind.DELETED, detail=detail)
                done.append(action)
        if head is not None:
            head.detail = {**head.detail, "actions": done, "list_id": list_id}
        return done

    def flush(self) -> None:
        """Write every queued change (call inside the caller's transaction)."""
        dirty = [self.contacts[i] for i in sorted(self._dirty) if i not in self._delete]
        for contact in dirty:
            contact.updated_at = self.now
        if dirty:
            _write_contacts(dirty)
        if self._suppress:
            bulk_insert(
                Suppression,
                [
                    Suppression(kind=Suppression.Kind.ADDRESS, value=value, reason=why, source=source[:200])
                    for value, (why, source) in self._suppress.items()
                ],
                ignore_conflicts=True,
            )
            # an address already suppressed for a bounce is upgraded to a blacklisting
            blacklisted = [v for v, (why, _) in self._suppress.items() if why == Suppression.Reason.BLACKLIST]
            if blacklisted:
                Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=blacklisted).exclude(
                    reason=Suppression.Reason.BLACKLIST
                ).update(reason=Suppression.Reason.BLACKLIST, updated_at=self.now)
        by_list: dict[tuple[int | None, str], list[int]] = defaultdict(list)
        for (contact_id, list_id), why in self._unsubscribe.items():
            if contact_id not in self._delete:
                by_list[(list_id, why)].append(contact_id)
        for (list_id, why), ids in by_list.items():
            qs = Subscription.objects.filter(contact_id__in=ids).exclude(
                status=Subscription.Status.UNSUBSCRIBED
            )
            if list_id is not None:
                qs = qs.filter(mailing_list_id=list_id)
            qs.update(status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=self.now,
                      unsubscribe_reason=why[:200], updated_at=self.now)
        # Events of deleted contacts are kept too: the deletion sets their contact to NULL.
        if self._events:
            bulk_insert(ContactEvent, self._events)
        if self._delete:
            Contact.objects.filter(id__in=self._delete).delete()
        self._dirty.clear()
        self._events.clear()
        self._suppress.clear()
        self._unsubscribe.clear()
        self._delete.clear()


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
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
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
        with psycopg.Cursor(connection.connection) as cursor:
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
            lifted, _ = Suppression.objects.filter(
                kind=Suppression.Kind.ADDRESS, value=address,
                reason__in=[Suppression.Reason.HARD_BOUNCE, Suppression.Reason.SOFT_BOUNCE],
            ).delete()
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
