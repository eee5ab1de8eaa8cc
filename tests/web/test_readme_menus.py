"""The README's menu paths (*Settings → Branding*) name menus and pages that exist: a newcomer
follows them literally.  The README said *API → Webhooks*, a menu there is not (the webhooks
are under Settings), the papercut issue 21 fixed once for API tokens."""

from __future__ import annotations

import re
from pathlib import Path

from tidings.web.navigation import GROUPS

README = Path(__file__).resolve().parents[2] / "README.md"
# *First → Then*: a path that starts with a capital word starts in the menu (lower-case ones,
# such as *a draft → A/B test*, start on a page the reader already has open).
PATH = re.compile(r"\*([A-Z][^*→\n]*?) → ([^*\n]+?)\*")


def test_every_menu_path_in_the_readme_starts_at_a_menu_or_a_page_of_one():
    groups = {group: {label for _, label in items} for group, items in GROUPS}
    pages = set().union(*groups.values())
    paths = PATH.findall(README.read_text(encoding="utf-8"))
    assert len(paths) > 10
    wrong = []
    for first, rest in paths:
        then = rest.split(" → ")[0]
        if first in groups:
            if then not in groups[first] and not then.startswith("a "):
                wrong.append(f"{first} → {then}: no such item in the {first} menu")
        elif first not in pages:
            wrong.append(f"{first} → {then}: {first!r} is neither a menu nor a page in one")
    assert wrong == []
