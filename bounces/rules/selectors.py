"""Reads for bounce rules: test a draft rule against stored bounces, rule coverage, and the
bounces nothing explains, grouped by similar diagnostic text. Nothing here writes:
imports models, policies, the pure decisions/patterns/ruleset modules; never services."""

from __future__ import annotations

import re
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BinaryField, Count, Q
from django.db.models.functions import Substr
from django.utils.html import format_html
from django.utils.safestring import SafeString

from bounces.models import Bounce, Mailbox, RawMessage
from bounces.pipeline.decisions import decide
from bounces.pipeline.policies import effective_policy
from contacts.models import Contact, Subscription, Suppression

from .models import BounceRule
from .patterns import PatternError
from .ruleset import (
    MAX_RAW_BYTES,
    RULE_BUDGET,
    Budget,
    CompiledRule,
    MessageView,
    RuleMatch,
    RuleSet,
    compile_rule,
)

# Stored bounces examined by the rule pages: the most recent ones, so a page answers in
# seconds even on a large instance. The pages say so.
DEFAULT_SAMPLE = 5000
SAMPLE_CHOICES = (500, 1000, 5000, 20000)
# Raw messages are fetched in batches when a rule searches more than the diagnostic.
RAW_BATCH = 200
SAMPLE_ROWS = 50  # matched bounces shown with their highlighted text
HIGHLIGHT_CONTEXT = 160  # bytes of text shown either side of a match
# Many stored bounces can share one raw message (a 13 MB report naming 4,000 recipients, issue
# 12 item 3): each message is read (its first MAX_RAW_BYTES) and parsed once per page, and the
# parsed views of the last VIEW_CACHE messages are kept while the sample is walked.
VIEW_CACHE = 64
# Seconds a rule page may spend searching before it stops and says how far it got.
PAGE_BUDGET = 30.0


@dataclass
class StoredBounce:
    """A stored bounce with a lazily built `MessageView` of its raw message."""

    bounce: Bounce
    view: MessageView
    _engine: tuple[str, str] | None = None
    parsed: dict | None = None  # shared by the bounces of one raw message: its engine result

    def engine_verdict(self) -> tuple[str, str]:
        """(kind, reason) the engine gives this bounce's recipient, re-read from the raw
        message (the stored ones may be a rule's). Falls back to the stored values."""
        if self._engine is None:
            self._engine = (self.bounce.kind, self.bounce.reason)
            raw = self.view.raw()
            if raw:
                from bounces.parsing import parse_bounce

                memo = self.parsed if self.parsed is not None else {}
                result = memo.get("result")
                if result is None:
                    result = memo["result"] = parse_bounce(raw)
                wanted = (self.bounce.recipient or "").lower()
                for rec in result.recipients:
                    if not wanted or (rec.recipient or "").lower() == wanted:
                        kind = str(rec.category)
                        if kind in Bounce.Kind.values:
                            self._engine = (kind, rec.reason or "")
                        break
        return self._engine


def _raw_loader(raw_id: int | None) -> Any:
    if raw_id is None:
        return None

    def load() -> bytes | None:
        raw = _raw_heads([raw_id]).get(raw_id)
        return bytes(raw) if raw is not None else None

    return load


def _raw_heads(ids: Any) -> dict[int, bytes]:
    """The first MAX_RAW_BYTES of each raw message in ``ids`` (all a rule ever searches)."""
    if not ids:
        return {}
    head = Substr("raw", 1, MAX_RAW_BYTES, output_field=BinaryField())
    return {pk: bytes(raw) for pk, raw in
            RawMessage.objects.filter(pk__in=list(ids)).annotate(head=head).values_list("pk", "head")}


def sample_queryset(*, limit: int, only_unexplained: bool = False,
                    bounce_ids: list[int] | None = None) -> Any:
    """The most recent ``limit`` bounces (ids), newest first (only ``bounce_ids`` if given)."""
    qs = Bounce.objects.order_by("-bounced_at", "-id")
    if bounce_ids is not None:
        qs = qs.filter(pk__in=bounce_ids)
    if only_unexplained:
        qs = qs.filter(kind=Bounce.Kind.UNKNOWN, matched_rule__isnull=True)
    return qs[:limit]


def preload_raw(stored: list[StoredBounce]) -> None:
    """Read the raw messages the views of ``stored`` still lack, a batch at a time (one
    query per batch instead of one per view)."""
    wanted = [s for s in stored if s.view.needs_raw() and s.bounce.raw_message_id]
    for start in range(0, len(wanted), RAW_BATCH):
        chunk = [s for s in wanted[start : start + RAW_BATCH] if s.view.needs_raw()]
        raws = _raw_heads({s.bounce.raw_message_id for s in chunk})
        for s in chunk:
            if s.view.needs_raw():
                s.view.provide_raw(raws.get(s.bounce.raw_message_id))


def iter_stored_bounces(
    *, limit: int = DEFAULT_SAMPLE, only_unexplained: bool = False, with_raw: bool = False,
    with_raw_if_ruled: bool = False, bounce_ids: list[int] | None = None,
) -> Iterator[StoredBounce]:
    """Stored bounces, newest first, each with a message view. With ``with_raw`` the raw
    messages are fetched in batches (with ``with_raw_if_ruled``, those of bounces a rule
    decided, whose engine verdict is re-read); otherwise one by one, only if needed."""
    bounces = list(
        sample_queryset(limit=limit, only_unexplained=only_unexplained, bounce_ids=bounce_ids)
        .select_related("contact", "campaign")
    )
    shared: OrderedDict[int, tuple[MessageView, dict]] = OrderedDict()  # raw id -> view, engine memo
    for start in range(0, len(bounces), RAW_BATCH):
        chunk = bounces[start : start + RAW_BATCH]
        ids = {b.raw_message_id for b in chunk if b.raw_message_id and b.raw_message_id not in shared
               and (with_raw or (with_raw_if_ruled and b.matched_rule_id))}
        raws = _raw_heads(ids)
        for bounce in chunk:
            rid = bounce.raw_message_id
            if rid is None:
                yield StoredBounce(bounce=bounce, view=MessageView.from_stored(diagnostic=bounce.diagnostic))
                continue
            entry = shared.get(rid)
            if entry is None:
                raw = raws.get(rid)
                base = MessageView.from_stored(raw=raw, diagnostic="",
                                               raw_loader=None if raw is not None else _raw_loader(rid))
                entry = shared[rid] = (base, {})
                if len(shared) > VIEW_CACHE:
                    shared.popitem(last=False)
            else:
                shared.move_to_end(rid)
            yield StoredBounce(bounce=bounce, view=entry[0].with_diagnostic(bounce.diagnostic), parsed=entry[1])


def highlight(data: bytes, start: int, end: int, *, context: int = HIGHLIGHT_CONTEXT) -> SafeString:
    """The match in ``data`` with some text either side; everything escaped, the match in <mark>."""
    lo = max(0, start - context)
    hi = min(len(data), end + context)

    def text(chunk: bytes) -> str:
        return chunk.decode("utf-8", "replace").replace("\r", "")

    return format_html(
        "{}{}<mark>{}</mark>{}{}",
        "…" if lo > 0 else "",
        text(data[lo:start]),
        text(data[start:end]),
        text(data[end:hi]),
        "…" if hi < len(data) else "",
    )


# --- Contact state changes --------------------------------------------------------------------


@dataclass
class ContactContext:
    """What the preview needs to know about contacts (fetched in three queries)."""

    subscribed: dict[int, set[int]]  # contact id -> ids of lists it is subscribed to
    suppressed: set[str]  # suppressed addresses (lower-case)


def contact_context(bounces: list[Bounce]) -> ContactContext:
    """Subscriptions and suppressions of the contacts of ``bounces``."""
    contact_ids = {b.contact_id for b in bounces if b.contact_id}
    subscribed: dict[int, set[int]] = defaultdict(set)
    for contact_id, list_id in Subscription.objects.filter(
        contact_id__in=contact_ids, status=Subscription.Status.SUBSCRIBED
    ).values_list("contact_id", "mailing_list_id"):
        subscribed[contact_id].add(list_id)
    addresses = {(b.recipient or "").lower() for b in bounces if b.recipient}
    suppressed = set(
        Suppression.objects.active().filter(kind=Suppression.Kind.ADDRESS, value__in=addresses).values_list(
            "value", flat=True
        )
    )
    return ContactContext(subscribed=dict(subscribed), suppressed=suppressed)


# What each action does to a contact, as the preview words it ("12 contacts would be ...").
ACTION_EFFECTS = {
    BounceRule.Action.DELETE_CONTACT: "deleted",
    BounceRule.Action.UNCONFIRM: "unconfirmed",
    BounceRule.Action.BLACKLIST_CONTACT: "blacklisted",
    BounceRule.Action.BLACKLIST_ADDRESS: "blacklisted (address)",
    BounceRule.Action.UNSUBSCRIBE: "unsubscribed",
    BounceRule.Action.UNSUBSCRIBE_ALL: "unsubscribed from all lists",
    BounceRule.Action.SUPPRESS: "added to the suppression list",
    BounceRule.Action.MARK_HARD: "marked hard-bounced",
    BounceRule.Action.REMOVE_ADDRESS: "address moved aside",
}


def contact_effect(*, action: str, bounce: Bounce, context: ContactContext) -> str | None:
    """How ``action`` would change the bounce's contact, or None if it would not.

    Computed from the contact's current state: unsubscribing a contact with no active
    subscription, or blacklisting a blacklisted one, changes nothing.
    """
    contact: Contact | None = bounce.contact
    address = (bounce.recipient or (contact.email if contact else "")).lower()
    if action == BounceRule.Action.SUPPRESS:
        return ACTION_EFFECTS[action] if address and address not in context.suppressed else None
    if action == BounceRule.Action.BLACKLIST_ADDRESS:
        if not address or address in context.suppressed:
            return None
        return ACTION_EFFECTS[action]
    if contact is None:
        return None
    status = contact.status
    if action == BounceRule.Action.DELETE_CONTACT:
        return ACTION_EFFECTS[action]
    if action == BounceRule.Action.UNCONFIRM:
        return ACTION_EFFECTS[action] if status == Contact.Status.ACTIVE else None
    if action == BounceRule.Action.BLACKLIST_CONTACT:
        return ACTION_EFFECTS[action] if status != Contact.Status.BLACKLISTED else None
    if action == BounceRule.Action.UNSUBSCRIBE_ALL:
        return ACTION_EFFECTS[action] if context.subscribed.get(contact.pk) else None
    if action == BounceRule.Action.REMOVE_ADDRESS:
        return ACTION_EFFECTS[action] if contact.email else None
    if action == BounceRule.Action.UNSUBSCRIBE:
        lists = context.subscribed.get(contact.pk, set())
        campaign_list = bounce.campaign.mailing_list_id if bounce.campaign_id and bounce.campaign else None
        affected = (campaign_list in lists) if campaign_list else bool(lists)
        return ACTION_EFFECTS[action] if affected else None
    if action == BounceRule.Action.MARK_HARD:
        return ACTION_EFFECTS[action] if not contact.has_bounced else None
    return None  # count only


def _policy(mailbox_id: int | None, policies: dict[int | None, Any]) -> Any:
    """The effective policy of a mailbox, looked up once per mailbox (cached in ``policies``)."""
    if mailbox_id not in policies:
        mailbox = Mailbox.objects.filter(pk=mailbox_id).first() if mailbox_id else None
        policies[mailbox_id] = effective_policy(mailbox)
    return policies[mailbox_id]


def decide_for_preview(
    *, rule: BounceRule, engine_kind: str, mailbox_id: int | None, policies: dict[int | None, Any]
) -> tuple[str, tuple[str, ...]]:
    """(final kind, contact actions) if ``rule`` matched a bounce the engine calls ``engine_kind``.

    Asks the pipeline's own decision function (`bounces.pipeline.decisions.decide`, with the
    mailbox's effective policy) so the preview says what processing would do: e.g. a hard
    rule also marks the contact hard-bounced, "either" keeps the engine's verdict and its
    policy actions.
    """
    match = RuleMatch(
        rule_id=rule.pk or 0, rule_name=rule.name, bounce_type=rule.bounce_type, reason=rule.reason or "",
        actions_mode=rule.actions_mode, actions=tuple(rule.actions or ()), delete_message=rule.delete_message,
        in_statistics=rule.in_statistics, fallback_only=rule.fallback_only, matched_text="",
        message=rule.message_request,
    )
    if rule.fallback_only and engine_kind != "unknown":
        match = None  # a fallback rule leaves what the engine classified alone
    decision = decide(category=engine_kind, rule=match, mailbox_policy=_policy(mailbox_id, policies))
    kind = "ignored" if decision.not_bounce else str(decision.kind)
    return kind, tuple(decision.actions)


def final_verdict(
    *, match: RuleMatch | None, engine_kind: str, engine_reason: str, mailbox_id: int | None,
    policies: dict[int | None, Any],
) -> tuple[str, str, bool]:
    """(kind, reason, ignored) processing would store for a bounce given the matching rule
    (or None), as the pipeline's `decide` says."""
    decision = decide(category=engine_kind, rule=match, mailbox_policy=_policy(mailbox_id, policies))
    return str(decision.kind), decision.reason or engine_reason, bool(decision.not_bounce)


# --- Testing a draft rule ----------------------------------------------------------------------


@dataclass
class SampleRow:
    """One matched bounce as the test page shows it."""

    bounce: Bounce
    snippet: SafeString
    old_kind: str
    new_kind: str
    shadowed_by: str
    contact_effects: list[str]


@dataclass
class DraftReport:
    """What a draft rule would do on the stored bounces."""

    examined: int
    limit: int
    matched: int = 0
    shadowed: int = 0  # matched, but an earlier rule catches them first
    verdict_changes: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    contact_changes: Counter[str] = field(default_factory=Counter)  # effect -> contacts
    rows: list[SampleRow] = field(default_factory=list)
    stopped: str = ""  # why the test stopped before the whole sample (a rule too slow, the page's time)

    @property
    def contacts_changing(self) -> int:
        """Contacts whose state would change (each counted once per kind of change)."""
        return sum(self.contact_changes.values())

    @property
    def transition_list(self) -> list[tuple[str, str, int]]:
        """(old kind, new kind, bounces), most frequent first (templates cannot walk a Counter)."""
        return [(old, new, n) for (old, new), n in self.transitions.most_common()]

    @property
    def contact_change_lines(self) -> list[str]:
        """Sentences such as "12 contacts would be unsubscribed"."""
        lines = []
        for effect, count in self.contact_changes.most_common():
            noun = "contact" if count == 1 else "contacts"
            lines.append(f"{count} {noun} would be {effect}")
        return lines


def load_ruleset() -> RuleSet:
    """The enabled rules, in order (position, then id), compiled. One query."""
    return RuleSet.from_rules(BounceRule.objects.filter(enabled=True).order_by("position", "id"))


def rules_before(*, rule: BounceRule) -> RuleSet:
    """The enabled rules tried before ``rule`` (lower position; same position, lower id)."""
    qs = BounceRule.objects.filter(enabled=True).order_by("position", "id")
    if rule.pk:
        qs = qs.exclude(pk=rule.pk)
        before = Q(position__lt=rule.position) | Q(position=rule.position, pk__lt=rule.pk)
    else:
        before = Q(position__lte=rule.position)  # a new rule goes after the ones at its position
    return RuleSet.from_rules(qs.filter(before))


def preview_draft_rule(*, rule: BounceRule, limit: int = DEFAULT_SAMPLE) -> DraftReport:
    """Run the unsaved ``rule`` (already validated) against the most recent ``limit`` stored
    bounces: how many it matches, how many an earlier rule would catch first, how many
    would change verdict, which contacts would change state, and a highlighted sample."""
    compiled = compile_rule(rule)
    earlier = rules_before(rule=rule)
    matched: list[tuple[StoredBounce, bytes, int, int]] = []
    examined = 0
    stopped = ""
    deadline = time.monotonic() + PAGE_BUDGET
    for stored in iter_stored_bounces(limit=limit, with_raw=compiled.section != "diagnostic"):
        examined += 1
        budget = Budget()
        found = compiled.search(stored.view, budget=budget)
        if budget.stopped:
            stopped = (f"The pattern took over {RULE_BUDGET:g} s on one message, so the test stopped "
                       f"after {examined} bounces: in the pipeline this rule would be skipped. Simplify it.")
            break
        if found is not None:
            matched.append((stored, *found))
        if time.monotonic() > deadline:
            stopped = f"The test stopped after {examined} bounces ({PAGE_BUDGET:g} s): try a smaller sample."
            break
    report = DraftReport(examined=examined, limit=limit, matched=len(matched), stopped=stopped)
    if any(r.section != "diagnostic" for r in earlier.rules) or any(s.bounce.matched_rule_id for s, *_ in matched):
        preload_raw([stored for stored, *_ in matched])  # earlier rules or the engine verdict read them
    policies: dict[int | None, Any] = {}
    context = contact_context([stored.bounce for stored, *_ in matched])
    counted_contacts: dict[str, set[int | str]] = defaultdict(set)
    for stored, data, start, end in matched:
        bounce = stored.bounce
        first = earlier.first_match(message=stored.view)
        shadowed_by = first.rule_name if first else ""
        old_kind = "ignored" if bounce.state == Bounce.State.IGNORED else bounce.kind
        new_kind = old_kind
        effects: list[str] = []
        if first is not None:
            report.shadowed += 1
        else:
            engine_kind = bounce.kind if bounce.matched_rule_id is None else stored.engine_verdict()[0]
            new_kind, actions = decide_for_preview(rule=rule, engine_kind=engine_kind, mailbox_id=bounce.mailbox_id,
                                                   policies=policies)
            if new_kind != old_kind:
                report.verdict_changes += 1
                report.transitions[(old_kind, new_kind)] += 1
            for action in actions:
                effect = contact_effect(action=action, bounce=bounce, context=context)
                if effect and effect not in effects:
                    effects.append(effect)
                    # a contact with several matched bounces counts once
                    counted_contacts[effect].add(bounce.contact_id or (bounce.recipient or "").lower())
        if len(report.rows) < SAMPLE_ROWS:
            report.rows.append(
                SampleRow(
                    bounce=bounce, snippet=highlight(data, start, end), old_kind=old_kind,
                    new_kind=new_kind, shadowed_by=shadowed_by, contact_effects=effects,
                )
            )
    report.contact_changes = Counter({effect: len(who) for effect, who in counted_contacts.items()})
    return report


# --- Coverage ----------------------------------------------------------------------------------


@dataclass
class CoverageRow:
    """One rule on the coverage page."""

    rule: BounceRule
    catches: int = 0  # stored bounces in the sample its pattern matches
    wins: int = 0  # ... of which it is the first matching rule
    recorded: int = 0  # bounces that name it as their matched rule (all time)
    error: str = ""


@dataclass
class CoverageReport:
    """Per-rule coverage over the sample."""

    examined: int
    limit: int
    rows: list[CoverageRow]
    uncaught: int = 0  # bounces in the sample no enabled rule catches
    stopped: str = ""  # why the page stopped before the whole sample


def rule_coverage(*, limit: int = DEFAULT_SAMPLE) -> CoverageReport:
    """For every rule, how many of the most recent ``limit`` stored bounces it catches,
    how many it decides (first match, enabled rules only), and how many name it."""

    rules = list(BounceRule.objects.order_by("position", "id"))
    recorded = dict(
        Bounce.objects.filter(matched_rule__isnull=False)
        .values_list("matched_rule")
        .annotate(n=Count("id"))
        .values_list("matched_rule", "n")
    )
    rows = [CoverageRow(rule=r, recorded=recorded.get(r.pk, 0)) for r in rules]
    compiled: list[tuple[CoverageRow, CompiledRule]] = []
    for row in rows:
        try:
            compiled.append((row, compile_rule(row.rule)))
        except PatternError as exc:
            row.error = str(exc)
    needs_raw = any(c.section != "diagnostic" for _, c in compiled)
    examined = uncaught = 0
    stopped = ""
    deadline = time.monotonic() + PAGE_BUDGET
    for stored in iter_stored_bounces(limit=limit, with_raw=needs_raw):
        examined += 1
        won = False
        for row, rule in compiled:
            if row.error:
                continue
            budget = Budget(message_seconds=RULE_BUDGET * 2)
            # a section other than the diagnostic belongs to the raw message: searched once for
            # all the bounces that share it
            memo = stored.parsed if rule.section != "diagnostic" and stored.parsed is not None else {}
            hit = memo.get(("hit", rule.rule_id, id(rule)))
            if hit is None:
                hit = rule.search(stored.view, budget=budget) is not None
                memo[("hit", rule.rule_id, id(rule))] = hit
            if hit:
                row.catches += 1
                if row.rule.enabled and not won:
                    row.wins += 1
                    won = True
            if budget.stopped:  # skipped from now on, as the pipeline does
                row.error = (f"Stopped after {examined} bounces: the pattern took over {RULE_BUDGET:g} s "
                             "on one message (the pipeline skips it). Simplify it.")
        if not won:
            uncaught += 1
        if time.monotonic() > deadline:
            stopped = f"Stopped after {examined} bounces ({PAGE_BUDGET:g} s): try a smaller sample."
            break
    return CoverageReport(examined=examined, limit=limit, rows=rows, uncaught=uncaught, stopped=stopped)


# --- Unexplained bounces -----------------------------------------------------------------------

_NORMALISERS = (
    (re.compile(r"<?[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+>?", re.A), "<address>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-f]*:[0-9a-f:]{6,}\b", re.I), "<ip>"),
    (re.compile(r"\b(?=[a-z0-9_.-]*\d)(?![245]\.\d{1,3}\.\d{1,3}\b)[a-z0-9_.-]{8,}\b", re.I), "<id>"),
)
# Reply codes (550) and enhanced status codes (5.1.1) are kept: they tell refusals apart.
_NUMBERS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b|\b[245]\d\d\b|\d+")
_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}|[245]\d\d")
_PLACEHOLDER = re.compile(r"<(?:address|ip|id|n)>|[()\[\]]")
_EDGE = " \t:;,.()[]<>\"'-=/#"


def normalise_diagnostic(text: str) -> str:
    """Diagnostic text with addresses, IPs, ids and numbers (not SMTP codes) replaced, so
    that the same refusal to different recipients reads the same."""
    out = " ".join((text or "").split()).lower()[:400]
    for pattern, repl in _NORMALISERS:
        out = pattern.sub(repl, out)
    out = _NUMBERS.sub(lambda m: m.group(0) if _CODE.fullmatch(m.group(0)) else "<n>", out)
    return out[:200]


def suggest_pattern(normalised: str) -> str:
    """A "contains" pattern for a group: its longest stretch of text without placeholders."""
    pieces = [p.strip(_EDGE) for p in _PLACEHOLDER.split(normalised)]
    best = max(pieces, key=len, default="")
    return best if len(best) >= 8 else ""


@dataclass
class UnexplainedGroup:
    """Unexplained bounces sharing one normalised diagnostic text."""

    key: str
    count: int
    example: Bounce
    suggestion: str
    contacts: int


def unexplained_groups(*, limit: int = DEFAULT_SAMPLE, groups: int = 50) -> tuple[int, list[UnexplainedGroup]]:
    """Bounces of kind unknown that no rule matched (among the most recent ``limit``),
    grouped by normalised diagnostic, biggest group first. Returns (bounces, groups)."""
    bounces = list(
        sample_queryset(limit=limit, only_unexplained=True).only(
            "id", "diagnostic", "recipient", "contact_id", "bounced_at", "kind", "reason", "status_code"
        )
    )
    by_key: dict[str, list[Bounce]] = defaultdict(list)
    for bounce in bounces:
        by_key[normalise_diagnostic(bounce.diagnostic)].append(bounce)
    result = [
        UnexplainedGroup(
            key=key or "(no diagnostic text)",
            count=len(items),
            example=items[0],
            suggestion=suggest_pattern(key),
            contacts=len({b.contact_id for b in items if b.contact_id}),
        )
        for key, items in by_key.items()
    ]
    result.sort(key=lambda g: (-g.count, g.key))
    return len(bounces), result[:groups]
