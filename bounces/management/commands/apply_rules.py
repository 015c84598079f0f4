"""Re-apply the current rules to stored bounces (preview by default), or undo a re-apply.
An interface: calls the rules' services and selectors."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bounces.rules.models import RuleReapply
from bounces.rules.selectors import DEFAULT_SAMPLE
from bounces.rules.services import apply_reapply, plan_reapply, undo_reapply


class Command(BaseCommand):
    help = (
        "Re-apply the enabled rules to the most recent stored bounces. Without --apply it only "
        "shows what would change. --undo ID reverts an earlier re-apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=DEFAULT_SAMPLE, help="Most recent N bounces.")
        parser.add_argument("--only-unexplained", action="store_true", help="Only unknown bounces with no rule.")
        parser.add_argument("--apply", action="store_true", help="Write the changes (audited, undoable).")
        parser.add_argument("--undo", type=int, metavar="ID", help="Undo re-apply ID.")

    def handle(self, *args: Any, limit: int, only_unexplained: bool, apply: bool, undo: int | None,
               **options: Any) -> None:
        if undo is not None:
            try:
                batch = RuleReapply.objects.get(pk=undo)
            except RuleReapply.DoesNotExist:
                raise CommandError(f"No re-apply #{undo}.") from None
            report = undo_reapply(reapply=batch)
            self.stdout.write(f"Re-apply #{undo} undone: {report.restored} fields restored, {report.conflicts} conflicts left.")
            return
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        plan = plan_reapply(limit=limit, only_unexplained=only_unexplained)
        for change in plan.changes[:50]:
            diffs = ", ".join(f"{f}: {old or '-'} -> {new or '-'}" for f, old, new in change.changes)
            self.stdout.write(f"bounce {change.bounce_id} {change.recipient}: {diffs}")
        if len(plan.changes) > 50:
            self.stdout.write(f"... and {len(plan.changes) - 50} more")
        self.stdout.write(f"{plan.examined} bounces examined, {len(plan.changes)} would change.")
        if apply and plan.changes:
            batch = apply_reapply(plan=plan, actor_label="manage.py apply_rules")
            self.stdout.write(f"Applied as re-apply #{batch.pk}: {batch.changed} bounces changed (undo: --undo {batch.pk}).")
        elif plan.changes:
            self.stdout.write("Nothing written; add --apply to write these changes.")
