"""Merge fields in a campaign's subject and bodies: Django's template language, sandboxed.

Staff are semi-trusted and write the templates: the engine knows only the plain tags
(if, for, with, firstof, ...) and the built-in filters; no {% load %}, {% include %},
{% extends %}, {% debug %}, {% url %} or {% csrf_token %}. The context holds strings only
(name, email, unsubscribe_url), so a template reaches no object, method or setting.
A missing field renders as nothing. Line breaks in the values become spaces, so a
contact's name can never add a header line (a line break the operator typed into the
subject is still refused by the header check at send time).
"""

from __future__ import annotations

from functools import lru_cache

from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)

register = Library()
SAFE_TAGS = ("if", "for", "with", "firstof", "comment", "spaceless", "autoescape", "filter", "cycle",
             "ifchanged", "now", "verbatim", "templatetag", "resetcycle", "regroup")
for _name in SAFE_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
register.filters.update(defaultfilters.register.filters)

ENGINE = Engine(debug=False, string_if_invalid="", loaders=[])
# Replace the default builtins (defaulttags, defaultfilters, loader_tags) with the safe set.
ENGINE.template_builtins = [register]
ENGINE.template_libraries = {}

FIELDS = ("name", "email", "unsubscribe_url")
TEMPLATE_MARKS = ("{{", "{%", "{#")


class MergeError(ValueError):
    """A campaign text that is not a valid template."""


@lru_cache(maxsize=64)
def _compiled(source: str):
    return ENGINE.from_string(source)


def render_text(source: str, values: dict[str, str], *, html: bool = False) -> str:
    """Render one text with `values` (escaped for HTML when `html`)."""
    if not any(mark in source for mark in TEMPLATE_MARKS):
        return source
    try:
        template = _compiled(source)
    except TemplateSyntaxError as exc:
        raise MergeError(str(exc)) from None
    rendered = template.render(Context({k: str(values.get(k, "")) for k in FIELDS}, autoescape=html))
    # Template.render marks its output safe (SafeString). It is mail text, never markup for
    # our own pages: a plain str makes the preview page escape a contact's name.
    return "".join([rendered])


def merge_problem(*, subject: str, body_text: str, body_html: str) -> str:
    """Why the texts cannot be rendered ("" when they can)."""
    for label, source in (("subject", subject), ("text body", body_text), ("HTML body", body_html)):
        if not any(mark in source for mark in TEMPLATE_MARKS):
            continue
        try:
            _compiled(source)
        except TemplateSyntaxError as exc:
            return f"The {label} has a merge-field error: {exc}"
    return ""


def render_message(*, subject: str, body_text: str, body_html: str, name: str, email: str,
                   unsubscribe_url: str) -> tuple[str, str, str]:
    """(subject, text, html) for one recipient."""
    values = {"name": name, "email": email, "unsubscribe_url": unsubscribe_url}
    one_line = {key: " ".join(value.split()) for key, value in values.items()}
    rendered_subject = render_text(subject, one_line)
    text = render_text(body_text, values) if body_text else ""
    html = render_text(body_html, values, html=True) if body_html else ""
    return rendered_subject, text, html
