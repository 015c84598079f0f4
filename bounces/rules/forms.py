"""Forms of the rule pages: the editor (with its test), Octeth paste, import, re-apply.
Imports the rules' models, patterns and selectors (for sample sizes); no services."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import BounceRule
from .patterns import MAX_PATTERN_LENGTH
from .selectors import DEFAULT_SAMPLE, SAMPLE_CHOICES

SAMPLE_FIELD_CHOICES = [(n, f"most recent {n:,} bounces") for n in SAMPLE_CHOICES]


class BounceRuleForm(forms.ModelForm):
    """The rule editor. The pattern is checked by the model (`BounceRule.clean`): RE2 syntax,
    length, not matching empty text. An empty position means "its default place"."""

    sample = forms.TypedChoiceField(
        choices=SAMPLE_FIELD_CHOICES, coerce=int, initial=DEFAULT_SAMPLE, required=False,
        label="Test against", help_text="Testing reads stored bounces, newest first.",
    )

    actions = forms.MultipleChoiceField(
        choices=BounceRule.Action.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Only with 'plus' or 'only' above: the actions added to, or replacing, the kind's policy.",
    )

    class Meta:
        model = BounceRule
        fields = [
            "name", "pattern", "match_type", "section", "case_sensitive", "bounce_type", "reason",
            "actions_mode", "actions", "message_action", "message_folder", "in_statistics", "fallback_only", "position", "enabled",
            "notes",
        ]
        widgets = {
            "pattern": forms.Textarea(attrs={"rows": 2, "maxlength": MAX_PATTERN_LENGTH, "spellcheck": "false"}),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False
        self.fields["position"].help_text = (
            "Rules are tried from the lowest position; the first match wins. Leave empty to place "
            "the rule after the others of its type (hard before soft before either)."
        )
        self.fields["name"].required = False
        self.fields["name"].help_text = "Empty: made from the pattern."

    def clean_actions(self) -> list[str]:
        return list(self.cleaned_data.get("actions") or [])

    def clean_sample(self) -> int:
        return self.cleaned_data.get("sample") or DEFAULT_SAMPLE

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("name") and cleaned.get("pattern"):
            short = " ".join(cleaned["pattern"].split())
            cleaned["name"] = short if len(short) <= 80 else short[:79] + "…"
            self.instance.name = cleaned["name"]
        return cleaned


class OctethPasteForm(forms.Form):
    """Many `text==>Hard` lines at once."""

    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="One rule per line: text==>Hard, text==>Soft or text==>Ignore. Lines starting with # are "
                  "skipped. Each rule gets its kind's policy (Bounce settings): ==>Hard marks, unsubscribes "
                  "and suppresses as the hard policy says.",
    )
    section = forms.ChoiceField(
        choices=BounceRule.Section.choices, initial=BounceRule.Section.BODY,
        help_text="Where the text is looked for (Octeth searches the message body).",
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Enable the new rules")


class RuleImportForm(forms.Form):
    """Upload of a JSON rules file (as written by export)."""

    file = forms.FileField(help_text="A JSON file written by 'Export rules' or `manage.py export_rules`.")
    replace = forms.BooleanField(
        required=False, label="Delete all existing rules first",
        help_text="Otherwise rules are added; a rule identical to an existing one is skipped.",
    )

    MAX_SIZE = 5 * 1024 * 1024

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_SIZE:
            raise forms.ValidationError("The file is larger than 5 MB; that is not a rules file.")
        return upload


class ReapplyForm(forms.Form):
    """Which stored bounces to re-examine with the current rules."""

    sample = forms.TypedChoiceField(
        choices=SAMPLE_FIELD_CHOICES, coerce=int, initial=DEFAULT_SAMPLE, label="Bounces",
    )
    only_unexplained = forms.BooleanField(
        required=False, label="Only bounces nothing explains (kind unknown, no rule)",
    )
