"""What a test reads in a rendered page."""

from __future__ import annotations

import re

# The one script of the operator pages: the menus' Escape key (static/tidings/nav.js), loaded
# from our own origin; the menus work without it.
NAV_SCRIPT = '<script src="/static/tidings/nav.js" defer></script>'


def other_scripts(page: str) -> list[str]:
    """Every <script> tag of the page but the navigation's own."""
    return re.findall(r"<script\b[^>]*>", page.replace(NAV_SCRIPT, ""), flags=re.IGNORECASE)
