"""Bidi overrides and other invisible format characters never reach what an operator reads.

A name such as ``"Ada \u202eecnalevoL"`` shows as "Ada Lovelace" while it is stored as
something else ("Trojan Source"); such characters are taken out of single-line personal fields
and subjects wherever they come in (public forms, imports, the operator's and the API's
edits, mail).  Real right-to-left names stay exactly as written.
"""

from __future__ import annotations

import pytest

from tests.audience.import_helpers import do_import, write
from tests.audience.public_helpers import make_form, make_list, sign_up
from tidings.audience.models import Contact, MailingList
from tidings.audience.operator import do_update_contact
from tidings.crm.actions import WEB_FORM, do_receive_enquiry
from tidings.lib.text import strip_format_characters

# Names as people write them: each must be kept character for character.
RTL_NAMES = [
    "محمد بن سلمان",  # Arabic
    "דוד בן-גוריון",  # Hebrew, with a hyphen
    "عبد الله O'Brien",  # Arabic and Latin in one name
    "می‌خواهم",  # Persian, with a zero-width non-joiner (part of its spelling)
    "क्‍ष",  # Devanagari with a zero-width joiner
]

SPOOFS = {
    "Ada \u202eecnalevoL": "Ada ecnalevoL",  # right-to-left override
    "\u2067Grace\u2069 Hopper": "Grace Hopper",  # right-to-left isolate and pop
    "\u200fمحمد\u200e": "محمد",  # direction marks around an Arabic name
    "Bob\u200b\u2060by": "Bobby",  # zero-width space, word joiner
    "Eve\u202a\u202b\u202c\u202d\u2066\u2068": "Eve",
    "\u061cسارة": "سارة",  # Arabic letter mark
    "Tag\U000e0041\U000e0042": "Tag",  # invisible tag characters ("ASCII smuggling")
}


@pytest.mark.parametrize("name", RTL_NAMES)
def test_real_right_to_left_names_are_kept_exactly(name):
    assert strip_format_characters(name) == name


@pytest.mark.parametrize(("typed", "stored"), SPOOFS.items())
def test_format_characters_are_taken_out(typed, stored):
    assert strip_format_characters(typed) == stored


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("public_pages")
def test_a_sign_up_stores_the_name_without_overrides_and_rtl_names_intact(client):
    form = make_form([make_list("Product news", "product news")])

    sign_up(client, form, email="ada@example.com", name="Ada \u202eecnalevoL")
    sign_up(client, form, email="m@example.com", name="\u200fمحمد بن سلمان")
    sign_up(client, form, email="d@example.com", name="דוד בן-גוריון")
    only_marks = sign_up(client, form, email="x@example.com", name="\u202e\u200f")

    names = dict(Contact.objects.values_list("email", "name"))
    assert names == {
        "ada@example.com": "Ada ecnalevoL",
        "m@example.com": "محمد بن سلمان",
        "d@example.com": "דוד בן-גוריון",
    }
    assert only_marks.status_code == 200  # a name of nothing visible is no name: asked again


@pytest.mark.django_db
def test_an_operators_or_the_apis_edit_takes_them_out():
    contact = Contact.objects.create(email="ada@example.com", name="Ada")

    do_update_contact(contact, {"name": "\u2066Ada\u2069 \u202eLovelace"}, actor=None)

    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"
    do_update_contact(contact, {"name": "עדה לאבלייס"}, actor=None)
    contact.refresh_from_db()
    assert contact.name == "עדה לאבלייס"


@pytest.mark.django_db
def test_an_import_takes_them_out_of_every_cell(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    news = MailingList.objects.create(name="News", topic="product news")
    path = write(
        tmp_path,
        "Email,Name,Company\n"
        "ada@example.com,Ada \u202eecnalevoL,\u2067Analytical\u2069 Engines\n"
        "m@example.com,محمد بن سلمان,شركة\u200f\n"
        "p@example.com,می‌خواهم,\n",
    )

    do_import(path, news)

    rows = {e: (n, c) for e, n, c in Contact.objects.values_list("email", "name", "company")}
    assert rows == {
        "ada@example.com": ("Ada ecnalevoL", "Analytical Engines"),
        "m@example.com": ("محمد بن سلمان", "شركة"),
        "p@example.com": ("می‌خواهم", ""),
    }


@pytest.mark.django_db
def test_an_enquirys_subject_and_name_are_shown_as_stored():
    enquiry = do_receive_enquiry(
        {"email": "ada@example.com", "name": "Ada \u202eecnalevoL"},
        channel=WEB_FORM,
        message="Hello",
        subject="Invoice \u202efdp.exe",
        actor_label="test",
    )

    assert enquiry.subject == "Invoice fdp.exe"
    assert enquiry.contact.name == "Ada ecnalevoL"
