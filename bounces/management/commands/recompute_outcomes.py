"""Preview, then apply, what the current policies and rules change on contacts bounces already
touched (issue 11: after the upgrade to action sets, hard-bounced contacts that were only
marked get unsubscribed and suppressed).

    python manage.py recompute_outcomes            # preview: which contacts change, how
    python manage.py recompute_outcomes --apply    # carry it out (audited, never lifts anything)
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from bounces.pipeline.recompute import apply_outcome_recompute, plan_outcome_recompute


class Command(BaseCommand):
    help = "Preview (default) or apply what the current bounce policies change on already-bounced contacts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--apply", action="store_true", help="carry out the changes (default: preview only)")
        parser.add_argument("--show", type=int, default=50, help="contacts listed in the preview (default 50)")

    def handle(self, *args, **options) -> None:
        plan = plan_outcome_recompute()
        self.stdout.write(f"{plan.examined} contact(s) examined; {len(plan.changes)} would change.")
        for change in plan.changes[: options["show"]]:
            self.stdout.write(f"  {change.email or '#' + str(change.contact_id)} ({change.kind} bounce"
                              f"{' #' + str(change.bounce_id) if change.bounce_id else ''}): {change.words}")
        if len(plan.changes) > options["show"]:
            self.stdout.write(f"  ... and {len(plan.changes) - options['show']} more")
        if not options["apply"]:
            if plan.changes:
                self.stdout.write("Nothing changed. Run again with --apply to carry this out.")
            return
        changed = apply_outcome_recompute(plan=plan, actor_label="recompute_outcomes")
        self.stdout.write(self.style.SUCCESS(f"{changed} contact(s) changed."))
