"""Forms of the contacts staff pages."""

from __future__ import annotations

from django import forms

from .models import MailingList


class ImportContactsForm(forms.Form):
    """Upload a CSV file of contacts into an existing or a new mailing list."""

    file = forms.FileField(
        help_text="UTF-8 CSV. A header naming an 'email' column (and optionally 'name'), "
                  "or no header: email, name."
    )
    mailing_list = forms.ModelChoiceField(queryset=MailingList.objects.all(), required=False)
    new_list = forms.CharField(max_length=200, required=False, label="or a new list named")
    update_names = forms.BooleanField(
        required=False, initial=True, label="Update the names of contacts already present"
    )

    def clean(self):
        cleaned = super().clean()
        chosen, new = cleaned.get("mailing_list"), (cleaned.get("new_list") or "").strip()
        if bool(chosen) == bool(new):
            raise forms.ValidationError("Choose a list, or name a new one (not both).")
        if new and MailingList.objects.filter(name=new).exists():
            raise forms.ValidationError(f"A list named {new!r} already exists: choose it above.")
        cleaned["new_list"] = new
        return cleaned
