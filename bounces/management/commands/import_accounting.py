"""manage.py import_accounting FILE...: PowerMTA CSV accounting and Postfix / Exim logs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bounces.intake.accounting import import_accounting_file
from bounces.models import ProcessingRun
from bounces.pipeline.runs import create_run, save_run


class Command(BaseCommand):
    help = ("Import bounce records from PowerMTA CSV accounting files (b, rb, f records) or Postfix / Exim "
            "logs (permanent failures), from where the last import of each file stopped. A record is "
            "stored and counted once, however often it is read.")

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument("--no-process", action="store_true", help="store only (the beat sweep processes)")

    def handle(self, *args, files, no_process, **opts):
        run = create_run(mailbox=None, trigger=ProcessingRun.Trigger.COMMAND)
        run.status = ProcessingRun.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
        failed = False
        for path in files:
            try:
                report = import_accounting_file(path=path, run=run, process=not no_process)
            except OSError as exc:
                failed = True
                self.stderr.write(f"{path}: {exc.strerror or exc}")
                run.errors += 1
                continue
            self.stdout.write(
                f"{path}: {report.records} records read, {report.notices} bounce records, {report.stored} new, "
                f"{report.duplicates} already stored"
            )
        run.status = ProcessingRun.Status.PARTIAL if run.errors else ProcessingRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        save_run(run, "status", "finished_at")
        self.stdout.write(f"run #{run.pk}: {run.summary()}")
        if failed:
            raise CommandError("some files could not be read")
