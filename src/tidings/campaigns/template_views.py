"""Operator pages for layouts and campaign templates: list, edit (problems shown at save time
with line and column), preview as a chosen contact, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, ProtectedError, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from tidings.audience.models import Contact
from tidings.lib.access import has_permission, operator_required
from tidings.lib.stale import EditedMeanwhile, version_of
from tidings.media.queries import picker_choices

from . import template_actions
from .blocks import pages
from .blocks.editor import BlockEditor
from .blocks.starters import STARTERS, starter
from .models import Layout, Template
from .rendering import (
    LAYOUT_VARIABLES,
    SAMPLE_CONTACT,
    VARIABLES,
    CompiledMessage,
    MessageLinks,
    Rendered,
    TemplateProblem,
)
from .template_forms import LayoutForm, ProblemView, TemplateForm

_PREVIEW_BODY = """\
## Your campaign goes here

Hello {{ contact.first_name | default("there") }}, this is sample text in place of a campaign's
body, with a [link](https://example.com/) and a short list:

- one
- two
"""


def _preview_links() -> MessageLinks:
    # Harmless, working pages rather than real links: a preview must not hand out a real
    # unsubscribe token, and a template has no web version to "view in your browser".
    return pages.preview_links()


@dataclass
class _Choice:
    contact: Any
    query: str
    matches: list[Contact]
    is_sample: bool


def _choose_contact(request: HttpRequest) -> _Choice:
    """The contact named by ?contact= (an id, or part of an email address or name), or the
    fictional sample contact."""
    query = request.GET.get("contact", "").strip()[:254]
    matches: list[Contact] = []
    contact = None
    if query.lstrip("#").isdigit():
        contact = Contact.objects.filter(pk=int(query.lstrip("#"))).first()
    elif query:
        contact = Contact.objects.with_email(query).first()
        if contact is None:
            found = Q(email__icontains=query) | Q(name__icontains=query)
            matches = list(Contact.objects.filter(found).order_by("email")[:10])
            if len(matches) == 1:
                contact, matches = matches[0], []
    return _Choice(
        contact=contact or SAMPLE_CONTACT, query=query, matches=matches, is_sample=contact is None
    )


def _preview(request: HttpRequest, title: str, make: Any, context: dict[str, Any]) -> HttpResponse:
    choice = _choose_contact(request)
    rendered: Rendered | None = None
    problem = None
    try:
        rendered = make().render(choice.contact, _preview_links())
    except TemplateProblem as exc:
        problem = exc
    return render(
        request,
        "campaigns/templates_ui/preview.html",
        {
            **context,
            "title": title,
            "choice": choice,
            "rendered": rendered,
            "problem": problem,
            "phone": request.GET.get("width") == "phone",
        },
    )


@operator_required(perm="content")
def index(request: HttpRequest) -> HttpResponse:
    layouts = Layout.objects.annotate(template_count=Count("templates")).order_by("name")
    templates = Template.objects.select_related("layout").order_by("name")
    return render(
        request, "campaigns/templates_ui/index.html", {"layouts": layouts, "templates": templates}
    )


@operator_required(perm="content")
def layout_edit(request: HttpRequest, layout_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Layout, pk=layout_id) if layout_id else None
    form = LayoutForm(request.POST or None, instance=instance)
    live = _live_uses(request, layout=instance)
    if request.method == "POST" and live:
        context: dict[str, Any] = {"form": form, "instance": instance, "live_uses": live}
        context["variables"] = {**LAYOUT_VARIABLES, **VARIABLES}
        return render(request, "campaigns/templates_ui/layout_edit.html", context, status=403)
    if request.method == "POST" and form.is_valid():
        layout = template_actions.do_save_layout(form, actor=request.user)
        messages.success(request, f"Saved layout {layout.name}.")
        if instance is None and request.GET.get("then") == "template":
            # Sent here from "New template" on a new installation: back to what was asked for.
            return redirect("templates_ui:template-new")
        return redirect("templates_ui:layout-preview", layout.pk)
    return render(
        request,
        "campaigns/templates_ui/layout_edit.html",
        {
            "form": form,
            "instance": instance,
            "variables": {**LAYOUT_VARIABLES, **VARIABLES},
            "live_uses": live,
        },
    )


@operator_required(perm="content")
def layout_preview(request: HttpRequest, layout_id: int) -> HttpResponse:
    layout = get_object_or_404(Layout, pk=layout_id)

    def make() -> CompiledMessage:
        return CompiledMessage.from_sources(
            subject=f"Preview of the layout {layout.name}",
            body=_PREVIEW_BODY,
            layout_html=layout.html,
            layout_text=layout.text,
        )

    return _preview(request, f"Layout {layout.name}", make, {"layout": layout})


@require_POST
@operator_required(perm="content")
def layout_delete(request: HttpRequest, layout_id: int) -> HttpResponse:
    layout = get_object_or_404(Layout, pk=layout_id)
    try:
        template_actions.do_delete_layout(layout, actor=request.user)
    except ProtectedError:
        messages.error(
            request, f"The layout {layout.name} is still used by templates or campaigns."
        )
        return redirect("templates_ui:layout-edit", layout.pk)
    messages.success(request, f"Deleted layout {layout.name}.")
    return redirect("templates_ui:index")


def _live_uses(
    request: HttpRequest, *, template: Template | None = None, layout: Layout | None = None
) -> list[str]:
    """The mail going out now that reads this template or layout, when the operator may not
    send (a writer): saving it would send their words unseen.  [] when they may save."""
    if (template is None and layout is None) or has_permission(request.user, "send"):
        return []
    return template_actions.live_uses(template=template, layout=layout)


def _layout_of(form: Any, fallback: Any = None) -> Any:
    value = form["layout"].value()
    try:
        return Layout.objects.filter(pk=int(value)).first() or fallback
    except (TypeError, ValueError):
        return fallback


@operator_required(perm="content")
def template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Template, pk=template_id) if template_id else None
    if instance is None and not Layout.objects.exists():
        messages.info(
            request,
            "A template needs a layout, the frame around every email: save this one (you can "
            "change it later), then choose your template's design.",
        )
        return redirect(reverse("templates_ui:layout-new") + "?then=template")
    if (
        instance is None
        and request.method == "GET"
        and not request.GET.keys() & {"starter", "format"}
    ):
        return render(
            request, "campaigns/templates_ui/template_start.html", {"starters": STARTERS.values()}
        )
    data = request.POST.copy() if request.method == "POST" else None
    initial = {}
    if instance is None and data is None:  # a starter, a blank document, or another format
        chosen = starter(request.GET.get("starter", ""))
        fmt = request.GET.get("format", "blocks")
        fmt = fmt if fmt in Template.Format.values else "blocks"
        body = chosen.body() if chosen else ""
        initial = {"format": fmt, "body": body}
        if chosen:
            initial |= {"name": chosen.name, "subject": chosen.subject}
        fmt, editor = pages.bind(None, stored_format=fmt, stored_body=body)
    else:
        fmt, editor = pages.bind(
            data,
            stored_format=instance.format if instance else "blocks",
            stored_body=instance.body if instance else "",
        )
    form = TemplateForm(data, instance=instance, initial=initial)
    editing = data is not None and (data.get("op") or "") != ""
    # The version this page was opened at travels with every post of it (block edits too).
    loaded = data.get("loaded_version", "") if data is not None else ""
    edited_meanwhile = ""
    if data is None and instance is not None:
        loaded = version_of(instance.updated_at)
    live = _live_uses(request, template=instance)
    refused = data is not None and not editing and bool(live)
    if data is not None and not editing and not refused and form.is_valid():
        try:
            template = template_actions.do_save_template(
                form, actor=request.user, loaded_version=(loaded or None) if instance else None
            )
        except EditedMeanwhile as exc:
            edited_meanwhile, loaded = str(exc), exc.current
        else:
            messages.success(request, f"Saved template {template.name}.")
            return redirect("templates_ui:template-preview", template.pk)
    if editor is not None:
        form.fields["body"].widget = forms.HiddenInput()
    context, traced = pages.page_context(
        editor,
        subject=form["subject"].value() or "",
        layout=_layout_of(form, instance.layout if instance else None),
        saving_failed=data is not None and not editing and bool(form.errors),
    )
    if traced:
        form.problems = [
            ProblemView(label="Blocks", location="", message=m, source_line="", caret="")
            for m in traced
        ] + [p for p in form.problems if p.label != "Body"]
    return render(
        request,
        "campaigns/templates_ui/template_edit.html",
        {
            "form": form,
            "instance": instance,
            "variables": VARIABLES,
            "fmt": fmt,
            "loaded_version": loaded,
            "edited_meanwhile": edited_meanwhile,
            "live_uses": live,
            **context,
        },
        status=403 if refused else 200,
    )


@require_POST
@operator_required(perm="content")
def blocks_preview(request: HttpRequest) -> JsonResponse:
    """The editor's live preview: the form as it is now (nothing saved), as JSON."""
    editor = BlockEditor.from_post(request.POST)
    layout = None
    layout_id = request.POST.get("layout", "")
    if layout_id.isdigit():
        layout = Layout.objects.filter(pk=int(layout_id)).first()
    result = pages.preview(editor, subject=request.POST.get("subject", ""), layout=layout)
    return JsonResponse(result.as_json())


@require_GET
@operator_required(perm="content")
def blocks_pictures(request: HttpRequest) -> JsonResponse:
    """The media library's pictures, for the editor's pickers to refresh themselves when its tab
    is back in view (a picture was just uploaded in the tab the upload link opened)."""
    return JsonResponse(
        {
            "pictures": [
                {"path": path, "label": label, "alt": alt} for path, label, alt in picker_choices()
            ]
        }
    )


@operator_required(perm="content")
def template_preview(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(Template.objects.select_related("layout"), pk=template_id)
    return _preview(
        request,
        f"Template {template.name}",
        lambda: CompiledMessage.for_template(template),
        {"template": template},
    )


@require_POST
@operator_required(perm="content")
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(Template, pk=template_id)
    template_actions.do_delete_template(template, actor=request.user)
    messages.success(request, f"Deleted template {template.name}.")
    return redirect("templates_ui:index")
