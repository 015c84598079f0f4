# Issue 12, item 4: stored secrets are bound to the endpoint they were entered for.

from django.db import migrations, models

from bounces.mailboxes.base import endpoint_fingerprint

ENDPOINT_FIELDS = ("protocol", "host", "port", "security", "verify_certificate", "ca_pem", "username",
                   "oauth2_token_url", "oauth2_client_id")


def bind_existing_secrets(apps, schema_editor):
    """Rows from before this migration: their secrets belong to their current endpoint.

    Only the endpoint columns are read: no secret is decrypted here, so a lost
    FIELD_ENCRYPTION_KEY does not stop the migration.
    """
    Mailbox = apps.get_model("bounces", "Mailbox")
    for row in Mailbox.objects.only(*ENDPOINT_FIELDS).iterator():
        fingerprint = endpoint_fingerprint(
            protocol=row.protocol, host=row.host, port=row.port, security=row.security,
            verify_certificate=row.verify_certificate, ca_pem=row.ca_pem or "", username=row.username,
            token_url=row.oauth2_token_url or "", client_id=row.oauth2_client_id or "",
        )
        Mailbox.objects.filter(pk=row.pk).update(secrets_fingerprint=fingerprint)


class Migration(migrations.Migration):

    dependencies = [
        ('bounces', '0010_outcomes_action_sets'),
    ]

    operations = [
        migrations.AddField(
            model_name='mailbox',
            name='secrets_fingerprint',
            field=models.CharField(blank=True, editable=False, max_length=80),
        ),
        migrations.RunPython(bind_existing_secrets, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='mailbox',
            name='path',
            field=models.CharField(blank=True, help_text='mbox file or maildir folder, inside the allowed folders (LOCAL_MAILBOX_ROOTS); a relative path is taken inside the first of them.', max_length=500),
        ),
    ]
