"""Admin of the bounces app. An interface: buttons and saves call services (intake, pipeline);
imports models, checks, the mailbox views and the rules' admin.

BounceRuleAdmin lives in rules/admin.py (the rules feature); the mailbox connection views
(test connection, browse folders) in views/mailboxes.py.
"""

from __future__ import annotations

from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from contacts.services import ACTION_CHOICES

from .incidents.admin import IncidentAdmin  # noqa: F401  (registers the incidents' admin)
from .intake import integration_config, schedules
from .models import (
    AccountingFile,
    Bounce,
    BounceSettings,
    Integration,
    Mailbox,
    ProcessingRun,
    RawMessage,
    RunChunk,
)
from .pipeline import actions
from .pipeline.recompute import apply_outcome_recompute, plan_outcome_recompute
from .rules.admin import BounceRuleAdmin  # noqa: F401  (registers the rules admin)
from .views import mailboxes as mailbox_views
from .views.mailbox_form import PRESETS, MailboxForm, new_mailbox_initial

# Above this many contacts with soft bounces, a policy change is recomputed by a task.
RECOMPUTE_INLINE_MAX = 2000
POLICY_FIELDS = ("hard_actions", "soft_policy", "soft_threshold", "soft_window_days", "score_stale_days",
                 "soft_blacklist_threshold")

SECRET_FIELDS = Mailbox.SECRET_FIELDS


@method_decorator(sensitive_post_parameters(*SECRET_FIELDS), name="changeform_view")
@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = (
        "name", "protocol", "host", "folder", "enabled", "schedule_text", "next_run_text", "last_run_at",
        "last_success_at", "short_error",
    )
    list_filter = ("protocol", "enabled")
    search_fields = ("name", "host", "username")
    filter_horizontal = ("lists",)
    readonly_fields = ("uidvalidity", "last_run_at", "last_success_at", "last_error", "last_error_at",
                       "next_run_text")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "protocol", "lists")}),
        ("Server", {"fields": ("host", "port", "security", "verify_certificate", "ca_pem", "folder", "path")}),
        (
            "Login",
            {"fields": ("auth", "username", "password", "oauth2_token_url", "oauth2_client_id",
                        "oauth2_client_secret", "oauth2_refresh_token", "oauth2_scope")},
        ),
        ("Schedule", {"fields": ("schedule", "interval_minutes", "run_at", "next_run_text")}),
        (
            "Processing",
            {"fields": ("fetch_mode", "batch_size", "max_messages_per_run",
                        "processed_action", "processed_folder", "unmatched_action", "unmatched_folder")},
        ),
        (
            "Policy overrides (empty: the global bounce settings)",
            {"fields": ("hard_action", "soft_policy", "soft_threshold", "soft_window_days",
                        "soft_blacklist_threshold"), "classes": ("collapse",)},
        ),
        ("State", {"fields": ("uidvalidity", "last_run_at", "last_success_at", "last_error", "last_error_at")}),
    )

    class Media:
        js = ("bouncemgr/mailbox-form.js",)

    change_form_template = "admin/bounces/mailbox/change_form.html"
    change_list_template = "admin/bounces/mailbox/change_list.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            # a new mailbox starts from a preset; it has no next run yet
            return [(title, {**options, "fields": [f for f in (("preset", *options["fields"]) if title is None
                                                              else options["fields"]) if f != "next_run_text"]})
                    for title, options in fieldsets if title != "State"]
        if self.has_change_permission(request, obj):
            return fieldsets
        # View-only: every field is shown read-only, which would print the decrypted
        # secrets; show whether one is stored instead.
        swap = {name: f"{name}_stored" for name in SECRET_FIELDS}
        return [(title, {**options, "fields": [swap.get(f, f) for f in options["fields"]]})
                for title, options in fieldsets]

    @staticmethod
    def _stored(obj: Mailbox, name: str) -> str:
        return "stored (never shown)" if getattr(obj, name) else "not set"

    @admin.display(description="password")
    def password_stored(self, obj: Mailbox) -> str:
        return self._stored(obj, "password")

    @admin.display(description="OAuth2 client secret")
    def oauth2_client_secret_stored(self, obj: Mailbox) -> str:
        return self._stored(obj, "oauth2_client_secret")

    @admin.display(description="OAuth2 refresh token")
    def oauth2_refresh_token_stored(self, obj: Mailbox) -> str:
        return self._stored(obj, "oauth2_refresh_token")

    def get_queryset(self, request: HttpRequest):
        return schedules.with_last_scheduled_run(super().get_queryset(request))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return new_mailbox_initial(request.GET.dict())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_preset" in request.POST and object_id is None:
            # "Fill in" without script: the add page again, with the preset's values and what
            # was typed so far (never the secrets)
            from urllib.parse import urlencode

            keep = {k: v for k, v in request.POST.items()
                    if k in {f.name for f in Mailbox._meta.fields} and k not in SECRET_FIELDS and v}
            keep["preset"] = request.POST.get("preset", "")
            if keep["preset"] not in PRESETS:
                keep.pop("preset")
            return HttpResponseRedirect(request.path + "?" + urlencode(keep))
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="schedule")
    def schedule_text(self, obj: Mailbox) -> str:
        if obj.schedule == Mailbox.Schedule.DAILY and obj.run_at is not None:
            return f"daily at {obj.run_at:%H:%M}"
        return f"every {obj.interval_minutes} min"

    @admin.display(description="next run")
    def next_run_text(self, obj: Mailbox) -> str:
        from django.utils import timezone
        from django.utils.formats import date_format

        if obj.pk is None:
            return "–"
        now = timezone.now()
        when = schedules.next_run(obj, now=now)
        if when is None:
            return "– (disabled)"
        if when <= now:
            return "due now (at the scheduler's next tick)"
        return date_format(timezone.localtime(when), "Y-m-d H:i T")

    @admin.display(description="last error")
    def short_error(self, obj: Mailbox) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # keep the beat entry in step with interval / enabled (a service, not a signal)
        transaction.on_commit(partial(schedules.sync_mailbox_schedule, mailbox=obj))

    def delete_model(self, request, obj) -> None:
        mailbox_id = obj.pk
        super().delete_model(request, obj)
        schedules.remove_mailbox_schedule(mailbox_id=mailbox_id)

    def delete_queryset(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for mailbox_id in ids:
            schedules.remove_mailbox_schedule(mailbox_id=mailbox_id)

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(partial(view, model_admin=self))

        urls = [
            path("<int:mailbox_id>/test/", wrap(mailbox_views.test_connection_view), name="bounces_mailbox_test"),
            path("<int:mailbox_id>/folders/", wrap(mailbox_views.browse_folders_view),
                 name="bounces_mailbox_folders"),
        ]
        return [*urls, *super().get_urls()]



class BounceSettingsForm(forms.ModelForm):
    """Each kind's policy as checkboxes of contact actions (stored as a JSON list)."""

    hard_actions = forms.MultipleChoiceField(
        choices=ACTION_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=BounceSettings._meta.get_field("hard_actions").help_text,
    )
    complaint_actions = forms.MultipleChoiceField(
        choices=ACTION_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=BounceSettings._meta.get_field("complaint_actions").help_text
        + " A complaint always suppresses the address, whatever is ticked here or a rule says: the person "
          "asked not to be mailed.",
    )

    class Meta:
        model = BounceSettings
        fields = ["hard_actions", "hard_suppression_days", "soft_policy", "soft_threshold", "soft_window_days",
                  "score_stale_days", "soft_blacklist_threshold", "soft_suppression_days", "complaint_actions",
                  "blocked_suppression_days"]


# What each kind does, in words, on the settings page (issue 11: say exactly what happens).
KIND_HELP = (
    "<b>Hard</b> (the address does not exist, the domain does not exist, the account is closed): the "
    "hard actions below, at once. <b>Soft</b> (mailbox full, message too big, temporary failure): counted "
    "under the soft policy; only on reaching the threshold does the contact get the hard actions. "
    "<b>Complaint</b> (a feedback-loop report): the complaint actions below. <b>Blocked</b> (our IP, domain "
    "or content was refused), <b>delay</b>, <b>auto-reply</b> and <b>unknown</b>: recorded, never counted "
    "against the contact, no action. A rule only changes this when it says so (its page shows it); a rule "
    "that only says what a bounce is gets its kind's policy."
)


RECOMPUTE_HELP = (
    ' <a href="../../recompute-outcomes/">Recompute outcomes</a>: preview which already-bounced contacts the '
    "current policies and rules would change, then apply it."
)


@admin.register(BounceSettings)
class BounceSettingsAdmin(admin.ModelAdmin):
    """The singleton settings row; changing the soft policy recomputes contacts' state."""

    form = BounceSettingsForm
    fieldsets = (
        ("What each kind does", {"fields": (), "description": KIND_HELP + RECOMPUTE_HELP}),
        ("Hard bounces", {"fields": ("hard_actions", "hard_suppression_days")}),
        ("Soft bounces", {"fields": ("soft_policy", "soft_threshold", "soft_window_days", "score_stale_days",
                                     "soft_blacklist_threshold", "soft_suppression_days")}),
        ("Complaints", {"fields": ("complaint_actions",)}),
        ("Blocked", {"fields": ("blocked_suppression_days",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not BounceSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        obj = BounceSettings.load()
        return HttpResponseRedirect(reverse("admin:bounces_bouncesettings_change", args=[obj.pk]))

    def get_urls(self):
        own = [path("recompute-outcomes/", self.admin_site.admin_view(self.recompute_view),
                    name="bounces_bouncesettings_recompute")]
        return own + super().get_urls()

    def recompute_view(self, request: HttpRequest):
        """Preview what the current policies and rules change on already-bounced contacts
        (counts and a paged list), then apply it: the page of `manage.py recompute_outcomes`.

        Viewing needs the view permission on bounce settings; applying needs the change
        permission. Applying is audited (an admin log entry on the settings, a contact event
        per contact with the operator as actor)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = BounceSettings.load()
        can_apply = self.has_change_permission(request, obj)
        if request.method == "POST":
            if not can_apply:
                raise PermissionDenied
            plan = plan_outcome_recompute()
            changed = apply_outcome_recompute(plan=plan, actor=request.user,
                                              actor_label=f"outcome recompute by {request.user}")
            self.log_change(request, obj, f"Recomputed outcomes: {changed} contact(s) changed "
                                          f"({plan.examined} examined).")
            messages.success(request, f"{changed} contact(s) changed.")
            return HttpResponseRedirect(reverse("admin:bounces_bouncesettings_recompute"))
        plan = plan_outcome_recompute()
        by_action: dict[str, int] = {}
        for change in plan.changes:
            for action_name in change.actions:
                by_action[action_name] = by_action.get(action_name, 0) + 1
        words = dict(ACTION_CHOICES)
        page = Paginator(plan.changes, 50).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": obj,
            "title": "Recompute outcomes: preview", "plan": plan, "page": page, "can_apply": can_apply,
            "by_action": sorted((words.get(k, k), n) for k, n in by_action.items()),
        }
        return TemplateResponse(request, "admin/bounces/bouncesettings/recompute.html", context)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and any(name in form.changed_data for name in POLICY_FIELDS):
            label = f"settings changed by {request.user}"
            affected = Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True).values("contact_id").distinct()
            if affected[:RECOMPUTE_INLINE_MAX + 1].count() > RECOMPUTE_INLINE_MAX:
                from .tasks import recompute_bounce_state_task

                transaction.on_commit(partial(recompute_bounce_state_task.delay, label))
                messages.info(request, "Soft-bounce state is being recomputed from history in the background.")
                return
            changed = actions.recompute_bounce_state(actor_label=label)
            messages.info(request, f"Soft-bounce state recomputed from history for {changed} contact(s).")


class RunChunkInline(admin.TabularInline):
    """A run's chunks over stored messages: which worker ran each, how often, what it processed."""

    model = RunChunk
    fields = ("number", "state", "worker", "attempts", "processed", "errors", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ProcessingRun)
class ProcessingRunAdmin(admin.ModelAdmin):
    inlines = [RunChunkInline]
    list_display = (
        "id", "mailbox", "trigger", "status", "started_at", "finished_at", "fetched", "hard", "soft",
        "blocked", "complaint", "autoreply", "unknown", "unmatched", "errors", "chunks",
    )
    list_filter = ("status", "trigger", "mailbox")
    list_select_related = ("mailbox",)
    readonly_fields = [*(f.name for f in ProcessingRun._meta.fields), "progress_page"]

    @admin.display(description="progress page")
    def progress_page(self, obj: ProcessingRun) -> str:
        return format_html('<a href="{}">{}</a>', reverse("bounces:pipeline_run", args=[obj.pk]), obj.summary())

    @admin.display(description="chunks done")
    def chunks(self, obj: ProcessingRun) -> str:
        return f"{obj.chunks_done} / {obj.chunks_total}" if obj.chunks_total else ""

    def has_add_permission(self, request):
        return False


@admin.register(RunChunk)
class RunChunkAdmin(admin.ModelAdmin):
    """Chunks of runs over stored messages (read-only): which worker process ran each."""

    list_display = ("run", "number", "state", "worker", "attempts", "processed", "errors", "started_at",
                    "finished_at")
    list_filter = ("state",)
    list_select_related = ("run",)
    exclude = ("ids",)  # up to PROCESSING_CHUNK_SIZE row ids
    readonly_fields = ("run", "number", "state", "worker", "attempts", "processed", "errors", "error_log",
                       "started_at", "finished_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RawMessage)
class RawMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "mailbox", "source", "dedupe_key", "size", "state", "disposed", "received_at")
    list_filter = ("state", "source", "disposed", "mailbox")
    search_fields = ("dedupe_key", "sha256")
    list_select_related = ("mailbox",)
    show_full_result_count = False
    exclude = ("raw",)
    readonly_fields = (
        "mailbox", "source", "dedupe_key", "sha256", "size", "state", "disposed", "run", "error",
        "attempts", "received_at", "processed_at", "raw_preview",
    )

    def get_queryset(self, request: HttpRequest):
        # The list shows metadata only; a page of 100 rows must not load 100 messages'
        # bytes (the change page loads its one message on first access).
        return super().get_queryset(request).defer("raw")

    @admin.display(description="raw message (first 64 KB, shown as text)")
    def raw_preview(self, obj: RawMessage) -> str:
        # Shown escaped inside <pre>, never rendered as HTML.
        text = bytes(obj.raw[:65536]).decode("utf-8", errors="replace")
        return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>', text)

    def has_add_permission(self, request):
        return False


@admin.register(Bounce)
class BounceAdmin(admin.ModelAdmin):
    list_display = (
        "bounced_at", "recipient", "kind", "reason", "status_code", "campaign", "contact", "match_method",
        "state", "matched_rule", "details",
    )
    list_filter = ("kind", "state", "match_method", "reason", "mailbox")
    search_fields = ("recipient", "diagnostic", "status_code")
    list_select_related = ("campaign", "contact", "matched_rule")
    raw_id_fields = ("raw_message", "sent_message", "contact", "campaign", "run", "mailbox", "matched_rule")
    show_full_result_count = False
    date_hierarchy = "bounced_at"
    actions = ["mark_not_a_bounce", "reapply_rules", "make_rule"]
    list_per_page = 50
    # Re-applying rules plans and writes per bounce: bounded per click.
    REAPPLY_MAX = 1000

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bounces come from the pipeline

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Read-only: kind, state and `counted` feed the contact counters and recompute, so
        # they change only through services (the unexplained queue, re-applying rules).
        return [f.name for f in Bounce._meta.fields]

    @admin.display(description="details")
    def details(self, obj: Bounce) -> str:
        return format_html('<a href="{}">parsed fields and raw message</a>', reverse("bounces:detail", args=[obj.pk]))

    def has_reapply_permission(self, request: HttpRequest) -> bool:
        # as the rules' Re-apply page: the custom "apply rules" permission
        return request.user.has_perm("bounces.apply_bouncerule")

    def has_make_rule_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("bounces.add_bouncerule")

    @admin.action(description="Re-apply the rules to the selected bounces (undoable)", permissions=["reapply"])
    def reapply_rules(self, request: HttpRequest, queryset) -> HttpResponseRedirect | None:
        from .rules import services as rule_services

        ids = list(queryset.order_by("-bounced_at").values_list("pk", flat=True)[: self.REAPPLY_MAX + 1])
        if len(ids) > self.REAPPLY_MAX:
            messages.error(request, f"Select at most {self.REAPPLY_MAX} bounces, or use Rules → Re-apply.")
            return None
        plan = rule_services.plan_reapply(limit=len(ids), bounce_ids=ids)
        batch = rule_services.apply_reapply(plan=plan, actor=request.user)
        messages.success(request, f"Rules re-applied to {plan.examined} bounce(s): {batch.changed} changed. "
                                  "The change can be undone on its page.")
        return HttpResponseRedirect(reverse("bounces:rule_reapply_detail", args=[batch.pk]))

    @admin.action(description="Make a rule from the selected bounces", permissions=["make_rule"])
    def make_rule(self, request: HttpRequest, queryset) -> HttpResponseRedirect:
        from urllib.parse import urlencode

        from .rules.patterns import common_text

        diagnostics = list(queryset.exclude(diagnostic="").values_list("diagnostic", flat=True)[:50])
        kinds = set(queryset.values_list("kind", flat=True)[:50])
        query = {"pattern": common_text(diagnostics)[:200], "section": "diagnostic"}
        if len(kinds) == 1 and next(iter(kinds)) in ("hard", "soft"):
            query["bounce_type"] = next(iter(kinds))
        return HttpResponseRedirect(reverse("bounces:rule_new") + "?" + urlencode(query))

    @admin.action(description="Mark selected as not a bounce (leaves the unexplained queue)",
                  permissions=["change"])
    def mark_not_a_bounce(self, request: HttpRequest, queryset) -> None:
        n = 0
        for bounce in queryset.filter(state=Bounce.State.UNMATCHED):
            actions.mark_not_a_bounce(bounce=bounce, actor=request.user)
            n += 1
        messages.success(request, f"{n} bounce(s) marked as not a bounce.")


# --------------------------------------------------------------------------- intake
MASK = "<token: visible to staff who may change integrations>"


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "records_received", "last_used_at", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    fields = ("name", "kind", "enabled", "records_received", "last_used_at")
    readonly_fields = ("records_received", "last_used_at")
    actions = ["issue_new_token"]

    def save_model(self, request: HttpRequest, obj: Integration, form, change: bool) -> None:
        if not obj.token_digest:
            obj.set_new_token()
        super().save_model(request, obj, form, change)

    @admin.action(description="Issue a new token (the old one stops working)", permissions=["change"])
    def issue_new_token(self, request: HttpRequest, queryset) -> None:
        for item in queryset:
            item.set_new_token()
            item.save(update_fields=["token", "token_digest", "updated_at"])
        self.message_user(request, f"New tokens issued for {queryset.count()} integration(s); update their "
                                   "Logstash / Vector configuration.", messages.WARNING)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context["integration_config"] = self._config(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def _config(self, request: HttpRequest, obj: Integration) -> list[tuple[str, str]]:
        path = reverse("intake:push_records")
        base = settings.BOUNCE_INTAKE_PUBLIC_URL.rstrip("/")
        url = base + path if base else request.build_absolute_uri(path)
        token = obj.token if self.has_change_permission(request, obj) else MASK
        header = settings.BOUNCE_TRACKING_HEADER
        return [
            ("PowerMTA: /etc/pmta/config (then `pmta reload`)",
             integration_config.powermta_directives(tracking_header=header)),
            ("Logstash: follows the accounting file and posts each line", integration_config.logstash_pipeline(
                url=url, token=token)),
            ("Vector (instead of Logstash)", integration_config.vector_config(url=url, token=token)),
            ("Or without a shipper: import the files on this server", "python manage.py import_accounting "
             "/var/log/pmta/bouncemgr-acct*.csv   # from cron; resumes where it stopped\n"),
            ("Test the endpoint", integration_config.curl_example(url=url, token=token)),
        ]


@admin.register(AccountingFile)
class AccountingFileAdmin(admin.ModelAdmin):
    list_display = ("path", "offset", "records", "updated_at")
    readonly_fields = ("path", "device", "inode", "offset", "header", "records", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
