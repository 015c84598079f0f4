"""Match bounces to what we sent, a batch at a time (a fixed number of queries per batch).
Imports models only (bounces', campaigns', contacts') and the engine's result types.

Order of evidence, strongest first:

1. our token (VERP return path ``bounces+TOKEN@`` → ``token``; the tracking header →
   ``header``), which names one SentMessage;
2. the original Message-ID quoted in the bounce → ``message_id``;
3. the bounced recipient address against contacts → ``address``; the campaign is then
   the latest message sent to that address, preferring campaigns of the lists the
   mailbox serves (Interspire keeps bounce settings per list).

When a DSN lists several recipients, a token or Message-ID match is used only for the
recipient the message was sent to; the others are matched by address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Case, F, IntegerField, Value, When, Window
from django.db.models.functions import Lower, RowNumber

from bounces.models import Bounce
from bounces.parsing import ParseResult, RecipientResult
from campaigns.models import SentMessage
from contacts.models import Contact

_SENT_FIELDS = ("id", "token", "message_id", "email", "contact_id", "campaign_id",
                "campaign__mailing_list_id", "sent_at")
_CHUNK = 500
# Sends kept per address for matching by address and time (older bounces query further back).
SENDS_KEPT = 5


@dataclass(frozen=True, slots=True)
class Match:
    """What a bounced recipient was matched to (all None when unmatched)."""

    method: str = Bounce.MatchMethod.NONE
    sent_message_id: int | None = None
    contact_id: int | None = None
    campaign_id: int | None = None
    list_id: int | None = None
    sent_at: datetime | None = None
    email: str = ""  # the address the matched message was sent to
    before_sends: bool = False  # by address, older than every message sent there: no campaign

    @property
    def matched(self) -> bool:
        return self.contact_id is not None or self.sent_message_id is not None


NO_MATCH = Match()


@dataclass(frozen=True, slots=True)
class _Sent:
    id: int
    email: str
    contact_id: int | None
    campaign_id: int
    list_id: int | None
    sent_at: datetime | None

    def match(self, method: str) -> Match:
        return Match(method=method, sent_message_id=self.id, contact_id=self.contact_id,
                     campaign_id=self.campaign_id, list_id=self.list_id, sent_at=self.sent_at,
                     email=self.email)


def _sent(row: dict) -> _Sent:
    return _Sent(id=row["id"], email=(row["email"] or "").lower(), contact_id=row["contact_id"],
                 campaign_id=row["campaign_id"], list_id=row["campaign__mailing_list_id"],
                 sent_at=row["sent_at"])


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def bare_message_id(value: str | None) -> str | None:
    """A Message-ID as SentMessage stores it: without angle brackets."""
    if not value:
        return None
    value = value.strip().strip("<>").strip()
    return value or None


class BatchMatcher:
    """Looks up everything a batch of parsed messages needs, then matches in memory."""

    def __init__(self, *, list_ids: Iterable[int] = (), verp_prefix: str = "bounces") -> None:
        self.list_ids = set(list_ids)
        self.verp_prefix = verp_prefix.lower().encode()
        self.by_token: dict[str, _Sent] = {}
        self.by_message_id: dict[str, _Sent] = {}
        self.contacts: dict[str, int] = {}
        self.latest_sent: dict[str, list[_Sent]] = {}

    def prepare(self, results: Iterable[ParseResult]) -> None:
        """Bulk-load the SentMessages and contacts the batch refers to."""
        results = list(results)
        tokens = sorted({r.token.lower() for r in results if r.token} - set(self.by_token))
        for chunk in _chunks(tokens):
            for row in SentMessage.objects.filter(token__in=chunk).values(*_SENT_FIELDS):
                self.by_token[row["token"]] = _sent(row)
        ids = sorted({m for r in results if (m := bare_message_id(r.message_id))} - set(self.by_message_id))
        for chunk in _chunks(ids):
            for row in SentMessage.objects.filter(message_id__in=chunk).values(*_SENT_FIELDS):
                self.by_message_id[row["message_id"]] = _sent(row)
        # Contacts and their latest sends only for recipients the token or Message-ID does not
        # settle (`match` looks no further for those): most of a batch, none of these queries.
        addresses = sorted(
            {a for r in results for rc in r.recipients if rc.recipient
             and not self._settled(r, a := rc.recipient.lower())} - set(self.contacts)
        )
        for chunk in _chunks(addresses):
            # served by the expression index of contact_email_ci_unique: it is partial
            # (email <> ''), so the query must say so for PostgreSQL to use it
            rows = (
                Contact.objects.exclude(email="").annotate(email_lower=Lower("email"))
                .filter(email_lower__in=chunk)
                .order_by()
                .values_list("email_lower", "id")
            )
            self.contacts.update(rows)
        self._prepare_latest_sent([a for a in addresses if a in self.contacts])

    def _settled(self, result: ParseResult, address: str) -> bool:
        """Whether `match` takes this recipient's message by token or Message-ID (as it decides)."""
        several = len(result.recipients) > 1
        if result.token:
            sent = self.by_token.get(result.token.lower())
            if sent is not None and (not several or not address or address == sent.email):
                return True
        message_id = bare_message_id(result.message_id)
        if message_id:
            sent = self.by_message_id.get(message_id)
            if sent is not None and (not several or not address or address == sent.email):
                return True
        return False

    def _prepare_latest_sent(self, addresses: list[str]) -> None:
        """The latest SENDS_KEPT messages per address (lists of the mailbox first), for campaign
        links by address: a bounce goes to the latest message sent before it (issue 11).

        One query per chunk (a window function picks the rows in the database), however
        many campaigns the contact received; an older bounce looks further back by itself.
        """
        order: list[Any] = [F("sent_at").desc(), F("id").desc()]
        if self.list_ids:
            served = Case(When(campaign__mailing_list_id__in=self.list_ids, then=Value(1)),
                          default=Value(0), output_field=IntegerField())
            order.insert(0, served.desc())
        for chunk in _chunks([a for a in addresses if a not in self.latest_sent]):
            contact_ids = [self.contacts[a] for a in chunk]
            # Only messages that went out: queued or skipped rows have no send time (and
            # PostgreSQL would sort those NULLs first in a descending order).
            rows = (
                SentMessage.objects.filter(contact_id__in=contact_ids, sent_at__isnull=False)
                .annotate(pick=Window(RowNumber(), partition_by=[F("contact_id")], order_by=order))
                .filter(pick__lte=SENDS_KEPT)
                .order_by()
                .values(*_SENT_FIELDS, "pick")
            )
            best: dict[int, list[tuple[int, _Sent]]] = {}
            for row in rows:
                best.setdefault(row["contact_id"], []).append((row["pick"], _sent(row)))
            for address in chunk:
                sends = best.get(self.contacts[address])
                if sends:
                    self.latest_sent[address] = [sent for _, sent in sorted(sends, key=lambda p: p[0])]

    def _sent_before(self, address: str, at: datetime | None) -> _Sent | None:
        """The message to `address` a bounce at `at` is about: the preferred latest one sent
        before it (None: the bounce is older than every send)."""
        sends = self.latest_sent.get(address, [])
        if at is None:
            return sends[0] if sends else None
        for sent in sends:
            if sent.sent_at is not None and sent.sent_at <= at:
                return sent
        if len(sends) < SENDS_KEPT:
            return None
        # older than the messages loaded: look further back (rare: a late, old bounce)
        qs = SentMessage.objects.filter(contact_id=self.contacts[address], sent_at__lte=at)
        if self.list_ids:
            qs = qs.order_by(Case(When(campaign__mailing_list_id__in=self.list_ids, then=Value(0)), default=Value(1),
                                  output_field=IntegerField()), "-sent_at", "-id")
        else:
            qs = qs.order_by("-sent_at", "-id")
        row = qs.values(*_SENT_FIELDS).first()
        return _sent(row) if row else None

    def match(self, result: ParseResult, recipient: RecipientResult | None, raw: bytes,
              at: datetime | None = None) -> Match:
        """The best match for one recipient of one parsed message that bounced at `at`.

        By address, the campaign is that of the latest message sent before `at`; a bounce
        older than every message sent to the address is recorded against no campaign
        (`Match.before_sends`)."""
        address = (recipient.recipient or "").lower() if recipient else ""
        several = len(result.recipients) > 1
        if result.token:
            sent = self.by_token.get(result.token.lower())
            if sent is not None and (not several or not address or address == sent.email):
                return sent.match(self._token_method(result.token, raw))
        message_id = bare_message_id(result.message_id)
        if message_id:
            sent = self.by_message_id.get(message_id)
            if sent is not None and (not several or not address or address == sent.email):
                return sent.match(Bounce.MatchMethod.MESSAGE_ID)
        if address:
            contact_id = self.contacts.get(address)
            if contact_id is not None:
                sent = self._sent_before(address, at)
                if sent is not None:
                    return Match(method=Bounce.MatchMethod.ADDRESS, sent_message_id=None,
                                 contact_id=contact_id, campaign_id=sent.campaign_id,
                                 list_id=sent.list_id, sent_at=None)
                return Match(method=Bounce.MatchMethod.ADDRESS, contact_id=contact_id,
                             before_sends=address in self.latest_sent)
        return NO_MATCH

    def _token_method(self, token: str, raw: bytes) -> str:
        # The engine reports one token; it came from the VERP return path when our
        # "bounces+TOKEN" local part is in the message, else from the tracking header.
        head = raw[:65536].lower()
        needle = token.lower().encode()
        for sep in (b"+", b"=", b"-"):
            if self.verp_prefix + sep + needle in head:
                return Bounce.MatchMethod.TOKEN
        return Bounce.MatchMethod.HEADER
