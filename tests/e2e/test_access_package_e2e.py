"""The access package's summary reads on a phone and prints: opened in Debian's chromium at
375 px (and 1200 px, and as printed), nothing is wider than the page, for a person who holds a
record in every registered source, long unbreakable values included."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.rights.generators import distinct_ids, fill, new_person
from tests.rights.helpers import unzip
from tidings.audience.models import Contact
from tidings.rights.package import build_package

pytestmark = pytest.mark.django_db

# Every element's right edge against the viewport; the page's own scroll width too.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      const text = (el.textContent || '').trim().slice(0, 60);
      wide.push(el.tagName + ' ' + text + ' ' + Math.round(box.right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 10)};
}"""


@pytest.fixture
def summary_file(tmp_path):
    distinct_ids()
    person = fill(new_person())
    # A value with no place to break: a long address, a pasted link.
    Contact.objects.filter(pk=person.contact.pk).update(
        work_address="Unit-" + "9" * 90 + ", https://example.co.uk/" + "x" * 120
    )
    person.contact.refresh_from_db()
    path = tmp_path / "summary.html"
    path.write_text(unzip(build_package(person.contact))["summary.html"], encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [375, 1200])
def test_the_summary_fits_the_screen(browser: Browser, summary_file, width):
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.goto(summary_file.as_uri())
        result = page.evaluate(OVERFLOWING)
        heading = page.get_by_role("heading", name="Contents")
        assert heading.is_visible()
        assert page.get_by_role("link", name="Your rights, and how to complain").is_visible()
    finally:
        page.close()

    assert result["scroll"] <= result["width"], result
    assert result["wide"] == [], result


def test_the_summary_prints_within_the_page(browser: Browser, summary_file):
    # A4 at 96 dpi with the browser's default margins: about 720 px of text width.
    page = browser.new_page(viewport={"width": 720, "height": 1000})
    try:
        page.emulate_media(media="print")
        page.goto(summary_file.as_uri())
        result = page.evaluate(OVERFLOWING)
        pdf = page.pdf(format="A4")
    finally:
        page.close()

    assert result["wide"] == [], result
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000


def test_a_right_to_left_name_reads_right_to_left_and_a_left_to_right_one_does_not(
    browser: Browser, tmp_path
):
    """An Arabic or Hebrew value shown in an English page: set left to right, "داود الحسيني
    (شركة) 42" puts the number and brackets on the wrong side.  Each value takes its own
    direction from its first strong letter, and a stray bidi control in one cannot reach past it."""
    distinct_ids()
    person = fill(new_person(), {"contact"})
    Contact.objects.filter(pk=person.contact.pk).update(
        name="داود الحسيني (شركة) 42", company="Acme ‮ Ltd 🚀", job_title="מנהלת 👩‍💻"
    )
    person.contact.refresh_from_db()
    path = tmp_path / "summary.html"
    path.write_text(unzip(build_package(person.contact))["summary.html"], encoding="utf-8")
    page = browser.new_page(viewport={"width": 375, "height": 800})
    try:
        page.goto(path.as_uri())
        right_to_left = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('dl.record dt')]
                 .map(dt => [dt.textContent.trim(), dt.nextElementSibling.matches(':dir(rtl)')]))"""
        )
    finally:
        page.close()

    assert right_to_left["Name"] is True, right_to_left
    assert right_to_left["Job title"] is True, right_to_left
    assert right_to_left["Company"] is False, right_to_left
    assert right_to_left["Email address"] is False, right_to_left
