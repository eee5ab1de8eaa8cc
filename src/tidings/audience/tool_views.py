"""Operator pages for imports, sign-up forms and consent proof."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tidings.lib.access import OperatorRequest, operator_required
from tidings.lib.audit import audit
from tidings.lib.csv_export import streamed_csv
from tidings.policy import get_policy
from tidings.policy.plain import field_title

from . import actions, consent
from .access import contact_or_404
from .forms import render_embed_snippet
from .imports import COUNTERS, percent_done, preview
from .imports.exporters import by_key
from .imports.lease import is_interrupted, resume_command, status_text
from .models import Import, MailingList, SignupForm

MAX_UPLOAD_BYTES = getattr(settings, "TIDINGS_MAX_IMPORT_BYTES", 1024**3)


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV or Excel file",
        help_text="An export of Mailchimp, listmonk, Brevo, HubSpot, Kit, MailerLite or Substack, "
        "or any CSV file (a spreadsheet saved as CSV, Excel's Unicode Text): UTF-8, "
        "Windows-1252, Mac Roman or UTF-16; separated by , ; tab or |. Or an Excel workbook "
        "(.xlsx): its first sheet is imported (save an .xls or .ods as .xlsx or CSV first).",
    )
    mailing_list = forms.ModelChoiceField(
        MailingList.objects.filter(closed_at__isnull=True), label="List"
    )
    consent_source = forms.CharField(
        max_length=1000,
        label="How did these people consent?",
        help_text='Kept as the wording of each consent event, e.g. "sign-up sheet at our stand, '
        'Chester fair 2026".',
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // 1024**2} MB; import it with "
                "`tidings import contacts` on the server instead."
            )
        return upload


@operator_required(perm="content")
def import_index(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        imp = preview.start_check(
            mailing_list=data["mailing_list"],
            consent_source=data["consent_source"],
            operator=request.user,
            original_filename=data["file"].name,
            upload=data["file"].chunks(),
        )
        return redirect("audience:import", import_id=imp.pk)
    imports = list(Import.objects.select_related("mailing_list").order_by("-pk")[:50])
    for imp in imports:
        imp.status_text = status_text(imp)  # type: ignore[attr-defined]
    return render(request, "audience/import_index.html", {"form": form, "imports": imports})


def _progress(imp: Import) -> dict:
    interrupted = is_interrupted(imp)
    resumable = interrupted or (imp.status == Import.Status.FAILED and imp.error == "interrupted")
    return {
        "status": "interrupted" if interrupted else imp.status,
        "status_text": status_text(imp),
        "percent": percent_done(imp),
        **{name: getattr(imp, name) for name in COUNTERS},
        "done": interrupted or imp.status in (Import.Status.FINISHED, Import.Status.FAILED),
        "resume_command": resume_command(imp) if resumable else "",
    }


@operator_required(perm="content")
def import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    imp = get_object_or_404(Import.objects.select_related("mailing_list"), pk=import_id)
    progress = _progress(imp)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse(progress)
    if imp.status in (Import.Status.CHECKING, Import.Status.READY):
        checked = imp.preview or {}
        context = {
            "imp": imp,
            "preview": preview.build_preview(imp),
            "checked": checked,
            "outcomes": preview.outcome_rows(checked.get("counts", {})),
            "exporter": by_key(checked.get("exporter", "")).label,
        }
        return render(request, "audience/import_preview.html", context)
    context = {"imp": imp, "progress": progress, "outcomes": preview.outcome_rows(progress)}
    return render(request, "audience/import_detail.html", context)


@operator_required(perm="content")
@require_POST
def import_columns(request: OperatorRequest, import_id: int) -> HttpResponse:
    """The operator's choice of how each column is used (as --map does), then a new check."""
    imp = get_object_or_404(Import, pk=import_id)
    choices: dict[int, str] = {}
    for key, value in request.POST.items():
        if key.startswith("col-") and key[4:].isdigit():
            choices[int(key[4:])] = str(value)
    try:
        dates = request.POST.get("dates")  # absent when the file has no consent dates
        preview.do_remap_import(imp, choices, actor=request.user, dates=dates)
    except preview.ImportStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Columns saved: the file is being checked again.")
    return redirect("audience:import", import_id=imp.pk)


@operator_required(perm="content")
@require_POST
def import_confirm(request: HttpRequest, import_id: int) -> HttpResponse:
    imp = get_object_or_404(Import, pk=import_id)
    try:
        preview.do_confirm_import(imp, actor=request.user)
    except preview.ImportStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Import confirmed: it runs in the background.")
    return redirect("audience:import", import_id=imp.pk)


@operator_required(perm="content")
@require_POST
def import_cancel(request: HttpRequest, import_id: int) -> HttpResponse:
    imp = get_object_or_404(Import, pk=import_id)
    try:
        preview.do_cancel_import(imp, actor=request.user)
    except preview.ImportStateError as exc:
        messages.error(request, str(exc))
        return redirect("audience:import", import_id=imp.pk)
    messages.success(request, "Import cancelled; the uploaded file is deleted.")
    return redirect("audience:imports")


@operator_required(perm="content")
def import_report(request: OperatorRequest, import_id: int) -> HttpResponseBase:
    imp = get_object_or_404(Import, pk=import_id)
    path = imp.report_path
    if path is None or not path.exists():
        raise Http404("This import has no bad-rows report.")
    audit("export.import_report", actor=request.user, obj=imp)
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=f"import-{imp.pk}-bad-rows.csv"
    )


# --- sign-up forms --------------------------------------------------------------------------


class SignupFormForm(forms.Form):
    # Labels and messages for someone who has never met a "slug" or a "redirect URL".
    name = forms.CharField(max_length=200, help_text="For you, to find it again.")
    slug = forms.SlugField(
        max_length=80,
        label="Web address (slug)",
        help_text="The form's address: /f/&lt;slug&gt; — letters, numbers and hyphens, "
        "for example monthly-news.",
        error_messages={
            "invalid": "Use only letters, numbers, hyphens and underscores, with no spaces: "
            "for example monthly-news."
        },
    )
    lists = forms.ModelMultipleChoiceField(
        MailingList.objects.filter(closed_at__isnull=True),
        widget=forms.CheckboxSelectMultiple,
        help_text="What people sign up to.",
        error_messages={"required": "Tick at least one list for people to sign up to."},
    )
    optional_fields = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Required fields are always asked; only the policy's optional ones can be added.",
    )
    channels = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also ask consent for",
        help_text="Unticked by default for the visitor.",
    )
    intro = forms.CharField(
        required=False,
        label="Introduction",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="A sentence or two above the form (optional).",
    )
    consent_wording = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Blank: generated from the policy.",
    )
    thank_you = forms.CharField(
        required=False,
        label="Thank-you message",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown on our thank-you page after someone signs up. Blank: a standard one.",
    )
    redirect_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Your own thank-you page (optional)",
        help_text="An address on your website to send people to instead of our thank-you page.",
        error_messages={"invalid": "Give a whole web address, such as https://example.com/thanks."},
    )
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="Open for sign-ups",
        help_text="Untick to close the form: its page and snippet stop taking sign-ups.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        policy = get_policy()
        self.fields["optional_fields"].choices = [
            (f, field_title(f)) for f in policy.fields_for("newsletter").optional
        ]
        self.fields["channels"].choices = [
            (c, c) for c in policy.marketing.channels if c != "email"
        ]


@operator_required(perm="content")
def signup_form_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "audience/signup_form_index.html",
        {"forms": SignupForm.objects.prefetch_related("lists")},
    )


@operator_required(perm="content")
def signup_form_edit(request: HttpRequest, form_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(SignupForm, pk=form_id) if form_id else None
    initial = None
    if instance:
        initial = {f: getattr(instance, f) for f in actions.SIGNUP_FORM_FIELDS}
        initial["lists"] = list(instance.lists.all())
    form = SignupFormForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        lists = values.pop("lists")
        try:
            if instance:
                actions.do_update_signup_form(instance, actor=request.user, lists=lists, **values)
            else:
                instance = actions.do_create_signup_form(actor=request.user, lists=lists, **values)
        except actions.SignupFormInvalid as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        else:
            messages.success(request, f"Saved sign-up form {instance.name}.")
            return redirect("audience:signup-form-edit", form_id=instance.pk)
    context: dict[str, Any] = {"form": form, "instance": instance}
    if instance:
        context["hosted_url"] = settings.TIDINGS_BASE_URL + reverse(
            "public:signup", args=[instance.slug]
        )
        context["snippet"] = render_embed_snippet(instance)
    return render(request, "audience/signup_form_edit.html", context)


# --- consent proof --------------------------------------------------------------------------


@operator_required(perm="privacy")
def consent_proof(request: HttpRequest, contact_id: int) -> HttpResponseBase:
    """Everything the ledger holds about one person's consent, as CSV: the proof to show."""
    contact = contact_or_404(contact_id)
    header, rows = consent.proof_table(contact)
    audit("export.consent_proof", actor=request.user, obj=contact)
    return streamed_csv(f"consent-proof-contact-{contact.pk}.csv", header, rows)
