"""Operator pages for saved segments: edit with the errors shown in place, live count, export."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from tidings.lib.access import has_permission, operator_required
from tidings.lib.audit import audit
from tidings.lib.csv_export import streamed_csv

from . import operator, segment_uses
from .models import Segment
from .operator_forms import contact_fields
from .segments import SegmentError, count_segment, segment_queryset, validate_segment


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "query", "description"]
        widgets = {
            "query": forms.Textarea(
                attrs={"rows": 3, "spellcheck": "false", "data-segment-count": ""}
            ),
            "description": forms.Textarea(attrs={"rows": 2}),
        }


def _check(query: str) -> dict:
    """Errors (with caret lines) and, when there are none, the number of matching contacts."""
    errors = validate_segment(query) if query.strip() else []
    if errors:
        return {
            "count": None,
            "errors": [
                {"message": str(e), "line": e.source_line, "caret": e.caret} for e in errors
            ],
        }
    return {"count": count_segment(query) if query.strip() else None, "errors": []}


@operator_required(perm="content")
def segment_index(request: HttpRequest) -> HttpResponse:
    return render(request, "audience/segment_index.html", {"segments": Segment.objects.all()})


def _live_uses(request: HttpRequest, segment: Segment | None) -> list[str]:
    """The mail going out now that chooses its people from this segment, when the operator may
    not send (a writer): saving or deleting it would change who gets it with nobody who may send
    seeing it.  [] when they may."""
    if segment is None or has_permission(request.user, "send"):
        return []
    return segment_uses.live_uses(segment)


@operator_required(perm="content")
def segment_edit(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Segment, pk=segment_id) if segment_id else None
    form = SegmentForm(request.POST or None, instance=instance)
    live = _live_uses(request, instance)
    check = None
    refused = False
    if request.method == "POST":
        check = _check(request.POST.get("query", ""))
        refused = bool(request.POST.get("save") and live)
        if request.POST.get("save") and not refused and form.is_valid():
            segment = operator.do_save_segment(form, actor=request.user)
            messages.success(request, f"Saved segment {segment.name}.")
            return redirect("audience:segments")
    elif instance:
        check = _check(instance.query)
    return render(
        request,
        "audience/segment_edit.html",
        {"form": form, "instance": instance, "check": check, "live_uses": live},
        status=403 if refused else 200,
    )


@require_GET
@operator_required(perm="content")
def segment_count(request: HttpRequest) -> JsonResponse:
    """For the live count under the query box: errors or the count, as JSON."""
    return JsonResponse(_check(request.GET.get("q", "")[:4000]))


@require_POST
@operator_required(perm="content")
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    live = _live_uses(request, segment)
    if live:
        form = SegmentForm(instance=segment)
        context = {"form": form, "instance": segment, "check": None, "live_uses": live}
        return render(request, "audience/segment_edit.html", context, status=403)
    operator.do_delete_segment(segment, actor=request.user)
    messages.success(request, "Segment deleted.")
    return redirect("audience:segments")


@operator_required(perm="privacy")
def segment_export(request: HttpRequest, segment_id: int) -> HttpResponseBase:
    """The segment's contacts as CSV, streamed."""
    segment = get_object_or_404(Segment, pk=segment_id)
    try:
        contacts = segment_queryset(segment.query)
    except SegmentError as exc:
        messages.error(request, f"This segment no longer works: {exc}")
        return redirect("audience:segment-edit", segment_id=segment.pk)
    fields = contact_fields()
    rows = (
        [getattr(c, f) for f in fields]
        for c in contacts.order_by("pk").only(*fields).iterator(chunk_size=2000)
    )
    audit("export.segment", actor=request.user, obj=segment)
    return streamed_csv(f"segment-{segment.pk}.csv", fields, rows)
