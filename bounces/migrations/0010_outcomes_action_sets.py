"""Issue 11: actions as sets on rules and per-kind policies.

Rules: a rule's single "action" becomes `actions_mode` + `actions`. "Mark hard-bounced" and
"Count only" only said what the bounce was (the starter rules used them for every hard
rule, and they replaced the hard policy: dead addresses stayed subscribed and unsuppressed),
so such rules now get the kind's policy; any other action is added to the policy (never
weaker than before). Settings: the hard / complaint choice becomes the set it stood for,
with the shipped hard default (mark, unsubscribe from all lists, suppress).

Contacts already processed are not changed here: `manage.py recompute_outcomes` previews
which contacts the new decision changes, and applies it with --apply.
"""

from django.db import migrations, models

import bounces.models


HARD_SETS = {
    "unsubscribe_suppress": ["mark_hard", "unsubscribe_all", "suppress"],
    "unconfirm": ["mark_hard", "unconfirm"],
    "blacklist_contact": ["mark_hard", "blacklist_contact"],
    "blacklist_address": ["mark_hard", "blacklist_address"],
    "delete_contact": ["mark_hard", "delete_contact"],
    "remove_address": ["mark_hard", "suppress", "remove_address"],
    "nothing": ["mark_hard"],
}
COMPLAINT_SETS = {
    "unsubscribe_suppress": ["unsubscribe_all", "suppress"],
    "blacklist_contact": ["unsubscribe_all", "suppress", "blacklist_contact"],
    "nothing": [],
}
KIND_ONLY = ("", "mark_hard", "count_only", "nothing")


def convert(apps, schema_editor):
    BounceRule = apps.get_model("bounces", "BounceRule")
    for rule in BounceRule.objects.all():
        if rule.action in KIND_ONLY or rule.bounce_type == "ignore":
            rule.actions_mode, rule.actions = "kind", []
        else:
            rule.actions_mode, rule.actions = "add", [rule.action]
        rule.save(update_fields=["actions_mode", "actions"])
    BounceSettings = apps.get_model("bounces", "BounceSettings")
    for row in BounceSettings.objects.all():
        row.hard_actions = HARD_SETS.get(row.hard_action, HARD_SETS["unsubscribe_suppress"])
        row.complaint_actions = COMPLAINT_SETS.get(row.complaint_action, COMPLAINT_SETS["unsubscribe_suppress"])
        row.save(update_fields=["hard_actions", "complaint_actions"])


def unconvert(apps, schema_editor):
    BounceRule = apps.get_model("bounces", "BounceRule")
    for rule in BounceRule.objects.all():
        extra = [a for a in (rule.actions or []) if a != "mark_hard"]
        rule.action = extra[0] if extra else ("mark_hard" if rule.bounce_type == "hard" else "count_only")
        rule.save(update_fields=["action"])


class Migration(migrations.Migration):

    dependencies = [
        ('bounces', '0009_intake'),
    ]

    operations = [
        migrations.AddField(
            model_name='bouncerule',
            name='actions',
            field=models.JSONField(blank=True, default=list, help_text="The actions added to, or replacing, the kind's policy."),
        ),
        migrations.AddField(
            model_name='bouncerule',
            name='actions_mode',
            field=models.CharField(choices=[('kind', "The kind's policy (recommended)"), ('add', "The kind's policy plus the actions below (stronger)"), ('replace', "Only the actions below, instead of the kind's policy (may be weaker)")], default='kind', help_text="What happens to the contact. Anything but the kind's policy is shown on the rule page as stronger or weaker than the policy.", max_length=8, verbose_name='contact actions'),
        ),
        migrations.AddField(
            model_name='bouncerule',
            name='fallback_only',
            field=models.BooleanField(default=False, help_text='Apply only to messages the engine could not classify; where it could, its verdict stands. The starter rules work this way.', verbose_name='only when the engine cannot tell'),
        ),
        migrations.AddField(
            model_name='bouncerule',
            name='in_statistics',
            field=models.BooleanField(default=True, help_text="Off: the bounce is recorded but left out of its campaign's figures (phpList's '... and delete bounce').", verbose_name='count in campaign statistics'),
        ),
        migrations.AddField(
            model_name='bouncesettings',
            name='blocked_suppression_days',
            field=models.PositiveIntegerField(blank=True, default=30, help_text='A suppression a rule makes for a blocked bounce lapses after this many days (empty: never). Blocked bounces never act on a contact unless a rule says so.', null=True),
        ),
        migrations.AddField(
            model_name='bouncesettings',
            name='complaint_actions',
            field=models.JSONField(blank=True, default=bounces.models.default_complaint_actions, help_text='What a complaint (ARF feedback report) does. Default: unsubscribe from all lists and suppress the address; the contact is not marked hard-bounced.'),
        ),
        migrations.AddField(
            model_name='bouncesettings',
            name='hard_actions',
            field=models.JSONField(blank=True, default=bounces.models.default_hard_actions, help_text="What a hard bounce (or a soft one reaching the threshold) does to the contact. Default: mark it hard-bounced, unsubscribe it from all lists and suppress the address, so no campaign mails it again. Leaving out 'suppress' and the unsubscriptions means dead addresses keep being mailed."),
        ),
        migrations.AddField(
            model_name='bouncesettings',
            name='hard_suppression_days',
            field=models.PositiveIntegerField(blank=True, help_text="A hard bounce's suppression lapses after this many days (empty: never, the default).", null=True),
        ),
        migrations.AddField(
            model_name='bouncesettings',
            name='soft_suppression_days',
            field=models.PositiveIntegerField(blank=True, default=90, help_text='A suppression made by soft bounces (threshold reached) lapses after this many days (empty: never). A later delivery to the address lifts it at once.', null=True),
        ),
        migrations.AlterField(
            model_name='bouncerule',
            name='delete_message',
            field=models.BooleanField(default=False, help_text="Delete the bounce message from the mailbox once processed (otherwise the mailbox's disposition applies)."),
        ),
        migrations.AlterField(
            model_name='bouncesettings',
            name='soft_threshold',
            field=models.PositiveIntegerField(default=5, help_text='Soft bounces (or score) after which the contact is treated as hard-bounced (the hard actions run once). Below it a soft bounce only counts.'),
        ),
        migrations.AlterField(
            model_name='bouncesettings',
            name='soft_window_days',
            field=models.PositiveIntegerField(default=30, help_text='Window policy: count soft bounces within this many days (of bounce time).'),
        ),
        migrations.RunPython(convert, unconvert),
        migrations.RemoveField(
            model_name='bouncerule',
            name='action',
        ),
        migrations.RemoveField(
            model_name='bouncesettings',
            name='complaint_action',
        ),
        migrations.RemoveField(
            model_name='bouncesettings',
            name='hard_action',
        ),
    ]
