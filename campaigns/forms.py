"""Forms of the campaign pages: the test send."""

from __future__ import annotations

from django import forms


class TestSendForm(forms.Form):
    """Send one test message of the campaign, rendered for a chosen recipient, to an address."""

    to = forms.EmailField(label="Send a test to", max_length=254,
                          widget=forms.EmailInput(attrs={"placeholder": "you@example.com",
                                                         "class": "form-control form-control-sm"}))
    contact = forms.IntegerField(required=False, widget=forms.HiddenInput)
