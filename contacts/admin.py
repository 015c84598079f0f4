from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .models import (
    Contact,
    ContactEvent,
    LiftedSuppression,
    MailingList,
    Subscription,
    Suppression,
    SuppressionRelease,
)
from .services import preview_release, record_status_change, release_suppressions, undo_release


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    autocomplete_fields = ["mailing_list"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = (
        "email", "name", "status", "has_bounced", "hard_bounce_count", "soft_bounce_count",
        "consecutive_bounces", "last_bounce_at", "page_link",
    )
    list_filter = ("status", "has_bounced", "lists")
    search_fields = ("email", "name", "bounced_address")
    # Bounce state changes only through services (processing, "reset bounce state" on the
    # contact page), which keep the counters consistent and write the audit trail.
    readonly_fields = (
        "page_link", "consecutive_bounces", "hard_bounce_count", "soft_bounce_count", "bounce_score",
        "bounce_scored_on", "last_bounce_sent_at", "last_bounce_at", "has_bounced", "bounced_address",
        "created_at", "updated_at",
    )
    inlines = [SubscriptionInline]
    date_hierarchy = "last_bounce_at"

    def save_model(self, request, obj: Contact, form, change) -> None:
        old_status = form.initial.get("status", "") if change else ""
        super().save_model(request, obj, form, change)
        if change:
            record_status_change(contact=obj, old_status=old_status, actor=request.user)

    @admin.display(description="bounce history")
    def page_link(self, obj: Contact) -> str:
        if not obj.pk:
            return "–"
        return format_html('<a href="{}">contact page</a>', reverse("contacts:detail", args=[obj.pk]))


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at", "import_link")
    search_fields = ("name",)
    change_list_template = "contacts/admin/mailinglist_change_list.html"  # adds "Import CSV"
    actions = ["import_csv"]

    @admin.display(description="import")
    def import_link(self, obj: MailingList) -> str:
        return format_html('<a href="{}?list={}">import CSV</a>', reverse("contacts:import"), obj.pk)

    def has_import_permission(self, request) -> bool:
        """The import page itself requires adding contacts; offer the action only then."""
        return request.user.has_perm("contacts.add_contact")

    @admin.action(description="Import contacts from CSV into the selected list", permissions=["import"])
    def import_csv(self, request, queryset):
        first = queryset.first()
        return HttpResponseRedirect(f"{reverse('contacts:import')}?list={first.pk if first else ''}")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("contact", "mailing_list", "status", "unsubscribed_at")
    list_filter = ("status", "mailing_list")
    search_fields = ("contact__email",)
    list_select_related = ("contact", "mailing_list")
    autocomplete_fields = ["contact", "mailing_list"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "reason", "bounce_kind", "bounce_reason", "source", "created_at", "expires_at")
    list_filter = ("kind", "reason", "bounce_kind")
    search_fields = ("value", "source")
    readonly_fields = ("contact", "bounce_id", "bounce_kind", "bounce_reason", "rule_id", "actor")
    actions = ["release_selected"]

    change_list_template = "contacts/admin/suppression_change_list.html"  # adds "Export CSV"

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("contacts.release_suppression")

    @admin.action(description="Release selected suppressions (preview first)", permissions=["release"])
    def release_selected(self, request, queryset):
        """Bulk release: a preview page (what each release changes), then the release itself."""
        ids = list(queryset.values_list("pk", flat=True))
        reset = request.POST.get("reset_contacts") == "on"
        if request.POST.get("confirm") == "yes":
            release = release_suppressions(suppression_ids=ids, actor=request.user,
                                           note=request.POST.get("note", "")[:2000], reset_contacts=reset)
            self.message_user(request, f"Released {release.count} suppression(s); undo from “Suppression releases”.",
                              messages.SUCCESS)
            return None
        return TemplateResponse(request, "contacts/admin/suppression_release.html", {
            **self.admin_site.each_context(request), "title": "Release suppressions",
            "rows": preview_release(suppression_ids=ids, reset_contacts=reset), "ids": ids,
            "reset_contacts": reset, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        })


@admin.register(LiftedSuppression)
class LiftedSuppressionAdmin(admin.ModelAdmin):
    """History: suppressions no longer in force, with why they were made and why they ended."""

    list_display = ("value", "reason", "bounce_kind", "suppressed_at", "lifted_at", "lift_reason", "lifted_by",
                    "release")
    list_filter = ("lift_reason", "reason", "bounce_kind")
    search_fields = ("value",)
    list_select_related = ("lifted_by", "release")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SuppressionRelease)
class SuppressionReleaseAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "count", "reset_contacts", "note", "undone_at")
    actions = ["undo_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("contacts.release_suppression")

    @admin.action(description="Undo selected releases (suppress again)", permissions=["release"])
    def undo_selected(self, request, queryset):
        restored = 0
        for release in queryset:
            restored += undo_release(release=release, actor=request.user).restored
        self.message_user(request, f"{restored} suppression(s) back in force.", messages.SUCCESS)


@admin.register(ContactEvent)
class ContactEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "email", "contact", "kind", "old_status", "new_status", "actor", "actor_label")
    list_filter = ("kind",)
    search_fields = ("email",)
    list_select_related = ("contact", "actor")
    readonly_fields = [f.name for f in ContactEvent._meta.fields]

    def has_add_permission(self, request):  # audit rows are written by services only
        return False

    def has_change_permission(self, request, obj=None):
        return False
