"""Hand stored messages to the pipeline: the processor with the operator's rules plugged in, and
processing what is stored but not yet processed. Imports the pipeline, rules and models."""

from __future__ import annotations

from django.utils import timezone

from bounces.models import Mailbox, ProcessingRun, RawMessage
from bounces.pipeline import policies
from bounces.pipeline.policies import Policy
from bounces.pipeline.processing import Processor
from bounces.pipeline.runs import add_counts, chunked, create_run, save_run
from bounces.rules.selectors import load_ruleset
from bounces.rules.services import record_rule_hits
from campaigns.guardrails import note_recorded_bounces

from .items import notice_items

MAX_ATTEMPTS = 5


def new_processor(*, run: ProcessingRun | None, mailbox: Mailbox | None, policy: Policy,
                  actor_label: str = "") -> Processor:
    """A `Processor` with the enabled rules (none: the engine's verdict stands) and their hit counter."""
    ruleset = load_ruleset()
    return Processor(run=run, mailbox=mailbox, policy=policy, ruleset=ruleset if len(ruleset) else None,
                     record_hits=record_rule_hits, after_record=note_recorded_bounces, actor_label=actor_label)


def process_stored_messages(*, mailbox: Mailbox | None = None, run: ProcessingRun | None = None,
                            batch_size: int = 500, limit: int | None = None) -> ProcessingRun:
    """Process stored rows that are new or failed (no server involved; no disposition).

    Safe to run concurrently with anything: rows are claimed per batch.
    """
    run = run or create_run(mailbox=mailbox, trigger=ProcessingRun.Trigger.REPROCESS)
    run.status = ProcessingRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    processor = new_processor(run=run, mailbox=mailbox, policy=policies.effective_policy(mailbox))
    qs = RawMessage.objects.filter(state__in=[RawMessage.State.NEW, RawMessage.State.FAILED],
                                   attempts__lt=MAX_ATTEMPTS)
    if mailbox is not None:
        qs = qs.filter(mailbox=mailbox)
    ids = list(qs.order_by("id").values_list("id", flat=True)[:limit])
    for chunk in chunked(ids, batch_size):
        rows = RawMessage.objects.filter(id__in=chunk).values_list("id", "raw")
        items = notice_items(processor, rows)  # mail and structured notices alike
        try:
            outcome = processor.process(items)
        except Exception as exc:
            processor.mark_failed(chunk, f"{type(exc).__name__}: {exc}")
            run.errors += 1
            continue
        add_counts(run, outcome.counts)
        run.processed += len(outcome.processed_ids)
    run.status = ProcessingRun.Status.PARTIAL if run.errors else ProcessingRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    save_run(run, "status", "finished_at")
    return run
