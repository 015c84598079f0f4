"""Bounce sources, settings, stored messages, bounces and processing runs. Imports other apps'
models and the rules' models (so Django registers them, app_label "bounces"); never services."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from bouncemgr.fields import EncryptedTextField
from bounces.mailboxes.base import endpoint_fingerprint
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, TimeStamped

from .incidents.models import Alert, Incident, IncidentCount  # noqa: F401  (incidents' own package)
from .rules.models import BounceRule  # noqa: F401  (rules live in their own package)


class Disposition(models.TextChoices):
    """What happens to a message in the mailbox once its result is committed."""

    DELETE = "delete", "Delete"
    MARK_READ = "mark_read", "Mark read and leave"
    MOVE = "move", "Move to folder"
    LEAVE = "leave", "Leave untouched"


class HardAction(models.TextChoices):
    """What a hard bounce (or a soft bounce reaching its threshold) does to the contact."""

    UNSUBSCRIBE_SUPPRESS = "unsubscribe_suppress", "Unsubscribe and suppress the address (default)"
    UNCONFIRM = "unconfirm", "Unconfirm the contact"
    BLACKLIST_CONTACT = "blacklist_contact", "Blacklist the contact"
    BLACKLIST_ADDRESS = "blacklist_address", "Blacklist the address"
    DELETE_CONTACT = "delete_contact", "Delete the contact"
    REMOVE_ADDRESS = "remove_address", "Remove the address, keep it as 'bounced address'"
    NOTHING = "nothing", "Only record and count"


class SoftPolicy(models.TextChoices):
    """How soft bounces add up to a hard one."""

    CONSECUTIVE = "consecutive", "Consecutive bounces (phpList)"
    WINDOW = "window", "N soft bounces within D days"
    SCORE = "score", "Decaying score, at most once a day (Mailman 3)"


class ComplaintAction(models.TextChoices):
    UNSUBSCRIBE_SUPPRESS = "unsubscribe_suppress", "Unsubscribe and suppress at once (default)"
    BLACKLIST_CONTACT = "blacklist_contact", "Blacklist the contact and suppress the address"
    NOTHING = "nothing", "Only record"


def default_hard_actions() -> list[str]:
    """Octeth's three steps: mark, unsubscribe from every list, suppress (issue 11)."""
    return ["mark_hard", "unsubscribe_all", "suppress"]


def default_complaint_actions() -> list[str]:
    """A complaint means "stop mailing me": unsubscribe from every list and suppress."""
    return ["unsubscribe_all", "suppress"]


class BounceSettings(TimeStamped):
    """The global bounce-handling settings: one row (pk=1), edited in the admin.

    Each kind's policy: hard bounces (and soft ones reaching the threshold) and complaints
    carry a set of contact actions (contacts.services.Action); soft bounces only count
    towards the threshold; blocked, delays, auto-replies and unknown messages never act on
    a contact. A rule that only says what a bounce is gets its kind's policy. Mailboxes may
    override the hard policy and the soft policy. Read it with `BounceSettings.load()`.
    """

    hard_actions = models.JSONField(
        default=default_hard_actions, blank=True,
        help_text="What a hard bounce (or a soft one reaching the threshold) does to the contact. "
                  "Default: mark it hard-bounced, unsubscribe it from all lists and suppress the address, "
                  "so no campaign mails it again. Leaving out 'suppress' and the unsubscriptions means "
                  "dead addresses keep being mailed.",
    )
    soft_policy = models.CharField(max_length=12, choices=SoftPolicy.choices, default=SoftPolicy.CONSECUTIVE)
    soft_threshold = models.PositiveIntegerField(
        default=5, help_text="Soft bounces (or score) after which the contact is treated as hard-bounced "
                             "(the hard actions run once). Below it a soft bounce only counts."
    )
    soft_window_days = models.PositiveIntegerField(
        default=30, help_text="Window policy: count soft bounces within this many days (of bounce time)."
    )
    score_stale_days = models.PositiveIntegerField(
        default=7, help_text="Score policy: a score older than this starts again from 1 (Mailman 3)."
    )
    soft_blacklist_threshold = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="A second, higher threshold that blacklists the address (empty: never).",
    )
    complaint_actions = models.JSONField(
        default=default_complaint_actions, blank=True,
        help_text="What a complaint (ARF feedback report) does. Default: unsubscribe from all lists and "
                  "suppress the address; the contact is not marked hard-bounced.",
    )
    hard_suppression_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="A hard bounce's suppression lapses after this many days "
                                         "(empty: never, the default).",
    )
    soft_suppression_days = models.PositiveIntegerField(
        null=True, blank=True, default=90,
        help_text="A suppression made by soft bounces (threshold reached) lapses after this many days "
                  "(empty: never). A later delivery to the address lifts it at once.",
    )
    blocked_suppression_days = models.PositiveIntegerField(
        null=True, blank=True, default=30,
        help_text="A suppression a rule makes for a blocked bounce lapses after this many days (empty: never). "
                  "Blocked bounces never act on a contact unless a rule says so.",
    )

    class Meta:
        verbose_name = "bounce settings"
        verbose_name_plural = "bounce settings"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="bouncesettings_singleton"),
            models.CheckConstraint(condition=Q(soft_threshold__gte=1), name="bouncesettings_threshold_min"),
            models.CheckConstraint(
                condition=Q(soft_blacklist_threshold__isnull=True)
                | Q(soft_blacklist_threshold__gte=models.F("soft_threshold")),
                name="bouncesettings_blacklist_not_below",
                violation_error_message="The blacklist threshold cannot be lower than the soft-bounce threshold.",
            ),
        ]

    def __str__(self) -> str:
        return "Bounce settings"

    @classmethod
    def load(cls) -> BounceSettings:
        """The settings row, created with the defaults when missing."""
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Mailbox(TimeStamped):
    """A bounce source: a remote IMAP/POP3 mailbox or a local mbox/maildir."""

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        MBOX = "mbox", "Local mbox file"
        MAILDIR = "maildir", "Local maildir"

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS (implicit, ports 993/995)"
        STARTTLS = "starttls", "STARTTLS (ports 143/110)"
        NONE = "none", "None (plain text; only on trusted networks)"

    class Auth(models.TextChoices):
        PASSWORD = "password", "Password"
        XOAUTH2 = "xoauth2", "OAuth2 (XOAUTH2: Gmail, Office 365)"

    class FetchMode(models.TextChoices):
        UNSEEN = "unseen", "Unseen messages"
        ALL = "all", "All messages"

    name = models.CharField(max_length=100, unique=True)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.IMAP)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the protocol's default.")
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.SSL)
    verify_certificate = models.BooleanField(
        default=True, help_text="Turn off only for a server with a self-signed certificate you trust."
    )
    ca_pem = models.TextField(
        blank=True, verbose_name="CA certificate (PEM)",
        help_text="Trust this private CA for the server's certificate (better than turning verification off).",
    )
    auth = models.CharField(max_length=8, choices=Auth.choices, default=Auth.PASSWORD)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown back.")
    oauth2_token_url = models.URLField(blank=True)
    oauth2_client_id = models.CharField(max_length=255, blank=True)
    oauth2_client_secret = EncryptedTextField(blank=True)
    oauth2_refresh_token = EncryptedTextField(blank=True)
    oauth2_scope = models.CharField(max_length=500, blank=True)
    path = models.CharField(
        max_length=500, blank=True,
        help_text="mbox file or maildir folder, inside the allowed folders (LOCAL_MAILBOX_ROOTS); "
        "a relative path is taken inside the first of them.",
    )
    folder = models.CharField(max_length=500, default="INBOX")
    fetch_mode = models.CharField(max_length=8, choices=FetchMode.choices, default=FetchMode.UNSEEN)
    processed_action = models.CharField(
        max_length=10, choices=Disposition.choices, default=Disposition.DELETE
    )
    processed_folder = models.CharField(max_length=500, blank=True)
    unmatched_action = models.CharField(
        max_length=10, choices=Disposition.choices, default=Disposition.MARK_READ
    )
    unmatched_folder = models.CharField(max_length=500, blank=True)
    lists = models.ManyToManyField(
        MailingList, blank=True, related_name="mailboxes",
        help_text="Lists whose campaigns this mailbox serves; unmatched addresses are looked up there first.",
    )
    class Schedule(models.TextChoices):
        INTERVAL = "interval", "Every few minutes"
        DAILY = "daily", "Once a day, at a time of day"

    enabled = models.BooleanField(default=True)
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.INTERVAL)
    interval_minutes = models.PositiveIntegerField(default=10, help_text="With 'every few minutes'.")
    run_at = models.TimeField(
        null=True, blank=True, verbose_name="time of day",
        help_text="With 'once a day': when the mailbox is read, in the server's time zone (TIME_ZONE).",
    )
    batch_size = models.PositiveIntegerField(default=200)
    max_messages_per_run = models.PositiveIntegerField(null=True, blank=True)
    # Per-mailbox overrides of BounceSettings (blank / empty: use the global setting).
    hard_action = models.CharField(
        max_length=20, blank=True, choices=[("", "Global setting"), *HardAction.choices],
        help_text="What a hard bounce does to the contact (empty: the global setting).",
    )
    soft_policy = models.CharField(
        max_length=12, blank=True, choices=[("", "Global setting"), *SoftPolicy.choices],
    )
    soft_threshold = models.PositiveIntegerField(null=True, blank=True)
    soft_window_days = models.PositiveIntegerField(null=True, blank=True)
    soft_blacklist_threshold = models.PositiveIntegerField(null=True, blank=True)
    uidvalidity = models.BigIntegerField(null=True, blank=True, editable=False)
    # The endpoint (see `endpoint_fingerprint`) the stored secrets were entered for: they
    # are only ever sent there (issue 12, item 4).
    secrets_fingerprint = models.CharField(max_length=80, blank=True, editable=False)
    # The per-mailbox run lock (a conditional UPDATE; works on SQLite and PostgreSQL). A
    # run holds it while `locked_until` is in the future and refreshes it every batch, so
    # a killed worker's lock expires by itself.
    lock_token = models.CharField(max_length=32, blank=True, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"
        # Running the poller now (the buttons, the API) is its own right: an operator may
        # process mailboxes without being allowed to repoint them (issue 15, part 3).
        permissions = [("process_mailbox", "Can process mailboxes now")]
        constraints = [
            models.CheckConstraint(
                condition=Q(port__isnull=True) | Q(port__gte=1, port__lte=65535),
                name="mailbox_port_range",
            ),
            models.CheckConstraint(condition=Q(interval_minutes__gte=1), name="mailbox_interval_min"),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="mailbox_batch_min"),
            models.CheckConstraint(condition=Q(schedule="interval") | Q(run_at__isnull=False),
                                   name="mailbox_daily_has_time"),
        ]

    def __str__(self) -> str:
        return self.name

    def next_run(self, *, now: datetime.datetime, last_scheduled_run: datetime.datetime | None = None
                 ) -> datetime.datetime | None:
        """When the schedule reads this mailbox next (None when disabled).

        Once a day: the next `run_at` in the current time zone. Every few minutes: the last
        scheduled run (the beat entry's, else the mailbox's last run) plus the interval; never
        before `now` (a run that is due happens at the beat's next tick)."""
        if not self.enabled:
            return None
        if self.schedule == self.Schedule.DAILY and self.run_at is not None:
            local_now = timezone.localtime(now)
            candidate = timezone.make_aware(datetime.datetime.combine(local_now.date(), self.run_at))
            if candidate <= local_now:
                candidate = timezone.make_aware(
                    datetime.datetime.combine(local_now.date() + datetime.timedelta(days=1), self.run_at))
            return candidate
        base = last_scheduled_run or self.last_run_at
        if base is None:
            return now
        return max(base + datetime.timedelta(minutes=self.interval_minutes), now)

    # ------------------------------------------------------------------ bound secrets
    SECRET_FIELDS = ("password", "oauth2_client_secret", "oauth2_refresh_token")

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # The secrets as loaded: a value different at save() time was entered anew.
        instance._loaded_secrets = {
            name: instance.__dict__[name] for name in cls.SECRET_FIELDS if name in instance.__dict__
        }
        return instance

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        loaded = getattr(self, "_loaded_secrets", {})
        for name in self.SECRET_FIELDS:
            if (fields is None or name in fields) and name in self.__dict__:
                loaded[name] = self.__dict__[name]
        self._loaded_secrets = loaded

    def endpoint_fingerprint(self) -> str:
        """Where this mailbox's secrets would be sent (host, port, TLS, user, token URL...)."""
        return endpoint_fingerprint(
            protocol=self.protocol, host=self.host, port=self.port, security=self.security,
            verify_certificate=self.verify_certificate, ca_pem=self.ca_pem or "",
            username=self.username, token_url=self.oauth2_token_url or "",
            client_id=self.oauth2_client_id or "",
        )

    def secrets_bound(self) -> bool:
        """True when the stored secrets were entered for the current endpoint."""
        return bool(self.secrets_fingerprint) and self.secrets_fingerprint == self.endpoint_fingerprint()

    def enter_secrets(self, **values: str) -> None:
        """Set secrets as the operator entered them, for the current endpoint.

        Entering the same value again counts (the form calls this for every secret field
        that was filled in); assigning the attribute directly counts only when it changes.
        """
        for name, value in values.items():
            if name not in self.SECRET_FIELDS:
                raise ValueError(f"{name} is not a secret field")
            setattr(self, name, value)
        self._entered_secrets = {*getattr(self, "_entered_secrets", set()), *values}

    def _entered(self) -> set[str]:
        loaded = getattr(self, "_loaded_secrets", None)
        entered = set(getattr(self, "_entered_secrets", set()))
        for name in self.SECRET_FIELDS:
            if name not in self.__dict__:
                continue  # deferred: not touched
            value = self.__dict__[name] or ""
            if loaded is None:
                if value:
                    entered.add(name)  # a new row (or one built by hand)
            elif value != (loaded.get(name) or ""):
                entered.add(name)
        return entered

    def save(self, *args, **kwargs) -> None:
        # Binding secrets to their endpoint is an invariant of the row, kept here so that
        # every writer (admin, API, shell, fixtures) keeps it: secrets entered with this
        # save are bound to the current endpoint, and when that endpoint differs from the
        # one the old secrets were bound to, the secrets not entered again are dropped
        # (else an unused OAuth2 secret would silently follow the password to a new host).
        entered = self._entered()
        if entered:
            current = self.endpoint_fingerprint()
            changed = {"secrets_fingerprint"} | entered
            if self.secrets_fingerprint and self.secrets_fingerprint != current:
                for name in self.SECRET_FIELDS:
                    if name not in entered and name in self.__dict__ and self.__dict__[name]:
                        setattr(self, name, "")
                        changed.add(name)
            self.secrets_fingerprint = current
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, *changed}
        super().save(*args, **kwargs)
        self._loaded_secrets = {
            name: self.__dict__[name] for name in self.SECRET_FIELDS if name in self.__dict__
        }
        self._entered_secrets = set()


class ProcessingRun(models.Model):
    """One processing of one mailbox (or of stored messages), with its counts and errors."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Admin button"
        COMMAND = "command", "Management command"
        SEND = "send", "Send-time refusal"
        REPROCESS = "reprocess", "Reprocessing"
        INTAKE = "intake", "Intake (received, pushed)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another run was in progress)"

    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    hard = models.PositiveIntegerField(default=0)
    soft = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    complaint = models.PositiveIntegerField(default=0)
    autoreply = models.PositiveIntegerField(default=0)
    delay = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Messages found to fetch (for progress).")
    processed = models.PositiveIntegerField(default=0, help_text="Messages stored and processed so far.")
    # A run over stored messages is split into chunks, each a Celery task of its own
    # (bounces.intake.chunks); 0 for a mailbox run. chunks_done is counted once per chunk.
    chunks_total = models.PositiveIntegerField(default=0, db_default=0)
    chunks_done = models.PositiveIntegerField(default=0, db_default=0)
    error_log = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # mailbox page: its latest runs
            models.Index(fields=["mailbox", "-created_at"], name="run_mailbox_idx"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.status})"

    def summary(self) -> str:
        """The line operators see when a run ends."""
        return (
            f"{self.hard} hard, {self.soft} soft, {self.complaint} complaints, "
            f"{self.autoreply} auto-replies, {self.unknown} unknown, {self.unmatched} unmatched"
            f" ({self.blocked} blocked, {self.delay} delays, {self.duplicates} duplicates,"
            f" {self.errors} errors)"
        )

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL, self.Status.FAILED,
                               self.Status.SKIPPED)


class RunChunk(models.Model):
    """One chunk of a run over stored messages: the row ids one Celery task processes
    (bounces.intake.chunks). Its state moves to done once; that is when the run counts it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ABANDONED = "abandoned", "Abandoned (its run had ended)"

    run = models.ForeignKey(ProcessingRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    ids = models.JSONField(default=list, help_text="The stored messages (RawMessage ids) of this chunk.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    worker = models.CharField(max_length=64, blank=True, help_text="host:pid of the last process that ran it.")
    attempts = models.PositiveSmallIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0, help_text="Rows this chunk's batches claimed.")
    errors = models.PositiveIntegerField(default=0)
    error_log = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="runchunk_run_number_unique")]
        # the run's chunks (progress, finishing, the sweep's busy rows): by the unique (run, number)

    def __str__(self) -> str:
        return f"chunk {self.number} of run #{self.run_id} ({self.state})"


class RawMessage(models.Model):
    """The raw bytes of one message taken from a bounce source, stored before anything else.

    `dedupe_key` identifies the message in its source (IMAP: "<uidvalidity>:<uid>"; POP3:
    the UIDL; local: the maildir key or a hash of the bytes), unique per mailbox, so a
    message fetched twice is stored and counted once. Processing claims a row with a
    conditional UPDATE on `state`.
    """

    class State(models.TextChoices):
        NEW = "new", "New"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (retryable)"

    class Source(models.TextChoices):
        MAILBOX = "mailbox", "Mailbox"
        SMTP = "smtp", "SMTP refusal at send time"
        UPLOAD = "upload", "Uploaded"
        WEBHOOK = "webhook", "ESP webhook"
        RECEIVER = "smtpd", "SMTP receiver"
        MTA_LOG = "mta_log", "MTA accounting / log"

    # indexed by rawmessage_dedupe_unique (mailbox, dedupe_key)
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="raw_messages", db_index=False
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MAILBOX)
    dedupe_key = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    class Outcome(models.TextChoices):
        PENDING = "", "Not processed yet"
        MATCHED = "matched", "Matched"
        UNMATCHED = "unmatched", "Unmatched / unexplained"
        IGNORED = "ignored", "Not a bounce"

    disposed = models.BooleanField(default=False, help_text="Disposition applied in the mailbox.")
    # The verdict the disposition needs (processed vs unmatched action; a rule may ask for
    # deletion). Stored with the results so a re-run disposes without parsing again.
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default="", blank=True)
    delete_requested = models.BooleanField(default=False)
    # What a rule asked for besides deletion ("mark_read", "leave", "move:<folder>"; "" = the
    # mailbox's setting). Read by pipeline.dispositions.dispose.
    requested_disposition = models.CharField(max_length=210, blank=True, default="", db_default="")
    # The run's claim on the row (conditional UPDATE ... WHERE state IN (new, failed)).
    claim = models.CharField(max_length=32, blank=True)
    run = models.ForeignKey(
        ProcessingRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="raw_messages"
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "dedupe_key"], name="rawmessage_dedupe_unique"),
            # messages that never had a mailbox (send-time refusals, uploads, webhooks):
            # NULLs are distinct in the constraint above. Rows of a deleted mailbox (source
            # "mailbox", mailbox set to NULL) are left out: their keys may repeat.
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=Q(mailbox__isnull=True) & ~Q(source="mailbox"),
                name="rawmessage_dedupe_nomailbox_unique",
            ),
        ]
        indexes = [
            # the processing queue: messages still to parse
            models.Index(fields=["state", "received_at"], name="rawmessage_state_idx"),
        ]

    def __str__(self) -> str:
        return f"raw #{self.pk} {self.dedupe_key}"


class Bounce(models.Model):
    """One bounced recipient of one message, with the verdict and the actions taken."""

    class Kind(models.TextChoices):
        HARD = "hard", "Hard"
        SOFT = "soft", "Soft"
        BLOCKED = "blocked", "Blocked (our problem)"
        COMPLAINT = "complaint", "Complaint"
        AUTOREPLY = "autoreply", "Auto-reply"
        DELAY = "delay", "Delay"
        UNKNOWN = "unknown", "Unknown"

    class MatchMethod(models.TextChoices):
        TOKEN = "token", "VERP token"
        HEADER = "header", "Tracking header"
        MESSAGE_ID = "message_id", "Message-ID"
        ADDRESS = "address", "Recipient address"
        MANUAL = "manual", "Assigned by an operator"
        NONE = "none", "Unmatched"

    class State(models.TextChoices):
        APPLIED = "applied", "Actions applied"
        RECORDED = "recorded", "Recorded, not counted"
        UNMATCHED = "unmatched", "Unmatched / unexplained"
        IGNORED = "ignored", "Not a bounce"
        RESOLVED = "resolved", "Resolved by an operator"
        HELD = "held", "Held by an open incident"

    # FK indexes that a composite index already leads with are dropped (each index costs
    # on every one of thousands of inserts per run): raw_message by bounce_dedupe_unique,
    # contact by bounce_contact_idx, campaign by bounce_campaign_kind_idx.
    raw_message = models.ForeignKey(
        RawMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="bounces", db_index=False
    )
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces"
    )
    sent_message = models.ForeignKey(
        SentMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces"
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces", db_index=False
    )
    run = models.ForeignKey(
        ProcessingRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces"
    )
    recipient = models.CharField(max_length=254, blank=True, help_text="The address at the time of the bounce.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.UNKNOWN)
    reason = models.CharField(max_length=32, blank=True)
    status_code = models.CharField(max_length=16, blank=True)
    reply_code = models.CharField(max_length=3, blank=True)
    diagnostic = models.TextField(blank=True)
    remote_mta = models.CharField(max_length=255, blank=True)
    permanent = models.BooleanField(null=True)
    address_bad = models.BooleanField(null=True, help_text="The address itself is bad (hard).")
    matched_rule = models.ForeignKey(
        BounceRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces"
    )
    match_method = models.CharField(max_length=10, choices=MatchMethod.choices, default=MatchMethod.NONE)
    actions_taken = models.JSONField(default=list, blank=True)
    counted = models.BooleanField(
        default=False, help_text="Counted against the contact (hard, or soft under the policy)."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.APPLIED)
    # set while held by an incident, and kept after it is resolved (issue 14)
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="bounces", db_index=False
    )
    bounced_at = models.DateTimeField(help_text="When the bounce arrived (or the refusal happened).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-bounced_at"]
        constraints = [
            # idempotency: one row per recipient per stored message
            models.UniqueConstraint(fields=["raw_message", "recipient"], name="bounce_dedupe_unique"),
        ]
        indexes = [
            # campaign results: counts by kind, bounces over time
            models.Index(fields=["campaign", "kind", "bounced_at"], name="bounce_campaign_kind_idx"),
            # contact page: bounce history
            models.Index(fields=["contact", "-bounced_at"], name="bounce_contact_idx"),
            # unexplained queue and global lists filtered by kind/state
            models.Index(fields=["state", "-bounced_at"], name="bounce_state_idx"),
            models.Index(fields=["kind", "-bounced_at"], name="bounce_kind_idx"),
            # an incident's bounces; partial, so the bounces of no incident cost no index entry
            models.Index(fields=["incident", "bounced_at"], condition=Q(incident__isnull=False),
                         name="bounce_incident_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.recipient or '(no recipient)'}"


# --------------------------------------------------------------------------- intake state
def token_digest(token: str) -> str:
    """What a presented token is looked up by (SHA-256 hex; the token itself is encrypted)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Integration(models.Model):
    """One system that pushes bounce records over HTTP (Logstash, Vector, a script).

    The token is shown on the integration's page (for the generated configuration) and
    stored encrypted; requests are authenticated by its digest, compared in constant time
    by the unique index look-up. Disabling the integration refuses its requests.
    """

    class Kind(models.TextChoices):
        POWERMTA = "powermta", "PowerMTA accounting (Logstash / Vector)"
        POSTFIX = "postfix", "Postfix / Exim log lines"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.POWERMTA)
    token = EncryptedTextField(editable=False)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    enabled = models.BooleanField(default=True)
    # The CSV header line last pushed (Logstash sends lines one at a time; the header
    # names the columns of the lines after it).
    csv_header = models.JSONField(default=list, blank=True, editable=False)
    records_received = models.PositiveBigIntegerField(default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_new_token(self) -> str:
        """Give the integration a fresh random token (the old one stops working)."""
        token = "bmi_" + secrets.token_urlsafe(32)
        self.token = token
        self.token_digest = token_digest(token)
        return token


class AccountingFile(models.Model):
    """How far `import_accounting` has read one file (identified by device and inode, so a
    rotated file that reuses the path starts from the beginning)."""

    path = models.CharField(max_length=1000)
    device = models.BigIntegerField()
    inode = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    header = models.JSONField(default=list, blank=True)
    records = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "inode", "path"], name="accountingfile_identity_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.path} @ {self.offset}"
