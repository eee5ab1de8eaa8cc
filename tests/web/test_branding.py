"""Public pages in the company's look: logo, colours and font from the branding settings, refused
below WCAG AA contrast (computed as WCAG defines it)."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.operators import make_operator
from tidings.audience.actions import do_create_contact, do_create_signup_form
from tidings.audience.models import MailingList
from tidings.audience.tokens import make_preferences_token, make_unsubscribe_token
from tidings.lib.contrast import contrast_ratio, readable_on
from tidings.web.branding import check, palette
from tidings.web.models import Branding

pytestmark = pytest.mark.django_db
URL = reverse("web:branding")
GOOD = {"background": "#fdf6e3", "text": "#222222", "accent": "#8a3b12", "font": "serif"}


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#000000", "#ffffff", 21.0),
        ("#ffffff", "#ffffff", 1.0),
        ("#767676", "#ffffff", 4.54),  # the lightest grey that passes on white
        ("#777777", "#ffffff", 4.48),  # and the first that fails
        ("#1f5fb8", "#ffffff", 6.2),  # worked by hand: L = 0.1194
    ],
)
def test_contrast_is_the_wcag_ratio(first, second, ratio):
    assert round(contrast_ratio(first, second), 2) == ratio
    assert contrast_ratio(second, first) == contrast_ratio(first, second)


def test_button_text_is_whichever_of_black_and_white_reads_better():
    assert readable_on("#ffcc00") == "#000000"
    assert readable_on("#1f5fb8") == "#ffffff"


def test_every_colour_a_palette_derives_meets_aa():
    p = palette(**{k: GOOD[k] for k in ("background", "text", "accent", "font")})
    for colour in (p.text, p.muted, p.accent):
        assert contrast_ratio(colour, p.bg) >= 4.5, colour
    assert contrast_ratio(p.on_accent, p.accent) >= 4.5


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_low_contrast_is_refused_with_the_ratio_and_a_colour_that_passes(owner_client):
    response = owner_client.post(URL, {**GOOD, "text": "#aaaaaa", "background": "#ffffff"})
    assert response.status_code == 200
    page = response.content.decode()
    found = re.search(
        r"contrast of (\d\.\d\d):1; WCAG AA needs at least 4.5:1 for text. (#[0-9a-f]{6})", page
    )
    assert found and found.group(1) == "2.32"
    assert contrast_ratio(found.group(2), "#ffffff") >= 4.5
    assert not Branding.objects.exists()
    assert [p.field for p in check("#ffffff", "#222222", "#9ec5ff")] == ["accent"]


def public_pages():
    news = MailingList.objects.create(name="News", topic="product news")
    do_create_signup_form(actor=None, lists=[news], name="Sign up", slug="news", is_active=True)
    ada, _ = do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    return [
        "/f/news",
        reverse("public:preferences", args=[make_preferences_token(ada.pk)]),
        reverse("public:unsubscribe", args=[make_unsubscribe_token(ada.pk)]),
        "/rights/",
        "/contact",
        "/demo/",
    ]


def test_saved_branding_dresses_every_public_page_and_no_operator_page(owner_client, client):
    pages = public_pages()
    logo = io.BytesIO()
    Image.new("RGB", (240, 60), (138, 59, 18)).save(logo, "PNG")
    response = owner_client.post(
        URL, {**GOOD, "logo_upload": SimpleUploadedFile("logo.png", logo.getvalue())}
    )
    assert response.status_code == 302
    from tidings.web.branding import logo_of

    logo = logo_of(Branding.objects.get())
    assert logo is not None
    for url in pages:
        page = client.get(url).content.decode()
        assert "--accent:#8a3b12" in page and "--bg:#fdf6e3" in page, url
        assert "Charter" in page, url  # the chosen font stack
        assert f'src="{logo.path}"' in page, url
    for operator_page in ("/", reverse("audience:contacts")):
        assert "--accent:#8a3b12" not in owner_client.get(operator_page).content.decode()


def test_only_owners_choose_the_branding(client):
    client.force_login(make_operator("ed", "editor"))
    assert client.get(URL).status_code == 403
    assert client.post(URL, GOOD).status_code == 403
