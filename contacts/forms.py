"""Forms of the contacts staff pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import MailingList

# The page stores the upload and imports it in the background (~3,000 rows a second):
# 100 MiB is about 2.5 million rows of "address,name". Larger files: the command.
DEFAULT_IMPORT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024


def import_upload_max_bytes() -> int:
    """CONTACTS_IMPORT_UPLOAD_MAX_BYTES: the largest CSV the upload page takes (0: no limit)."""
    return int(getattr(settings, "CONTACTS_IMPORT_UPLOAD_MAX_BYTES", DEFAULT_IMPORT_UPLOAD_MAX_BYTES))


class ImportContactsForm(forms.Form):
    """Upload a CSV file of contacts into an existing or a new mailing list."""

    file = forms.FileField()
    mailing_list = forms.ModelChoiceField(queryset=MailingList.objects.all(), required=False)
    new_list = forms.CharField(max_length=200, required=False, label="or a new list named")
    update_names = forms.BooleanField(
        required=False, initial=True, label="Update the names of contacts already present"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        help_text = ("CSV separated by , ; tab or | (found by itself), in UTF-8, UTF-16 or Windows-1252. "
                     "A header naming an 'email' column (and optionally 'name'), or no header: email, name.")
        limit = import_upload_max_bytes()
        if limit:
            help_text += (f" Up to {filesizeformat(limit)} here (large files are imported in the background "
                          "while a page shows the progress); larger files: "
                          "python manage.py import_contacts FILE --list NAME.")
        self.fields["file"].help_text = help_text

    def clean_file(self):
        """Refuse files above CONTACTS_IMPORT_UPLOAD_MAX_BYTES, pointing to the command."""
        upload = self.cleaned_data["file"]
        limit = import_upload_max_bytes()
        if limit and upload.size > limit:
            raise forms.ValidationError(
                "This file is %(size)s; the upload page imports files of up to %(limit)s. "
                "Import larger files on the server with "
                '"python manage.py import_contacts FILE --list NAME" '
                "(see docs/campaigns.md, section 1).",
                code="too_large",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        return upload

    def clean(self):
        cleaned = super().clean()
        chosen, new = cleaned.get("mailing_list"), (cleaned.get("new_list") or "").strip()
        if bool(chosen) == bool(new):
            raise forms.ValidationError("Choose a list, or name a new one (not both).")
        if new and MailingList.objects.filter(name=new).exists():
            raise forms.ValidationError(f"A list named {new!r} already exists: choose it above.")
        cleaned["new_list"] = new
        return cleaned
