"""Saving and deleting layouts and templates: one action each, in a transaction, with its audit
entry (the template pages call these; nothing else writes them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q

from tidings import signals
from tidings.lib.audit import audit
from tidings.lib.stale import check_version

from .models import Campaign, Layout, Template
from .reconfirm import void_changed_confirmations
from .template_forms import LayoutForm, TemplateForm


@transaction.atomic
def do_save_layout(form: LayoutForm, *, actor: Any) -> Layout:
    """Save a valid layout form (a new layout or changes to one).  With four-eyes sending, a
    campaign confirmed with the layout as it was needs confirming again (``reconfirm``)."""
    created = form.instance.pk is None
    layout: Layout = form.save()
    audit("layout.created" if created else "layout.saved", actor=actor, obj=layout)
    if not created:
        _content_changed(f"its layout “{layout.name}”", actor)
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
    if not created:  # a campaign reads its template's body or layout when it has none of its own
        _content_changed(f"its template “{template.name}”", actor)
    return template


def _content_changed(what: str, actor: Any) -> None:
    """Four-eyes sending: void the confirmations the save changes, the campaigns' here and the
    journeys' (an app above this one) through ``signals.mail_content_changed``."""
    void_changed_confirmations(what, actor=actor)
    signals.mail_content_changed.send(
        sender=Template, what=what, actor_id=getattr(actor, "pk", None)
    )


@transaction.atomic
def do_delete_template(template: Template, *, actor: Any) -> None:
    """Delete a template; campaigns made from it keep their own copy of the body."""
    audit("template.deleted", actor=actor, obj=template, name=template.name)
    template.delete()


# --- mail going out now ----------------------------------------------------------------------
# Sending needs the "send" permission; a template or layout that mail going out reads when it is
# sent is sending too: saving it changes what people get with nobody who may send seeing it.
LiveUses = Callable[[Template | None, Layout | None], list[str]]
_LIVE_USES: list[LiveUses] = []
_LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED)


def register_live_uses(find: LiveUses) -> None:
    """Another app's mail made from templates (journeys): ``find(template, layout)`` names what
    of it reads this template, or a template in this layout, when it is sent."""
    if find not in _LIVE_USES:
        _LIVE_USES.append(find)


def live_uses(*, template: Template | None = None, layout: Layout | None = None) -> list[str]:
    """What is going out (or will, without anyone confirming it again) with this template's or
    this layout's words: campaigns scheduled, sending or paused that read them when each message
    is made, and other apps' mail (``register_live_uses``).  [] when nothing is."""
    live = Campaign.objects.filter(status__in=_LIVE).order_by("name", "pk")
    if template is not None:
        # A campaign keeps its own copy of the body; only a blank body (or no layout of its own)
        # reads the template's when it is sent (CompiledMessage.for_campaign).
        campaigns = [
            c
            for c in live.filter(template=template)
            if not (c.body or "").strip() or c.layout_id is None
        ]
    else:
        campaigns = list(live.filter(Q(layout=layout) | Q(layout=None, template__layout=layout)))
    names = [f"the campaign “{c.name}”" for c in campaigns]
    for find in _LIVE_USES:
        names += find(template, layout)
    return names


def segment_live_uses(segment: Any) -> list[str]:
    """The campaigns scheduled, sending or paused whose audience is chosen from ``segment``
    (for ``audience.segment_uses``): the same states in which a template or layout is refused
    to a writer, so the rule reads the same on every page (a scheduled campaign chooses its
    people from the segment when it starts)."""
    campaigns = Campaign.objects.filter(status__in=_LIVE, segments=segment).order_by("name", "pk")
    return [f"the campaign “{c.name}”" for c in campaigns]
