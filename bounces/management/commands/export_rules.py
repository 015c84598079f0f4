"""Write bounce rules as JSON (to a file or standard output). An interface: calls the rules' services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bounces.rules.models import BounceRule
from bounces.rules.services import export_rules_json


class Command(BaseCommand):
    help = "Export bounce rules as JSON (all, in order; --enabled-only for the active ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", nargs="?", type=Path, help="File to write (default: standard output).")
        parser.add_argument("--enabled-only", action="store_true")

    def handle(self, *args: Any, output: Path | None, enabled_only: bool, **options: Any) -> None:
        rules = BounceRule.objects.order_by("position", "id")
        if enabled_only:
            rules = rules.filter(enabled=True)
        text = export_rules_json(rules=rules)
        if output is None:
            self.stdout.write(text, ending="")
        else:
            output.write_text(text, encoding="utf-8")
            self.stderr.write(f"{rules.count()} rules written to {output}")
