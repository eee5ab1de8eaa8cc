"""Saving and deleting layouts and templates: one action each, in a transaction, with its audit
entry (the template pages call these; nothing else writes them)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tidings.lib.audit import audit

from .models import Layout, Template
from .stale import check_version
from .template_forms import LayoutForm, TemplateForm


@transaction.atomic
def do_save_layout(form: LayoutForm, *, actor: Any) -> Layout:
    """Save a valid layout form (a new layout or changes to one)."""
    created = form.instance.pk is None
    layout: Layout = form.save()
    audit("layout.created" if created else "layout.saved", actor=actor, obj=layout)
    return layout


@transaction.atomic
def do_delete_layout(layout: Layout, *, actor: Any) -> None:
    """Delete a layout; raises ProtectedError (and writes nothing) while templates or campaigns
    use it."""
    audit("layout.deleted", actor=actor, obj=layout, name=layout.name)
    layout.delete()


@transaction.atomic
def do_save_template(
    form: TemplateForm, *, actor: Any, loaded_version: str | None = None
) -> Template:
    """Save a valid template form; a new template remembers who made it.  With
    ``loaded_version`` (the version the edit page was opened at), raises EditedMeanwhile when
    the template was saved since."""
    template: Template = form.save(commit=False)
    created = template.pk is None
    if not created:
        saved_at = (
            Template.objects.select_for_update()
            .filter(pk=template.pk)
            .values_list("updated_at", flat=True)
            .first()
        )
        check_version(loaded_version, saved_at, "template")
    if template.created_by_id is None:
        template.created_by = actor
    template.save()
    audit("template.created" if created else "template.saved", actor=actor, obj=template)
    return template


@transaction.atomic
def do_delete_template(template: Template, *, actor: Any) -> None:
    """Delete a template; campaigns made from it keep their own copy of the body."""
    audit("template.deleted", actor=actor, obj=template, name=template.name)
    template.delete()
