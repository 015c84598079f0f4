"""The mailbox form of the admin: presets with the usual ports and TLS, the fields of the chosen
protocol (static/bouncemgr/mailbox-form.js hides the others; without script every field shows
and the server validates per protocol), credentials required where the login needs them, a
safe default for processed messages (move to a folder), and the schedule (every few minutes or
once a day). An interface: imports models and checks."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.safestring import mark_safe

from bounces.checks import mailbox_problems
from bounces.models import Disposition, Mailbox

SECRET_FIELDS = Mailbox.SECRET_FIELDS
SECRET_LABELS = {"password": "the password", "oauth2_client_secret": "the OAuth2 client secret",
                 "oauth2_refresh_token": "the OAuth2 refresh token"}

# Where a new mailbox puts the messages it has processed: kept, out of the way (the operator
# can look back at them), never deleted unless they say so.
DEFAULT_PROCESSED_FOLDER = "Processed"

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/YOUR-TENANT-ID/oauth2/v2.0/token"

# key -> (label, field values). Every preset names the protocol; the rest is filled in as given.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "imap_ssl": ("IMAP, SSL/TLS (port 993)", {
        "protocol": "imap", "port": 993, "security": "ssl", "auth": "password",
        "processed_action": "move", "processed_folder": DEFAULT_PROCESSED_FOLDER}),
    "imap_starttls": ("IMAP, STARTTLS (port 143)", {
        "protocol": "imap", "port": 143, "security": "starttls", "auth": "password",
        "processed_action": "move", "processed_folder": DEFAULT_PROCESSED_FOLDER}),
    "pop3_ssl": ("POP3, SSL/TLS (port 995)", {
        "protocol": "pop3", "port": 995, "security": "ssl", "auth": "password", "folder": "INBOX",
        "processed_action": "leave", "processed_folder": "", "unmatched_action": "leave"}),
    "pop3_starttls": ("POP3, STARTTLS (port 110)", {
        "protocol": "pop3", "port": 110, "security": "starttls", "auth": "password", "folder": "INBOX",
        "processed_action": "leave", "processed_folder": "", "unmatched_action": "leave"}),
    "gmail": ("Gmail / Google Workspace (IMAP, OAuth2)", {
        "protocol": "imap", "host": "imap.gmail.com", "port": 993, "security": "ssl", "auth": "xoauth2",
        "oauth2_token_url": GOOGLE_TOKEN_URL, "oauth2_scope": "https://mail.google.com/",
        "processed_action": "move", "processed_folder": DEFAULT_PROCESSED_FOLDER}),
    "microsoft365": ("Microsoft 365 / Exchange Online (IMAP, OAuth2)", {
        "protocol": "imap", "host": "outlook.office365.com", "port": 993, "security": "ssl",
        "auth": "xoauth2", "oauth2_token_url": MICROSOFT_TOKEN_URL,
        "oauth2_scope": "https://outlook.office365.com/.default",
        "processed_action": "move", "processed_folder": DEFAULT_PROCESSED_FOLDER}),
    "mbox": ("Local mbox file", {
        "protocol": "mbox", "processed_action": "mark_read", "processed_folder": ""}),
    "maildir": ("Local maildir", {
        "protocol": "maildir", "processed_action": "move", "processed_folder": DEFAULT_PROCESSED_FOLDER}),
}

# The fields each protocol uses (the script shows only these; the server ignores the others).
REMOTE_FIELDS = ("host", "port", "security", "verify_certificate", "ca_pem", "auth", "username", "password",
                 "oauth2_token_url", "oauth2_client_id", "oauth2_client_secret", "oauth2_refresh_token",
                 "oauth2_scope")
PROTOCOL_FIELDS: dict[str, tuple[str, ...]] = {
    "imap": (*REMOTE_FIELDS, "folder", "fetch_mode", "processed_folder", "unmatched_folder"),
    "pop3": REMOTE_FIELDS,
    "mbox": ("path", "fetch_mode"),
    "maildir": ("path", "folder", "fetch_mode", "processed_folder", "unmatched_folder"),
}
AUTH_FIELDS: dict[str, tuple[str, ...]] = {
    "password": ("password",),
    "xoauth2": ("oauth2_token_url", "oauth2_client_id", "oauth2_client_secret", "oauth2_refresh_token",
                "oauth2_scope"),
}
SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {"interval": ("interval_minutes",), "daily": ("run_at",)}


class PresetSelect(forms.Select):
    """The preset list, and a "Fill in" button that applies it without script (the add page
    reloads with the preset's values; the script fills them in at once and hides the button)."""

    def render(self, name, value, attrs=None, renderer=None):
        select = super().render(name, value, attrs, renderer)
        button = ('<button type="submit" name="_preset" value="1" class="button bm-preset-apply" '
                  "formnovalidate>Fill in</button>")
        return mark_safe(select + " " + button)  # noqa: S308 - Django escaped the select; the button is ours


def _field_map() -> str:
    return json.dumps({"protocol": PROTOCOL_FIELDS, "auth": AUTH_FIELDS, "schedule": SCHEDULE_FIELDS,
                       "all": sorted({f for fields in PROTOCOL_FIELDS.values() for f in fields})})


class MailboxForm(forms.ModelForm):
    """Secrets are write-only: the form never renders them back; blank keeps the stored one.

    A stored secret belongs to the endpoint it was entered for (host, port, TLS, user,
    OAuth2 token URL; `Mailbox.endpoint_fingerprint`): when the submitted endpoint differs,
    the secrets the login needs must be entered again, and the others are dropped on save
    (issue 12, item 4). An IMAP / POP3 mailbox needs a user name and its password (or the
    OAuth2 client id, token URL and client secret); fields of another protocol are ignored.
    """

    preset = forms.ChoiceField(
        required=False, label="Preset",
        choices=[("", "— choose to fill in the usual settings —"),
                 *((key, label) for key, (label, _) in PRESETS.items())],
        widget=PresetSelect(attrs={"data-presets": json.dumps({k: v for k, (_, v) in PRESETS.items()})}),
        help_text="Fills in the protocol, port, TLS and login method of a common setup; change anything after.",
    )
    oauth2_token_url = forms.URLField(required=False, assume_scheme="https", label="OAuth2 token URL")

    class Meta:
        model = Mailbox
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets choose what is shown
        widgets = {
            "password": forms.PasswordInput(render_value=False),
            "oauth2_client_secret": forms.PasswordInput(render_value=False),
            "oauth2_refresh_token": forms.PasswordInput(render_value=False),
            "run_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "schedule": forms.RadioSelect,
        }
        labels = {
            "auth": "Login with", "oauth2_client_id": "OAuth2 client id",
            "oauth2_client_secret": "OAuth2 client secret", "oauth2_refresh_token": "OAuth2 refresh token",
            "oauth2_scope": "OAuth2 scope", "interval_minutes": "Every (minutes)",
            "processed_action": "Processed messages", "processed_folder": "Move processed messages to",
            "unmatched_action": "Messages that match no contact", "unmatched_folder": "Move those to",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        protocol = self.fields.get("protocol")
        if protocol is not None:  # a view-only user's form has no editable fields
            protocol.widget.attrs["data-fields"] = _field_map()
        if "schedule" in self.fields:  # left out (older clients): the mailbox keeps its schedule
            self.fields["schedule"].required = False
        for name in SECRET_FIELDS:
            field = self.fields.get(name)
            if field is None:
                continue
            field.required = False
            field.initial = ""
            if self.instance.pk and getattr(self.instance, name):
                field.help_text = "A value is stored. Leave blank to keep it."

    def clean(self):
        cleaned = super().clean()
        self.entered_secrets = {name: cleaned[name] for name in SECRET_FIELDS if cleaned.get(name)}
        if self.instance.pk:
            for name in SECRET_FIELDS:
                if name in self.fields and not cleaned.get(name):
                    cleaned[name] = getattr(self.instance, name)
        if "protocol" in self.fields:
            self._clean_per_protocol(cleaned)
        return cleaned

    def _clean_per_protocol(self, cleaned: dict) -> None:
        protocol = cleaned.get("protocol")
        remote = protocol in (Mailbox.Protocol.IMAP, Mailbox.Protocol.POP3)
        if remote:
            cleaned["path"] = ""
            if protocol == Mailbox.Protocol.POP3:
                cleaned["folder"] = "INBOX"  # POP3 has one mailbox; a typed folder would mislead
            self._require_credentials(cleaned)
        elif protocol in (Mailbox.Protocol.MBOX, Mailbox.Protocol.MAILDIR):
            cleaned["host"], cleaned["port"] = "", None
            if protocol == Mailbox.Protocol.MBOX:
                cleaned["folder"] = "INBOX"
        if not cleaned.get("schedule"):
            cleaned["schedule"] = self.instance.schedule or Mailbox.Schedule.INTERVAL
        if cleaned.get("schedule") == Mailbox.Schedule.DAILY and not cleaned.get("run_at"):
            self.add_error("run_at", "Once a day needs the time of day.")
        if cleaned.get("schedule") == Mailbox.Schedule.INTERVAL and not cleaned.get("interval_minutes"):
            self.add_error("interval_minutes", "Every few minutes needs the number of minutes.")

    def _require_credentials(self, cleaned: dict) -> None:
        """A remote mailbox cannot log in without these: refuse to save it without them."""
        if not cleaned.get("username"):
            self.add_error("username", "An IMAP or POP3 mailbox needs the user name it logs in with.")
        if cleaned.get("auth") == Mailbox.Auth.XOAUTH2:
            for name, words in (("oauth2_token_url", "the OAuth2 token URL"),
                                ("oauth2_client_id", "the OAuth2 client id"),
                                ("oauth2_client_secret", "the OAuth2 client secret")):
                if name in self.fields and not cleaned.get(name):
                    self.add_error(name, f"OAuth2 login needs {words}.")
        elif "password" in self.fields and not cleaned.get("password"):
            self.add_error("password", "Enter the password (for Gmail: an app password, or choose OAuth2).")

    def _post_clean(self):
        super()._post_clean()  # the instance now holds the submitted values
        mailbox = self.instance
        entered = getattr(self, "entered_secrets", {})
        if entered:
            mailbox.enter_secrets(**entered)
        if mailbox.pk and mailbox.secrets_fingerprint != mailbox.endpoint_fingerprint():
            needed = ["password"] if mailbox.auth == Mailbox.Auth.PASSWORD else [
                "oauth2_client_secret", "oauth2_refresh_token"]
            for name in needed:
                if name in self.fields and name not in entered and getattr(mailbox, name):
                    self.add_error(name, f"The server, port, security, user name or token URL changed: "
                                         f"enter {SECRET_LABELS[name]} again. A stored secret is only "
                                         "ever sent where it was entered for.")
        for problem in mailbox_problems(self.instance):
            if problem.warning:
                continue
            field = problem.field if problem.field in self.fields else None
            if field is not None and field in self.errors:
                continue
            self.add_error(field, f"{problem.message} {problem.hint}")


def new_mailbox_initial(query: dict[str, str]) -> dict[str, Any]:
    """The add page's starting values: a safe default for processed messages (move them to a
    folder), then a preset chosen with "Fill in" (`?preset=`), then what the URL names."""
    initial: dict[str, Any] = {"processed_action": Disposition.MOVE, "processed_folder": DEFAULT_PROCESSED_FOLDER}
    allowed = {f.name for f in Mailbox._meta.fields} - set(SECRET_FIELDS)
    initial.update({k: v for k, v in query.items() if k in allowed})
    preset = PRESETS.get(query.get("preset", ""))
    if preset is not None:
        initial.update(preset[1], preset=query["preset"])
    return initial
