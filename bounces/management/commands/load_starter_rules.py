"""Load the starter bounce rules (idempotent: `make run` calls it on every start).
An interface: calls the rules' services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bounces.rules.services import STARTER_RULES_PATH, load_starter_rules


class Command(BaseCommand):
    help = (
        "Load the starter bounce rules. A starter rule is loaded once: running this again adds "
        "nothing, and a starter rule you deleted stays deleted (unless --restore)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=STARTER_RULES_PATH, help="Rules file (default: the shipped set).")
        parser.add_argument("--restore", action="store_true", help="Recreate starter rules that were deleted.")

    def handle(self, *args: Any, file: Path, restore: bool, **options: Any) -> None:
        report = load_starter_rules(path=file, restore=restore)
        self.stdout.write(
            f"Starter rules: {report.created} loaded, {report.already_loaded} already loaded before."
        )
