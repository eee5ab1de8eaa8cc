"""Forms for layouts and campaign templates.

``clean()`` runs the rendering checks (campaigns.rendering), so a template that would fail is
refused at save time.  Each problem is attached to the field it is about, with its line and
column, and kept in ``form.problems`` with the offending line and a caret for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms

from .models import Layout, Template
from .rendering import (
    DEFAULT_LAYOUT_NAME,
    TemplateProblem,
    check_layout,
    check_template,
    default_layout_html,
)

_CODE = {"rows": 16, "spellcheck": "false", "autocapitalize": "off", "class": "code"}

PART_LABELS = {
    "subject": "Subject",
    "preheader": "Preheader",
    "body": "Body",
    "text": "Plain text",
    "layout": "Layout",
}


@dataclass(frozen=True)
class ProblemView:
    """A problem as the edit page shows it."""

    label: str
    location: str
    message: str
    source_line: str
    caret: str

    @property
    def summary(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def problem_view(problem: TemplateProblem, source: str, label: str | None = None) -> ProblemView:
    """The problem with the line it is on, and a caret under its column (tabs as 4 spaces)."""
    line_text, caret = "", ""
    if problem.line is not None:
        lines = source.split("\n")
        if 0 < problem.line <= len(lines):
            raw = lines[problem.line - 1]
            line_text = raw.expandtabs(4)
            if problem.column:
                caret = " " * len(raw[: problem.column - 1].expandtabs(4)) + "^"
    return ProblemView(
        label=label or PART_LABELS.get(problem.part, problem.part.title()),
        location=problem.location,
        message=problem.message,
        source_line=line_text,
        caret=caret,
    )


class _CheckedForm(forms.ModelForm):
    #: TemplateProblem.part -> the form field it is shown at
    part_fields: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems: list[ProblemView] = []

    def _report(self, problems: list[TemplateProblem], sources: dict[str, str]) -> None:
        for problem in problems:
            field = self.part_fields.get(problem.part)
            view = problem_view(problem, sources.get(problem.part, ""))
            self.problems.append(view)
            self.add_error(field, view.summary)


class LayoutForm(_CheckedForm):
    part_fields = {"layout": "html", "text": "text"}

    class Meta:
        model = Layout
        fields = ["name", "html", "text"]
        labels = {"html": "HTML", "text": "Plain text"}
        help_texts = {
            "html": (
                "The frame around every campaign. It must contain {{ content }} (where the body "
                "goes), a link to {{ unsubscribe_url }}, a link to {{ preferences_url }} and "
                "your postal address, {{ controller.address }}. Styles in a &lt;style&gt; "
                "element are inlined when a campaign is sent."
            ),
            "text": (
                "Leave blank to derive the plain-text part from the HTML. If you write one, it "
                "needs {{ content }}, both links and the address too."
            ),
        }
        widgets = {"html": forms.Textarea(attrs=_CODE), "text": forms.Textarea(attrs=_CODE)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and not self.is_bound:
            self.initial.setdefault("html", default_layout_html())
            if not Layout.objects.exists():  # the first one: a name to keep, not to invent
                self.initial.setdefault("name", DEFAULT_LAYOUT_NAME)

    def clean(self):
        cleaned = super().clean()
        html, text = cleaned.get("html"), cleaned.get("text") or ""
        if html is not None:
            self._report(check_layout(html, text), {"layout": html, "text": text})
        return cleaned


class TemplateForm(_CheckedForm):
    part_fields = {"subject": "subject", "body": "body", "text": "text_body", "layout": "layout"}

    class Meta:
        model = Template
        fields = ["name", "layout", "format", "subject", "body", "text_body"]
        labels = {"text_body": "Plain text"}
        help_texts = {
            "subject": "Personalise it like the body: Hello {{ contact.first_name }}",
            "body": (
                "Markdown or HTML (HTML is cleaned of scripts and the like). Personalise with "
                "the variables listed below the form."
            ),
            "text_body": (
                "Leave blank to derive the plain-text part from the body. The same variables "
                "work here."
            ),
        }
        widgets = {
            "subject": forms.TextInput(attrs={"spellcheck": "true"}),
            "body": forms.Textarea(attrs={**_CODE, "rows": 20}),
            "text_body": forms.Textarea(attrs=_CODE),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subject"].required = True
        if self.instance.pk is None and not self.is_bound:
            default = Layout.objects.filter(name="Default").first() or Layout.objects.first()
            if default is not None:
                self.initial.setdefault("layout", default.pk)

    def clean(self):
        cleaned = super().clean()
        body, layout = cleaned.get("body"), cleaned.get("layout")
        if body is None or layout is None or "format" not in cleaned:
            return cleaned
        subject, text = cleaned.get("subject") or "", cleaned.get("text_body") or ""
        problems = check_template(subject, body, cleaned["format"], text, layout)
        for problem in problems:
            if problem.part == "layout":
                problem.message = f"the layout “{layout.name}” cannot be used: {problem.message}"
                problem.line = problem.column = None  # lines of the layout, not of this form
        self._report(problems, {"subject": subject, "body": body, "text": text})
        return cleaned
