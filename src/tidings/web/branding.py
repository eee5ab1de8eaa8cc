"""The company's look on the public pages: logo, colours and font, with WCAG AA contrast checked.

The public pages (sign-up forms, preference centre, unsubscribe, rights requests, the contact
form, demo booking and the archive) are the ones whose URL namespace is in
``PUBLIC_NAMESPACES``; operator pages keep tidings' own look.  Colours become the stylesheet's
custom properties (``--bg``, ``--text``, ``--accent``...), so every element already styled
with them follows.  Fonts are system font stacks: nothing is downloaded from a font service
(which would tell it who visits the page).

Contrast (``check``): body text on the background, links on the background and button text on
the button colour must each reach 4.5:1 (WCAG 2.x, 1.4.3 AA for normal text); the derived muted
text colour is chosen to reach it too.  A choice that falls short is refused with the ratio
and a colour that would pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from tidings.lib.contrast import (
    AA_TEXT,
    contrast_ratio,
    luminance,
    mix,
    nearest_passing,
    readable_on,
)

PUBLIC_NAMESPACES = frozenset({"public", "booking_public", "crm_public", "rights", "archive"})

FONTS: dict[str, tuple[str, str]] = {
    "system": (
        "System (the visitor's own)",
        'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif',
    ),
    "humanist": (
        "Humanist sans-serif",
        '"Segoe UI", Candara, "Gill Sans", "Noto Sans", Optima, Arial, sans-serif',
    ),
    "geometric": (
        "Geometric sans-serif",
        'Avenir, Montserrat, Corbel, "URW Gothic", "Century Gothic", sans-serif',
    ),
    "serif": ("Serif", 'Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif'),
    "slab": (
        "Slab serif",
        'Rockwell, "Rockwell Nova", "Roboto Slab", "DejaVu Serif", "Sitka Small", serif',
    ),
    "mono": (
        "Monospace",
        'ui-monospace, "Cascadia Code", "Source Code Pro", Menlo, Consolas, monospace',
    ),
}


_mix = mix


def passing_colour(colour: str, background: str, ratio: float = AA_TEXT) -> str:
    """The colour nearest to ``colour`` that reaches ``ratio`` against ``background``."""
    return nearest_passing(colour, background, ratio)


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


def check(background: str, text: str, accent: str) -> list[Problem]:
    """What keeps these colours from meeting WCAG AA; [] when they do."""
    problems = []
    pairs = [
        ("text", "Body text", text, background),
        ("accent", "Links", accent, background),
    ]
    for field, what, colour, against in pairs:
        ratio = contrast_ratio(colour, against)
        if ratio < AA_TEXT:
            problems.append(
                Problem(
                    field,
                    f"{what} ({colour}) on the background ({against}) have a contrast of "
                    f"{ratio:.2f}:1; WCAG AA needs at least {AA_TEXT}:1 for text. "
                    f"{passing_colour(colour, against)} would pass.",
                )
            )
    on_accent = readable_on(accent)
    ratio = contrast_ratio(on_accent, accent)
    if ratio < AA_TEXT:
        problems.append(
            Problem(
                "accent",
                f"No text colour is readable on buttons of {accent}: even "
                f"{'black' if on_accent == '#000000' else 'white'} reaches only {ratio:.2f}:1 "
                f"(AA needs {AA_TEXT}:1). {passing_colour(accent, on_accent)} would pass.",
            )
        )
    return problems


@dataclass(frozen=True)
class Palette:
    """The stylesheet's custom properties for a branding."""

    bg: str
    text: str
    accent: str
    accent_strong: str
    on_accent: str
    muted: str
    surface: str
    stripe: str
    border: str
    font: str
    scheme: str  # "light" or "dark": how form controls are drawn

    def css(self) -> str:
        return (
            f":root{{--bg:{self.bg};--text:{self.text};--accent:{self.accent};"
            f"--accent-strong:{self.accent_strong};--on-accent:{self.on_accent};"
            f"--muted:{self.muted};--surface:{self.surface};--stripe:{self.stripe};"
            f"--border:{self.border};color-scheme:{self.scheme}}}"
            f"html{{font-family:{self.font}}}"
        )


def palette(background: str, text: str, accent: str, font: str) -> Palette:
    """Every colour the pages use, derived from the three chosen ones (each text colour at AA)."""
    dark = luminance(background) < 0.18
    on_accent = readable_on(accent)
    strong = _mix(accent, "#ffffff" if dark else "#000000", 0.2)
    if contrast_ratio(on_accent, strong) < AA_TEXT:
        strong = accent
    muted = _mix(text, background, 0.35)
    if contrast_ratio(muted, background) < AA_TEXT:
        muted = passing_colour(muted, background)
    return Palette(
        bg=background,
        text=text,
        accent=accent,
        accent_strong=strong,
        on_accent=on_accent,
        muted=muted,
        surface=_mix(background, text, 0.05),
        stripe=_mix(background, text, 0.03),
        border=_mix(background, text, 0.2),
        font=FONTS.get(font, FONTS["system"])[1],
        scheme="dark" if dark else "light",
    )


def current() -> Any:
    """The saved branding, or None (tidings' own look)."""
    from .models import Branding

    return Branding.objects.order_by("pk").first()


def logo_of(branding: Any) -> Any:
    """The branding's logo (a media library picture, without its bytes), or None."""
    if branding is None or not branding.logo_key:
        return None
    from tidings.media.queries import library

    return library().filter(key=branding.logo_key).first()


def for_request(request: HttpRequest) -> dict[str, Any] | None:
    """The branding of a public page (``{"palette": …, "logo": …}``), None elsewhere."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace not in PUBLIC_NAMESPACES:
        return None
    branding = current()
    if branding is None:
        return None
    return {
        "palette": palette(branding.background, branding.text, branding.accent, branding.font),
        "logo": logo_of(branding),
    }


@transaction.atomic
def do_save_branding(values: dict[str, Any], *, actor: Any) -> Any:
    """Save the look of the public pages; raises ValueError with the contrast problems."""
    from tidings.lib.audit import audit

    from .models import Branding

    problems = check(values["background"], values["text"], values["accent"])
    if problems:
        raise ValueError("; ".join(p.message for p in problems))
    branding = current() or Branding()
    logo = values.pop("logo", None)
    values["logo_key"] = logo.key if logo is not None else ""
    changed = [k for k, v in values.items() if getattr(branding, k) != v]
    for name, value in values.items():
        setattr(branding, name, value)
    branding.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    branding.save()
    audit("branding.saved", actor=actor, obj=branding, fields=changed)
    return branding
