"""Staff pages for bounce rules: the editor with its test, coverage, re-apply (with undo), Octeth
paste, import, export. An interface: fetch, call one selector or service, render."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bounces.pipeline.decisions import describe_rule
from bounces.pipeline.policies import global_policy

from . import selectors, services
from .forms import BounceRuleForm, OctethPasteForm, ReapplyForm, RuleImportForm
from .models import BounceRule, RuleReapply
from .selectors import DEFAULT_SAMPLE, SAMPLE_CHOICES

VIEW = "bounces.view_bouncerule"
CHANGE = "bounces.change_bouncerule"
ADD = "bounces.add_bouncerule"
DELETE = "bounces.delete_bouncerule"
# Re-applying rules rewrites stored bounces' verdicts: its own permission (issue 15, part 3).
APPLY = "bounces.apply_bouncerule"
REAPPLY_PREVIEW_ROWS = 200

# Fields of the editor that a link may pre-fill (coverage page: "make a rule from this").
PREFILL = ("name", "pattern", "section", "match_type", "bounce_type", "reason")


def _sample(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("sample", DEFAULT_SAMPLE))
    except ValueError:
        return DEFAULT_SAMPLE
    return value if value in SAMPLE_CHOICES else DEFAULT_SAMPLE


def _changelist() -> str:
    return reverse("admin:bounces_bouncerule_changelist")


@staff_member_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Write or change a rule; "Test" runs the draft against stored bounces without saving."""
    rule = get_object_or_404(BounceRule, pk=pk) if pk else BounceRule()
    needed = CHANGE if pk else ADD
    if not request.user.has_perm(needed):
        return HttpResponse("You may not change bounce rules.", status=403)
    report = None
    if request.method == "POST":
        form = BounceRuleForm(request.POST, instance=rule)
        if form.is_valid():
            draft: BounceRule = form.save(commit=False)
            position = form.cleaned_data.get("position")
            if "_save" in request.POST or "_save_continue" in request.POST:
                try:
                    services.place_rule(rule=draft, position=position)
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    messages.success(request, f"Rule “{draft.name}” saved at position {draft.position}.")
                    if "_save_continue" in request.POST:
                        return redirect("bounces:rule_edit", pk=draft.pk)
                    return redirect(_changelist())
            else:
                if position is None:
                    draft.position = services.default_position(
                        bounce_type=draft.bounce_type, exclude_pk=draft.pk
                    )
                report = selectors.preview_draft_rule(rule=draft, limit=form.cleaned_data["sample"])
    else:
        initial = {name: request.GET[name] for name in PREFILL if request.GET.get(name)}
        form = BounceRuleForm(instance=rule, initial=initial)
    shown = form.instance if form.is_bound and not form.errors else rule
    return render(
        request,
        "bounces/rules/edit.html",
        {"form": form, "rule": rule, "report": report, "title": f"Rule: {rule.name}" if pk else "New rule",
         "effect": describe_rule(shown, global_policy())},
    )


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def rule_coverage(request: HttpRequest) -> HttpResponse:
    """Per rule: stored bounces it catches; and the unexplained bounces, grouped."""
    limit = _sample(request)
    coverage = selectors.rule_coverage(limit=limit)
    unexplained_count, groups = selectors.unexplained_groups(limit=limit)
    return render(
        request,
        "bounces/rules/coverage.html",
        {
            "coverage": coverage, "groups": groups, "unexplained_count": unexplained_count,
            "limit": limit, "sample_choices": SAMPLE_CHOICES, "title": "Rule coverage",
        },
    )


@staff_member_required
@permission_required(APPLY, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rule_reapply(request: HttpRequest) -> HttpResponse:
    """Re-apply the current rules to stored bounces: preview (GET with ?preview), apply (POST)."""
    plan = None
    if request.method == "POST":
        form = ReapplyForm(request.POST)
        if form.is_valid():
            # Planned again at apply time: what is written is what the rules say now.
            plan = services.plan_reapply(
                limit=form.cleaned_data["sample"], only_unexplained=form.cleaned_data["only_unexplained"]
            )
            batch = services.apply_reapply(plan=plan, actor=request.user)
            messages.success(request, f"{batch.changed} bounces changed. Each change can be undone here.")
            return redirect("bounces:rule_reapply_detail", pk=batch.pk)
    elif "preview" in request.GET:
        form = ReapplyForm(request.GET)
        if form.is_valid():
            plan = services.plan_reapply(
                limit=form.cleaned_data["sample"], only_unexplained=form.cleaned_data["only_unexplained"]
            )
    else:
        form = ReapplyForm()
    rules = BounceRule.objects.in_bulk([c.rule_id for c in plan.changes if c.rule_id]) if plan else {}
    shown = plan.changes[:REAPPLY_PREVIEW_ROWS] if plan else []
    names = _rule_names(v for c in shown for f, old, new in c.changes if f == "matched_rule" for v in (old, new))
    rows = [
        {"c": c, "fields": [(_FIELD_LABELS.get(f, f), _shown(f, old, names), _shown(f, new, names))
                            for f, old, new in c.changes]}
        for c in shown
    ]
    return render(
        request,
        "bounces/rules/reapply.html",
        {
            "form": form, "plan": plan, "rows": rows,
            "max_rows": REAPPLY_PREVIEW_ROWS, "rules": rules,
            "history": RuleReapply.objects.select_related("actor")[:20], "title": "Re-apply rules",
        },
    )


_FIELD_LABELS = {"matched_rule": "rule", "kind": "kind", "reason": "reason", "state": "state"}


def _rule_names(values: Iterable[str | int | None]) -> dict[str, str]:
    """Names of the rules whose ids appear in recorded changes (a deleted rule keeps its id)."""
    ids = {int(v) for v in values if v not in (None, "") and str(v).isdigit()}
    return {str(pk): name for pk, name in BounceRule.objects.filter(pk__in=ids).values_list("pk", "name")}


def _shown(field: str, value: str | int | None, names: dict[str, str]) -> str:
    """A changed value as an operator reads it: a rule by its name, not its database id."""
    if value in (None, ""):
        return ""
    if field == "matched_rule":
        name = names.get(str(value))
        return f"“{name}” (#{value})" if name else f"rule #{value} (deleted)"
    return str(value)


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def rule_reapply_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One re-apply and its changes, with the undo button."""
    batch = get_object_or_404(RuleReapply.objects.select_related("actor", "undone_by"), pk=pk)
    changes = list(batch.changes.select_related("bounce", "rule").order_by("bounce_id", "id")[:1000])
    names = _rule_names(v for c in changes if c.field == "matched_rule" for v in (c.old_value, c.new_value))
    for c in changes:
        c.old_shown = _shown(c.field, c.old_value, names)
        c.new_shown = _shown(c.field, c.new_value, names)
    return render(
        request, "bounces/rules/reapply_detail.html",
        {"batch": batch, "changes": changes, "title": f"Re-apply #{batch.pk}"},
    )


@staff_member_required
@permission_required(APPLY, raise_exception=True)
@require_POST
def rule_reapply_undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Undo one re-apply (fields changed again since are left alone)."""
    batch = get_object_or_404(RuleReapply, pk=pk)
    report = services.undo_reapply(reapply=batch, actor=request.user)
    text = f"Undone: {report.restored} fields set back."
    if report.conflicts:
        text += f" {report.conflicts} had changed again since and were left as they are."
    messages.success(request, text)
    return redirect("bounces:rule_reapply_detail", pk=batch.pk)


@staff_member_required
@permission_required(ADD, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rule_paste(request: HttpRequest) -> HttpResponse:
    """Paste Octeth one-liners (`text==>Hard`), one rule per line."""
    report = None
    if request.method == "POST":
        form = OctethPasteForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            report = services.create_rules_from_octeth(
                text=data["lines"], section=data["section"], enabled=data["enabled"],
            )
            if report.created and not report.errors:
                messages.success(request, f"{len(report.created)} rules created.")
                return redirect(_changelist())
    else:
        form = OctethPasteForm()
    return render(request, "bounces/rules/paste.html", {"form": form, "report": report, "title": "Paste rules"})


@staff_member_required
@permission_required(ADD, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rule_import(request: HttpRequest) -> HttpResponse:
    """Upload a JSON rules file."""
    error = ""
    if request.method == "POST":
        form = RuleImportForm(request.POST, request.FILES)
        if form.is_valid() and form.cleaned_data["replace"] and not request.user.has_perm(DELETE):
            error = "Replacing the rules deletes every existing rule: that needs the permission to delete rules."
        elif form.is_valid():
            try:
                rules = services.parse_import(form.cleaned_data["file"].read())
                report = services.import_rules(rules=rules, replace=form.cleaned_data["replace"])
            except services.RuleImportError as exc:
                error = str(exc)
            else:
                messages.success(
                    request,
                    f"{report.created} rules imported, {report.skipped} already present"
                    + (f", {report.deleted} deleted first." if form.cleaned_data["replace"] else "."),
                )
                return redirect(_changelist())
    else:
        form = RuleImportForm()
    return render(request, "bounces/rules/import.html", {"form": form, "error": error, "title": "Import rules"})


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def rule_export(request: HttpRequest) -> HttpResponse:
    """All rules as a JSON download."""
    return export_response(BounceRule.objects.order_by("position", "id"))


def export_response(rules: object) -> HttpResponse:
    """A JSON attachment of ``rules`` (an iterable of BounceRule)."""
    response = HttpResponse(services.export_rules_json(rules=rules), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="bounce-rules.json"'
    return response
