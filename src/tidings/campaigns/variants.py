"""A/B variants as rendering sees them: each variant applied to its campaign, and checked.

A campaign with an A/B test must have 2–4 variants, each different from the others in at least
one of subject, preheader, sender name or body, and each must render: a variant that does not is
refused before the campaign can be scheduled (``lifecycle.schedule_problems``), never found out
half-way through sending.  So is a test share too small to give every variant someone: 20% of
4 people is one person, and the variants nobody got could never win.
"""

from __future__ import annotations

from typing import Any

from .models import Campaign, Variant
from .rendering import CompiledMessage, TemplateProblem, check_template

MIN_VARIANTS, MAX_VARIANTS = 2, 4


def variant_problems(campaign: Campaign) -> list[tuple[str, str | None]]:
    """(message, form field) for each reason the campaign's A/B test cannot go ahead."""
    if not hasattr(campaign, "ab_test") and not campaign.variants.exists():
        return []
    variants = list(campaign.variants.all())
    problems: list[tuple[str, str | None]] = []
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        problems.append(
            (
                f"an A/B test needs {MIN_VARIANTS} to {MAX_VARIANTS} variants, not {len(variants)}",
                "variants",
            )
        )
    seen: dict[tuple, str] = {}
    for variant in variants:
        # As it would be sent: a blank field is the campaign's, so a variant that spells out
        # the campaign's own subject is the same as one that leaves it blank.
        view = variant.applied_to(campaign)
        sender_name = view.sender.name if view.sender is not None else variant.sender_name
        key = (view.subject, view.preheader, sender_name, view.body.strip())
        if key in seen:
            problems.append(
                (
                    f"variants {seen[key]} and {variant.label} are the same: change the subject, "
                    "preheader, sender name or body of one",
                    "variants",
                )
            )
        seen.setdefault(key, variant.label)
        problems += [
            (f"variant {variant.label}: {p}", "variants")
            for p in _render_problems(variant, campaign)
        ]
    if MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        problems += _size_problems(campaign, len(variants))
    return problems


def _size_problems(campaign: Campaign, variants: int) -> list[tuple[str, str | None]]:
    """The test share of the audience (as it is now, suppressed people included: at most the
    real number) must give each variant at least one person, as ``queue.assign_variants``
    splits it."""
    from tidings.audience.segments import SegmentError

    from .targeting import audience_count

    test = getattr(campaign, "ab_test", None)
    if test is None:
        return []
    try:
        people = audience_count(campaign)
    except SegmentError:
        return []  # the segment's own problem is reported (lifecycle._targeting_problems)
    tested = round(people * test.share / 100)
    if not people or tested >= variants:
        return []
    return [
        (
            f"the A/B test is too small: {test.share}% of {people} "
            f"{'person' if people == 1 else 'people'} is {tested}, fewer than its {variants} "
            "variants, so some would go to nobody and could never win; raise the test share, "
            "use fewer variants, or remove the test",
            "share",
        )
    ]


def _render_problems(variant: Variant, campaign: Campaign) -> list[str]:
    view = variant.applied_to(campaign)
    layout = view.layout
    if layout is None and view.template is not None:
        layout = view.template.layout
    found = [
        str(p)
        for p in check_template(
            view.subject, view.body, view.format, view.text_body, layout, preheader=view.preheader
        )
    ]
    if found:
        return found
    try:
        CompiledMessage.for_campaign(view)
    except TemplateProblem as exc:
        return [str(exc)]
    return []


def render_variant(variant: Variant, campaign: Campaign, contact: Any, links: Any):
    """The variant rendered as ``contact`` (previews).  Raises TemplateProblem."""
    return CompiledMessage.for_campaign(variant.applied_to(campaign)).render(contact, links)
