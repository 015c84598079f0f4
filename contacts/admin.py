from django.contrib import admin

from .models import Contact, ContactEvent, MailingList, Subscription, Suppression


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    autocomplete_fields = ["mailing_list"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = (
        "email", "name", "status", "has_bounced", "hard_bounce_count", "soft_bounce_count",
        "consecutive_bounces", "last_bounce_at",
    )
    list_filter = ("status", "has_bounced", "lists")
    search_fields = ("email", "name", "bounced_address")
    readonly_fields = ("created_at", "updated_at")
    inlines = [SubscriptionInline]
    date_hierarchy = "last_bounce_at"


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("contact", "mailing_list", "status", "unsubscribed_at")
    list_filter = ("status", "mailing_list")
    search_fields = ("contact__email",)
    list_select_related = ("contact", "mailing_list")
    autocomplete_fields = ["contact", "mailing_list"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "reason", "source", "created_at")
    list_filter = ("kind", "reason")
    search_fields = ("value", "source")


@admin.register(ContactEvent)
class ContactEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "contact", "kind", "old_status", "new_status", "actor", "actor_label")
    list_filter = ("kind",)
    search_fields = ("contact__email",)
    list_select_related = ("contact", "actor")
    readonly_fields = [f.name for f in ContactEvent._meta.fields]

    def has_add_permission(self, request):  # audit rows are written by services only
        return False

    def has_change_permission(self, request, obj=None):
        return False
