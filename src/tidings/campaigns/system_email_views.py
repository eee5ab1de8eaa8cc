"""Operator pages for the wording of system emails (the sign-up confirmation, the welcome and
the preference link, and the emails other apps register): served at /audience/emails/, next to
the audience's tools, but the emails are campaigns' (rendered in its sandbox, queued on its
outbox), so the pages are too."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tidings.lib.access import OperatorRequest, operator_required
from tidings.lib.audit import audit

from .mail import REQUIRED_VARIABLES, missing_variables, template_problems
from .models import SystemEmailTemplate


class SystemEmailForm(forms.Form):
    subject = forms.CharField(max_length=300)
    text_body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), label="Text")
    html_body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}), required=False, label="HTML (optional)"
    )

    def __init__(self, *args, key: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def clean(self):
        data = super().clean()
        for problem in template_problems(
            data.get("subject", ""),
            data.get("text_body", ""),
            data.get("html_body", ""),
            key=self.key,
        ):
            self.add_error(None, problem)
        return data


@operator_required(perm="settings")
def system_email_index(request: HttpRequest) -> HttpResponse:
    customised = set(SystemEmailTemplate.objects.values_list("key", flat=True))
    keys = [(key, label, key in customised) for key, label in SystemEmailTemplate.Key.choices]
    return render(request, "campaigns/system_email_index.html", {"keys": keys})


@operator_required(perm="settings")
def system_email_edit(request: OperatorRequest, key: str) -> HttpResponse:
    from tidings.campaigns.mail import DEFAULT_SYSTEM_EMAILS, render_system_email

    if key not in SystemEmailTemplate.Key.values:
        raise Http404("No such email.")
    row = SystemEmailTemplate.objects.filter(key=key).first()
    default = DEFAULT_SYSTEM_EMAILS[key]
    initial = (
        {"subject": row.subject, "text_body": row.text_body, "html_body": row.html_body}
        if row
        else {
            "subject": default["subject"],
            "text_body": default["text"],
            "html_body": default["html"],
        }
    )
    form = SystemEmailForm(request.POST or None, initial=initial, key=key)
    if request.method == "POST":
        if request.POST.get("reset"):
            if row:
                row.delete()
                audit("system_email.reset", actor=request.user, key=key)
            messages.success(request, "Back to the default wording.")
            return redirect("system-emails:edit", key=key)
        if form.is_valid():
            SystemEmailTemplate.objects.update_or_create(
                key=key, defaults={**form.cleaned_data, "updated_by": request.user}
            )
            audit("system_email.saved", actor=request.user, key=key)
            messages.success(request, "Saved.")
            return redirect("system-emails:edit", key=key)
    sample = {
        "name": "Ada Lovelace",
        "lists": ["Product news"],
        "changes": ["You may telephone me about these topics"],
        "confirm_url": settings.TIDINGS_BASE_URL + "/c/sample-link",
        "preferences_url": settings.TIDINGS_BASE_URL + "/p/sample-link",
        "unsubscribe_url": settings.TIDINGS_BASE_URL + "/u/sample-link",
    }
    try:
        preview = render_system_email(key, sample)
    except Exception:  # a broken saved template: the form shows why; no preview
        preview = None
    return render(
        request,
        "campaigns/system_email_edit.html",
        {
            "form": form,
            "key": key,
            "label": SystemEmailTemplate.Key(key).label,
            "customised": row is not None,
            # A wording saved before the form asked for what this email must show: it is
            # passed over (the default goes) whenever that has something to show.
            "left_out": [
                REQUIRED_VARIABLES[key][name]
                for name in missing_variables(key, row.text_body, row.html_body)
            ]
            if row is not None
            else [],
            "preview": preview,
        },
    )
