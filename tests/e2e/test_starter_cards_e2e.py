"""The starter designs on "New template" are picked by their names: a name must read as a word,
not "Announceme" on one line and "nt" on the next (it did at 1280 px: four cards to a row left
each name too narrow a box, and the page's overflow-wrap broke the word wherever it ran out)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.e2e.helpers import signed_in_page
from tidings.campaigns.rendering import ensure_default_layout

# Each word of each card's name, with the number of lines it is drawn on (1 when whole), and
# whether the name's box is wider than the card lets it be.
SPLIT_WORDS = """() => {
  const problems = [];
  for (const title of document.querySelectorAll(".starters .card h2")) {
    if (title.scrollWidth > title.clientWidth) problems.push("overflows: " + title.innerText);
    const walker = document.createTreeWalker(title, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) problems.push("split over " + tops.size + " lines: " + m[0]);
      }
    }
  }
  return problems;
}"""


@pytest.mark.parametrize("width", [375, 768, 1024, 1280, 1600])
def test_no_starter_name_is_split_inside_a_word(browser: Browser, live_server, owner, width):
    ensure_default_layout()  # else "New template" asks for a layout first
    with signed_in_page(browser, live_server.url, width, height=900, locale="en-GB") as page:
        page.goto("/campaigns/templates/new/")
        assert page.locator(".starters .card h2").count() >= 5
        assert page.evaluate(SPLIT_WORDS) == []
