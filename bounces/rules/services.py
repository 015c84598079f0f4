"""Writes for bounce rules: hit counts, placement in the order, Octeth paste, import/export,
the starter set, and re-applying the rules to stored bounces (with undo). Imports models,
selectors and the pure modules; never tasks, views or admin."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, IntegerField, Max, Value, When
from django.utils import timezone

from bouncemgr import safejson
from bounces.models import Bounce

from .models import BounceRule, BounceRuleChange, RuleReapply, StarterRuleRecord
from .patterns import TYPE_RANK, parse_octeth_lines
from .ruleset import RuleSet
from .selectors import DEFAULT_SAMPLE, final_verdict, iter_stored_bounces, load_ruleset

# Gap between positions, so a rule can be slotted between two others by hand.
POSITION_STEP = 10
EXPORT_FORMAT = "bouncemgr-rules"
EXPORT_VERSION = 2
# Fields a rule has in an export file (what defines its behaviour, not its statistics).
EXPORT_FIELDS = (
    "name", "pattern", "match_type", "section", "case_sensitive", "bounce_type", "reason",
    "actions_mode", "actions", "delete_message", "message_action", "message_folder", "in_statistics",
    "fallback_only", "position", "enabled", "notes",
)
# Version 1 files (and old exports) carry one "action": "mark_hard" and "count_only" only said
# what the bounce was, so they become the kind's policy; any other action is added to it.
LEGACY_KIND_ONLY_ACTIONS = ("", "mark_hard", "count_only", "nothing")


def legacy_action_fields(action: str | None) -> dict[str, Any]:
    """The actions_mode / actions of a rule written with the single "action" of version 1."""
    if not action or action in LEGACY_KIND_ONLY_ACTIONS:
        return {"actions_mode": BounceRule.ActionsMode.KIND, "actions": []}
    return {"actions_mode": BounceRule.ActionsMode.ADD, "actions": [action]}
STARTER_RULES_PATH = Path(settings.BASE_DIR) / "bounces" / "fixtures" / "starter_rules.json"


class RuleImportError(ValueError):
    """An import file that cannot be used (not JSON, wrong format, invalid rules)."""


# --- Hits -------------------------------------------------------------------------------------


def record_rule_hits(*, hits: dict[int, int]) -> None:
    """Add ``hits`` (rule id -> count) to the rules' hit counts and stamp the last hit time.

    One UPDATE for all rules (a CASE on the id), so a processing run records its hits at
    the end without a query per rule. Unknown ids are ignored.
    """
    hits = {int(k): int(v) for k, v in hits.items() if int(v) > 0}
    if not hits:
        return
    increment = Case(
        *[When(pk=rule_id, then=Value(count)) for rule_id, count in hits.items()],
        default=Value(0),
        output_field=IntegerField(),
    )
    BounceRule.objects.filter(pk__in=list(hits)).update(
        hit_count=F("hit_count") + increment, last_hit_at=timezone.now()
    )


# --- Order ------------------------------------------------------------------------------------


def default_position(*, bounce_type: str, exclude_pk: int | None = None) -> int:
    """Where a new rule of ``bounce_type`` goes by default: after the rules of its group and
    of the groups before it (hard/complaint, then soft/auto-reply/ignore, then either)."""
    rank = TYPE_RANK.get(bounce_type, max(TYPE_RANK.values()))
    same_or_before = [t for t, r in TYPE_RANK.items() if r <= rank]
    rules = BounceRule.objects.all()
    if exclude_pk:
        rules = rules.exclude(pk=exclude_pk)
    last = rules.filter(bounce_type__in=same_or_before).aggregate(m=Max("position"))["m"]
    return (last or 0) + POSITION_STEP


@transaction.atomic
def place_rule(*, rule: BounceRule, position: int | None = None) -> BounceRule:
    """Validate and save ``rule`` at ``position`` (None: its default place), moving the rules
    at or after that position down one step so the order stays strict."""
    if position is None:
        position = default_position(bounce_type=rule.bounce_type, exclude_pk=rule.pk)
    rule.position = position
    rule.full_clean()
    others = BounceRule.objects.select_for_update().filter(position__gte=position)
    if rule.pk:
        others = others.exclude(pk=rule.pk)
    if others.filter(position=position).exists():
        others.update(position=F("position") + POSITION_STEP)
    rule.save()
    return rule


@transaction.atomic
def renumber_rules() -> int:
    """Rewrite positions as 10, 20, 30... in the current order; returns the number of rules."""
    rules = list(BounceRule.objects.select_for_update().order_by("position", "id"))
    for index, rule in enumerate(rules, start=1):
        rule.position = index * POSITION_STEP
    BounceRule.objects.bulk_update(rules, ["position"])
    return len(rules)


# --- Octeth paste -----------------------------------------------------------------------------


@dataclass
class PasteReport:
    """What a paste of Octeth lines did."""

    created: list[BounceRule] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line no, line, message)


def create_rules_from_octeth(
    *,
    text: str,
    section: str = BounceRule.Section.BODY,
    enabled: bool = True,
) -> PasteReport:
    """Create one "contains" rule per ``text==>Hard`` line (Octeth's one-line form).

    A line says what a bounce *is*: its rule gets the kind's policy (issue 11: ``==>Hard``
    marks, unsubscribes and suppresses exactly as the hard policy says). Lines that do not
    parse are reported and skipped; the others are created (each at the default place of
    its type) in one transaction. Octeth searches the message, so the default section is
    the body.
    """
    parsed, errors = parse_octeth_lines(text)
    report = PasteReport(errors=errors)
    with transaction.atomic():
        for line in parsed:
            rule = BounceRule(
                name=_name_from_pattern(line.pattern, prefix="Octeth"),
                pattern=line.pattern,
                match_type=BounceRule.MatchType.CONTAINS,
                section=section,
                bounce_type=line.bounce_type,
                enabled=enabled,
            )
            try:
                place_rule(rule=rule)
            except ValidationError as exc:
                report.errors.append((line.line_number, line.pattern, "; ".join(exc.messages)))
                continue
            report.created.append(rule)
    return report


def _name_from_pattern(pattern: str, *, prefix: str) -> str:
    short = " ".join(pattern.split())
    if len(short) > 60:
        short = short[:59] + "…"
    return f"{prefix}: {short}"


# --- Export / import ----------------------------------------------------------------------------


def export_rules(*, rules: Iterable[BounceRule] | None = None) -> dict[str, Any]:
    """The rules (all by default, in order) as a JSON-ready document."""
    if rules is None:
        rules = BounceRule.objects.order_by("position", "id")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "rules": [{name: getattr(rule, name) for name in EXPORT_FIELDS} for rule in rules],
    }


def export_rules_json(*, rules: Iterable[BounceRule] | None = None) -> str:
    """`export_rules` serialised as indented JSON text."""
    return json.dumps(export_rules(rules=rules), indent=2, ensure_ascii=False) + "\n"


@dataclass
class ImportReport:
    """What an import did."""

    created: int = 0
    skipped: int = 0  # identical rule already present
    deleted: int = 0  # with replace=True


def _identity(data: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rules the same rule (name and statistics aside)."""
    return (
        data["pattern"], data["match_type"], data["section"], bool(data["case_sensitive"]),
        data["bounce_type"], data.get("actions_mode", "kind"), tuple(data.get("actions") or ()),
        bool(data["delete_message"]), data.get("message_action") or ("delete" if data["delete_message"] else ""),
        (data.get("message_folder") or "") if data.get("message_action") == "move" else "",
    )


def _rule_from_data(data: Any, index: int) -> BounceRule:
    if not isinstance(data, dict):
        raise RuleImportError(f"Rule {index}: expected an object.")
    data = dict(data)
    if "action" in data:  # a version 1 rule
        legacy = legacy_action_fields(data.pop("action"))
        for name, value in legacy.items():
            data.setdefault(name, value)
    unknown = set(data) - set(EXPORT_FIELDS) - {"id", "hit_count", "last_hit_at", "key"}
    if unknown:
        raise RuleImportError(f"Rule {index}: unknown field(s) {', '.join(sorted(unknown))}.")
    for required in ("pattern", "bounce_type"):
        if required not in data:
            raise RuleImportError(f"Rule {index}: '{required}' is missing.")
    values = {name: data[name] for name in EXPORT_FIELDS if name in data}
    values.setdefault("name", _name_from_pattern(str(values["pattern"]), prefix="Imported"))
    rule = BounceRule(**values)
    try:
        # a position given in the file is checked like any field; none: placed at import
        rule.full_clean(exclude=[] if "position" in values else ["position"])
    except ValidationError as exc:
        parts = [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
        raise RuleImportError(f"Rule {index} ({values['name']}): {'; '.join(parts)}") from None
    return rule


# An export is {"rules": [{...}]}: 3 levels; anything much deeper is not ours.
IMPORT_MAX_DEPTH = 8


def parse_import(text: str | bytes) -> list[dict[str, Any]]:
    """Read an export document (or a bare list of rules); raises `RuleImportError`.

    The nesting is bounded before parsing: `[[[[…` 100,000 deep used to raise
    RecursionError from json (issue 12).
    """
    try:
        doc = safejson.loads(text, max_depth=IMPORT_MAX_DEPTH)
    except safejson.JSONTooDeep:
        raise RuleImportError(
            f"The file nests lists or objects more than {IMPORT_MAX_DEPTH} levels deep; "
            "a rules export has 3 (document, rules, rule)."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RuleImportError(f"Not a JSON file: {exc}") from None
    if isinstance(doc, dict):
        if doc.get("format") not in (EXPORT_FORMAT, None):
            raise RuleImportError(f"Unknown format {doc.get('format')!r}; expected {EXPORT_FORMAT!r}.")
        version = doc.get("version", EXPORT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise RuleImportError(f"Unknown version {version!r}; expected a number.")
        if version > EXPORT_VERSION:
            raise RuleImportError("This file was written by a newer bouncemgr; upgrade first.")
        rules = doc.get("rules")
    else:
        rules = doc
    if not isinstance(rules, list):
        raise RuleImportError("Expected a list of rules.")
    return rules


@transaction.atomic
def import_rules(*, rules: list[dict[str, Any]], replace: bool = False) -> ImportReport:
    """Create the given rules; all or nothing.

    A rule identical to one already present (same pattern, type, section, case, bounce
    type, action) is skipped, so importing the same file twice adds nothing. Rules keep
    their file positions when they have one (they are tried among the existing rules by
    position); without one they go to the default place of their type. ``replace`` deletes
    every existing rule first.
    """
    built = [_rule_from_data(data, index) for index, data in enumerate(rules, start=1)]
    report = ImportReport()
    if replace:
        report.deleted, _ = BounceRule.objects.all().delete()
    existing = {_identity(r.__dict__) for r in BounceRule.objects.all()}
    for rule, data in zip(built, rules, strict=True):
        ident = _identity(rule.__dict__)
        if ident in existing:
            report.skipped += 1
            continue
        if "position" in data:
            rule.save()
        else:
            place_rule(rule=rule)
        existing.add(ident)
        report.created += 1
    return report


# --- Starter set --------------------------------------------------------------------------------


@dataclass
class StarterReport:
    """What loading the starter set did."""

    created: int = 0
    already_loaded: int = 0


@transaction.atomic
def load_starter_rules(*, path: Path | None = None, restore: bool = False) -> StarterReport:
    """Load the starter rules that were never loaded here (idempotent).

    Each starter rule has a key; once loaded, the key is recorded, so running this again
    (every `make run` does) creates nothing, and a starter rule an operator deleted stays
    deleted. ``restore`` brings back starter rules whose rule was deleted.
    """
    data = json.loads(Path(path or STARTER_RULES_PATH).read_text(encoding="utf-8"))
    report = StarterReport()
    records = {r.key: r for r in StarterRuleRecord.objects.select_for_update()}
    for index, item in enumerate(data["rules"], start=1):
        key = item["key"]
        record = records.get(key)
        if record is not None and (record.rule_id is not None or not restore):
            report.already_loaded += 1
            continue
        values = {k: v for k, v in item.items() if k != "key"}
        rule = _rule_from_data(values, index)
        rule.save()
        if record is None:
            StarterRuleRecord.objects.create(key=key, rule=rule)
        else:
            record.rule = rule
            record.save(update_fields=["rule"])
        report.created += 1
    return report


# --- Re-applying rules to stored bounces ----------------------------------------------------------


@dataclass(frozen=True)
class BounceChange:
    """What re-applying the rules would change on one stored bounce."""

    bounce_id: int
    recipient: str
    rule_id: int | None
    rule_name: str
    matched_text: str
    changes: tuple[tuple[str, str, str], ...]  # (field, old, new)


@dataclass
class ReapplyPlan:
    """The changes re-applying the rules would make, bounce by bounce."""

    examined: int
    limit: int
    changes: list[BounceChange]
    scope: str


def plan_reapply(*, limit: int | None = None, only_unexplained: bool = False,
                 ruleset: RuleSet | None = None, bounce_ids: list[int] | None = None) -> ReapplyPlan:
    """Compute, without writing, what the current rules would change on stored bounces.

    The most recent ``limit`` bounces are examined (only those of kind unknown with no rule
    if ``only_unexplained``; only ``bounce_ids`` when given). For each, the first matching rule decides the rule, the kind
    ("either" keeps the engine's verdict), the reason (when the rule sets one) and the state
    (an "ignore" rule marks it not-a-bounce). A bounce that no rule matches any more goes
    back to the engine's verdict, re-read from its stored message.
    """
    limit = limit or DEFAULT_SAMPLE
    ruleset = ruleset if ruleset is not None else load_ruleset()
    needs_raw = any(rule.section != "diagnostic" for rule in ruleset.rules)
    changes: list[BounceChange] = []
    policies: dict[int | None, Any] = {}
    examined = 0
    for stored in iter_stored_bounces(limit=limit, only_unexplained=only_unexplained, with_raw=needs_raw,
                                      with_raw_if_ruled=True, bounce_ids=bounce_ids):
        examined += 1
        bounce = stored.bounce
        match = ruleset.first_match(message=stored.view)
        current_rule = bounce.matched_rule_id
        new_rule = match.rule_id if match else None
        if match is None and current_rule is None:
            continue
        engine_kind, engine_reason = bounce.kind, bounce.reason
        if current_rule is not None:
            # The stored kind/reason may be the old rule's; the engine's own verdict is re-read.
            engine_kind, engine_reason = stored.engine_verdict()
        new_kind, new_reason, ignored = final_verdict(
            match=match, engine_kind=engine_kind, engine_reason=engine_reason,
            mailbox_id=bounce.mailbox_id, policies=policies,
        )
        new_state = bounce.state
        if ignored:
            new_state = "ignored"
        elif bounce.state == "ignored":
            new_state = "recorded"  # it was ignored by a rule; its actions were never applied
        diffs = []
        if str(current_rule or "") != str(new_rule or ""):
            diffs.append(("matched_rule", str(current_rule or ""), str(new_rule or "")))
        if bounce.kind != new_kind:
            diffs.append(("kind", bounce.kind, new_kind))
        if bounce.reason != new_reason:
            diffs.append(("reason", bounce.reason, new_reason))
        if bounce.state != new_state:
            diffs.append(("state", bounce.state, new_state))
        if diffs:
            changes.append(
                BounceChange(
                    bounce_id=bounce.pk,
                    recipient=bounce.recipient,
                    rule_id=new_rule,
                    rule_name=match.rule_name if match else "",
                    matched_text=match.matched_text if match else "",
                    changes=tuple(diffs),
                )
            )
    scope = f"{'unexplained bounces' if only_unexplained else 'bounces'}, most recent {limit}"
    if bounce_ids is not None:
        scope = f"{len(bounce_ids)} selected bounces"
    return ReapplyPlan(examined=examined, limit=limit, changes=changes, scope=scope)


_FIELD_COLUMNS = {"kind": "kind", "reason": "reason", "state": "state", "matched_rule": "matched_rule_id"}


def _to_column(field_name: str, value: str) -> Any:
    if field_name == "matched_rule":
        return int(value) if value else None
    return value


@transaction.atomic
def apply_reapply(*, plan: ReapplyPlan, actor: Any = None, actor_label: str = "") -> RuleReapply:
    """Write ``plan`` and keep one `BounceRuleChange` per changed field, so it can be undone.

    A bounce that changed since the plan was made (a field no longer holds the planned old
    value) is left alone. Contact actions are not replayed: they belong to processing.
    """
    batch = RuleReapply.objects.create(
        actor=actor if getattr(actor, "pk", None) else None, actor_label=actor_label,
        scope=plan.scope, examined=plan.examined,
    )
    existing_rules = set(BounceRule.objects.values_list("pk", flat=True))
    bounces = Bounce.objects.select_for_update().in_bulk([c.bounce_id for c in plan.changes])
    audit: list[BounceRuleChange] = []
    changed = 0
    for change in plan.changes:
        bounce = bounces.get(change.bounce_id)
        if bounce is None:
            continue
        if any(str(getattr(bounce, _FIELD_COLUMNS[f]) or "") != old for f, old, _new in change.changes):
            continue  # changed meanwhile: do not overwrite someone else's decision
        rule_id = change.rule_id if change.rule_id in existing_rules else None
        if change.rule_id is not None and rule_id is None:
            continue  # the rule was deleted since the preview
        update_fields = []
        for field_name, old, new in change.changes:
            setattr(bounce, _FIELD_COLUMNS[field_name], _to_column(field_name, new))
            update_fields.append(_FIELD_COLUMNS[field_name])
            audit.append(
                BounceRuleChange(
                    reapply=batch, bounce=bounce, rule_id=rule_id, field=field_name,
                    old_value=old, new_value=new,
                )
            )
        bounce.save(update_fields=update_fields)
        changed += 1
    BounceRuleChange.objects.bulk_create(audit)
    batch.changed = changed
    batch.save(update_fields=["changed"])
    return batch


@dataclass
class UndoReport:
    """What undoing a re-apply did."""

    restored: int = 0  # fields set back
    conflicts: int = 0  # fields changed again since, left as they are


@transaction.atomic
def undo_reapply(*, reapply: RuleReapply, actor: Any = None) -> UndoReport:
    """Set every field the re-apply changed back to its old value, unless it changed again
    since (then it is left and counted as a conflict). Undoing twice does nothing."""
    reapply = RuleReapply.objects.select_for_update().get(pk=reapply.pk)
    report = UndoReport()
    if reapply.undone_at is not None:
        return report
    pending = list(reapply.changes.filter(undone_at__isnull=True))
    bounces = Bounce.objects.select_for_update().in_bulk({c.bounce_id for c in pending})
    existing_rules = set(BounceRule.objects.values_list("pk", flat=True))
    now = timezone.now()
    touched: dict[int, set[str]] = {}
    for change in pending:
        bounce = bounces.get(change.bounce_id)
        column = _FIELD_COLUMNS[change.field]
        if bounce is None or str(getattr(bounce, column) or "") != change.new_value:
            report.conflicts += 1
            continue
        old = _to_column(change.field, change.old_value)
        if change.field == "matched_rule" and old is not None and old not in existing_rules:
            old = None  # the old rule has been deleted since
        setattr(bounce, column, old)
        touched.setdefault(bounce.pk, set()).add(column)
        change.undone_at = now
        report.restored += 1
    for pk, columns in touched.items():
        bounces[pk].save(update_fields=sorted(columns))
    BounceRuleChange.objects.bulk_update([c for c in pending if c.undone_at], ["undone_at"])
    reapply.undone_at = now
    reapply.undone_by = actor if getattr(actor, "pk", None) else None
    reapply.save(update_fields=["undone_at", "undone_by"])
    return report
