"""Read bounce rules from a JSON file written by export_rules (all or nothing).
An interface: calls the rules' services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bounces.rules.services import RuleImportError, import_rules, parse_import


class Command(BaseCommand):
    help = (
        "Import bounce rules from a JSON file. Rules identical to existing ones are skipped; "
        "nothing is imported if any rule is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", type=Path, help="JSON file ('-' reads standard input).")
        parser.add_argument("--replace", action="store_true", help="Delete all existing rules first.")

    def handle(self, *args: Any, input: Path, replace: bool, **options: Any) -> None:
        try:
            if str(input) == "-":
                import sys

                text = sys.stdin.read()
            else:
                text = input.read_text(encoding="utf-8")
            report = import_rules(rules=parse_import(text), replace=replace)
        except (OSError, RuleImportError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{report.created} rules imported, {report.skipped} already present"
            + (f", {report.deleted} deleted first." if replace else ".")
        )
