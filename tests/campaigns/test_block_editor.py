"""The block editor's pages as a plain form (no JavaScript): starters, moving, adding, removing,
saving, errors at the block and field they are about, switching formats, the preview."""

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.operators import make_operator
from tidings.campaigns.blocks.starters import STARTERS
from tidings.campaigns.models import Template
from tidings.campaigns.rendering import ensure_default_layout

NEW = reverse("templates_ui:template-new")


@pytest.fixture
def editor_client(client, db):
    ensure_default_layout()
    client.force_login(make_operator("ed", "editor"))
    return client


def form_of(blocks, **extra):
    """The editor form as the browser posts it."""
    data = {
        "name": "November news",
        "layout": str(ensure_default_layout().pk),
        "format": "blocks",
        "previous_format": "blocks",
        "subject": "News for {{ contact.first_name }}",
        "text_body": "",
    }
    for index, block in enumerate(blocks):
        for key, value in block.items():
            data[f"blocks-{index}-{key}"] = value
    data.update(extra)
    return data


HEADING = {"type": "heading", "text": "Hello", "level": "1", "align": "left"}
TEXT = {"type": "text", "text": "Thanks,\nThe team", "align": "left"}
BUTTON = {
    "type": "button",
    "label": "Read",
    "url": "https://example.com/",
    "colour": "#1f5fb8",
    "align": "center",
}


def test_a_new_template_starts_from_a_choice_of_starters(editor_client):
    page = editor_client.get(NEW).content.decode()
    for starter in STARTERS.values():
        assert f"?starter={starter.key}" in page and starter.name in page
    assert "?format=markdown" in page


def test_a_starter_opens_as_blocks_with_a_preview(editor_client):
    page = editor_client.get(NEW + "?starter=event").content.decode()
    assert 'name="blocks-0-type" value="heading"' in page
    assert "You&#x27;re invited" in page or "You're invited" in page
    assert "srcdoc=" in page and "Hello Ada," in page  # the preview, rendered on the server


def test_move_buttons_reorder_without_saving(editor_client):
    response = editor_client.post(NEW, form_of([HEADING, TEXT, BUTTON], op="up:2"))
    assert response.status_code == 200
    assert not Template.objects.exists()
    page = response.content.decode()
    assert page.index('name="blocks-1-type" value="button"') > 0
    assert page.index('name="blocks-2-type" value="text"') > 0
    down = editor_client.post(NEW, form_of([HEADING, TEXT, BUTTON], op="down:0")).content.decode()
    assert 'name="blocks-0-type" value="text"' in down


def test_add_and_remove_blocks(editor_client):
    added = editor_client.post(
        NEW, form_of([HEADING], op="add", add_type="divider")
    ).content.decode()
    assert 'name="blocks-1-type" value="divider"' in added
    removed = editor_client.post(NEW, form_of([HEADING, TEXT], op="remove:0")).content.decode()
    assert 'name="blocks-0-type" value="text"' in removed
    assert 'name="blocks-1-type"' not in removed
    assert not Template.objects.exists()


def test_saving_stores_the_blocks_as_a_document(editor_client):
    response = editor_client.post(NEW, form_of([HEADING, TEXT, BUTTON]))
    template = Template.objects.get()
    assert response["Location"] == reverse("templates_ui:template-preview", args=[template.pk])
    assert template.format == "blocks"
    document = json.loads(template.body)
    assert [b["type"] for b in document["blocks"]] == ["heading", "text", "button"]
    assert document["blocks"][1]["text"] == "Thanks,\nThe team"
    preview = editor_client.get(response["Location"]).content.decode()
    assert "Thanks,&lt;br" in preview or "Thanks,<br" in preview  # inside srcdoc


def test_a_bad_field_is_shown_at_its_block_and_nothing_is_saved(editor_client):
    bad = {**BUTTON, "url": "javascript:alert(1)"}
    response = editor_client.post(NEW, form_of([HEADING, bad]))
    assert response.status_code == 200
    assert not Template.objects.exists()
    page = response.content.decode()
    assert "Block 2 (Button), link: a link must start with https://" in page
    assert 'id="block-1-url-errors"' in page  # the message sits at the field itself


def test_problems_name_fields_as_the_editor_labels_them_and_say_what_to_do(editor_client):
    """The page listed "Block 2 (Image), src: this cannot be blank": "src" is a word from
    HTML, not from the page, and "cannot be blank" did not say where a picture comes from."""
    image = {"type": "image", "src": "", "alt": "", "align": "center"}
    footer = {"type": "footer", "text": "[Shop](/shop)"}
    page = html.unescape(
        editor_client.post(NEW, form_of([HEADING, image, footer])).content.decode()
    )
    assert not Template.objects.exists()
    assert (
        "Block 2 (Image), image: choose a picture from the media library, or give its https:// "
        "address" in page
    )
    assert "Block 3 (Footer), small print: a link must start with https://" in page
    assert ", src:" not in page


def test_an_unknown_word_in_braces_says_where_placeholders_come_from(editor_client):
    """ "Use code {{ SALE20 }}" was refused with only 'unknown variable "SALE20"': someone who
    never chose a placeholder did not know what a variable was, or how to keep the braces."""
    typed = {**TEXT, "text": "Use code {{ SALE20 }} at the till"}
    page = html.unescape(editor_client.post(NEW, form_of([HEADING, typed])).content.decode())
    assert not Template.objects.exists()
    assert (
        'Block 2 (Text), text: unknown variable "SALE20" (placeholders are the ones in the menu '
        "beside the field; to show \"{{\" as text, write {{ '{{' }})" in page
    )
    near = {**TEXT, "text": "Hi {{ contact.frist_name }}"}  # a typo keeps its own hint
    page = html.unescape(editor_client.post(NEW, form_of([HEADING, near])).content.decode())
    assert "did you mean" in page and "placeholders are the ones in the menu" not in page


@pytest.mark.parametrize(("typed", "opener"), [("Use {{ to start", "{{"), ("Up 50{% now", "{%")])
def test_braces_typed_as_text_are_traced_to_their_block_with_how_to_show_them(
    editor_client, typed, opener
):
    """With no placeholder in the field, the problem was not traced to any block: the page
    said only "Blocks: expected token 'end of print statement', got 'start'"."""
    page = editor_client.post(NEW, form_of([HEADING, {**TEXT, "text": typed}])).content.decode()
    assert not Template.objects.exists()
    assert "Block 2 (Text), text:" in page
    assert html.escape(f"to show it as text, write {{{{ '{opener}' }}}}") in page
    fixed = typed.replace(opener, f"{{{{ '{opener}' }}}}")
    assert editor_client.post(NEW, form_of([HEADING, {**TEXT, "text": fixed}])).status_code == 302


def test_an_unknown_placeholder_is_traced_to_its_block(editor_client):
    typo = {**TEXT, "text": "Hi {{ contact.frist_name }}"}
    page = editor_client.post(NEW, form_of([HEADING, typo])).content.decode()
    assert not Template.objects.exists()
    assert "Block 2 (Text), text: contact has no field" in page
    assert "did you mean" in page


def test_the_library_picker_fills_the_image_address_without_javascript(editor_client):
    image = {
        "type": "image",
        "src": "",
        "src_pick": "/media/" + "a" * 32 + "/logo.png",
        "alt": "Logo",
        "link": "",
        "width": "",
        "align": "center",
    }
    editor_client.post(NEW, form_of([image]))
    block = json.loads(Template.objects.get().body)["blocks"][0]
    assert block["src"] == "/media/" + "a" * 32 + "/logo.png"


def library_picture(alt: str):
    from io import BytesIO

    from PIL import Image

    from tidings.media.actions import do_upload_image

    out = BytesIO()
    Image.new("RGB", (40, 20), (10, 120, 200)).save(out, "PNG")
    image, _ = do_upload_image(out.getvalue(), name="team.png", alt=alt, actor=None)
    return image


def test_a_picture_picked_from_the_library_brings_its_description_as_alt_text(editor_client):
    """The README promises a library picture comes "with its description as alt text"; the
    picked picture arrived with alt="" (screen readers said nothing), unless one was typed."""
    picture = library_picture("Our team at the Chester fair")
    image = {"type": "image", "src": "", "src_pick": picture.path, "alt": "", "link": "",
             "width": "", "align": "center"}  # fmt: skip
    columns = {"type": "columns", "left_image": "", "left_image_pick": picture.path,
               "left_alt": "", "left_text": "Left", "right_image": "",
               "right_image_pick": picture.path, "right_alt": "Typed by hand",
               "right_text": "Right"}  # fmt: skip
    editor_client.post(NEW, form_of([image, columns]))
    blocks = json.loads(Template.objects.get().body)["blocks"]
    assert blocks[0]["alt"] == "Our team at the Chester fair"
    assert blocks[1]["left_alt"] == "Our team at the Chester fair"
    assert blocks[1]["right_alt"] == "Typed by hand"
    page = editor_client.get(NEW + "?starter=announcement").content.decode()
    assert f'<option value="{picture.path}" data-alt="Our team at the Chester fair">' in page


def test_switching_markdown_to_blocks_keeps_every_word(editor_client):
    data = form_of(
        [],
        format="blocks",
        previous_format="markdown",
        op="format",
        body="# Big news\n\nHello **you**,\nsee you soon.",
    )
    page = editor_client.post(NEW, data).content.decode()
    assert 'name="blocks-0-type" value="heading"' in page and "Big news" in page
    assert 'name="blocks-1-type" value="text"' in page and "Hello **you**," in page


def test_switching_blocks_to_markdown_keeps_every_word(editor_client):
    data = form_of([HEADING, TEXT, BUTTON], format="markdown", op="format")
    page = editor_client.post(NEW, data).content.decode()
    assert (
        "# Hello" in page and "Thanks,\nThe team" in page and "[Read](https://example.com/)" in page
    )
    assert 'name="blocks-0-type"' not in page


def test_the_live_preview_answers_with_every_variant(editor_client):
    from tidings.campaigns.blocks.pages import dark

    response = editor_client.post(reverse("templates_ui:blocks-preview"), form_of([HEADING, TEXT]))
    data = response.json()
    assert data["problems"] == []
    assert "Hello" in data["html"]
    # The dark variant applies the email's own dark-mode rules (blocks have them); an email
    # without any is shown with its colours inverted, as some mail programs do.
    assert "prefers-color-scheme: dark" in data["html"]
    assert "prefers-color-scheme" not in data["dark_html"] and "invert(1)" not in data["dark_html"]
    assert "@media all" in data["dark_html"]
    assert "invert(1)" in dark("<html><head></head><body><p>Hi</p></body></html>")
    # The inverting rules go after the charset declaration, which must come first.
    inverted = dark(
        '<html><head>\n<meta charset="utf-8"><title>x</title></head><body></body></html>'
    )
    assert inverted.index("charset") < inverted.index("invert(1)") < inverted.index("<title>")
    assert "Thanks,\nThe team" in data["text"]
    bad = editor_client.post(
        reverse("templates_ui:blocks-preview"), form_of([{**BUTTON, "url": "x"}])
    )
    assert bad.json()["problems"][0].startswith("Block 1 (Button), link")


def test_the_preview_endpoint_is_for_operators_who_edit_content(client, db):
    url = reverse("templates_ui:blocks-preview")
    assert client.post(url, form_of([HEADING])).status_code == 302  # to sign in
    client.force_login(make_operator("numbers", "analyst"))
    assert client.post(url, form_of([HEADING])).status_code == 403


def test_the_pictures_for_the_pickers_are_for_operators_who_edit_content(client, db):
    url = reverse("templates_ui:blocks-pictures")
    assert client.get(url).status_code == 302  # to sign in
    client.force_login(make_operator("numbers", "analyst"))
    assert client.get(url).status_code == 403
    client.force_login(make_operator("ed", "editor"))
    assert client.get(url).json() == {"pictures": []}


def test_a_campaign_made_from_a_block_template_is_edited_with_blocks(editor_client):
    from tests.campaigns.lifecycle_helpers import make_list, make_sender

    editor_client.post(NEW, form_of([HEADING, TEXT]))
    template = Template.objects.get()
    from tidings.campaigns.lifecycle import do_create_campaign

    news = make_list()
    campaign = do_create_campaign(
        template,
        name="Nov",
        topic=news.topic,
        sender=make_sender(),
        lists=[news],
        segments=[],
        actor=None,
    )
    url = reverse("campaigns:edit", args=[campaign.pk])
    page = editor_client.get(url).content.decode()
    assert 'name="blocks-1-type" value="text"' in page
    data = form_of(
        [TEXT, HEADING], name=campaign.name, topic=campaign.topic, subject="Hi", lists=[news.pk]
    )
    response = editor_client.post(url, data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.format == "blocks"
    assert [b["type"] for b in json.loads(campaign.body)["blocks"]] == ["text", "heading"]


def loaded_version(page: str) -> str:
    found = re.search(r'name="loaded_version" value="([^"]+)"', page)
    assert found, "the edit page carries no version"
    return found.group(1)


def test_saving_a_template_opened_before_someone_elses_save_is_refused_once(editor_client):
    """Two tabs on one template: the second save silently replaced the first tab's edit."""
    editor_client.post(NEW, form_of([HEADING]))
    template = Template.objects.get()
    url = reverse("templates_ui:template-edit", args=[template.pk])
    tab_one = loaded_version(editor_client.get(url).content.decode())
    tab_two = loaded_version(editor_client.get(url).content.decode())

    assert (
        editor_client.post(url, form_of([HEADING, TEXT], loaded_version=tab_one)).status_code == 302
    )
    # The second tab, opened before that save, adds a button (the no-JavaScript way: the page
    # carries its version through) and saves.
    adding = editor_client.post(
        url, form_of([HEADING], loaded_version=tab_two, op="add", add_type="button")
    )
    assert loaded_version(adding.content.decode()) == tab_two
    stale = editor_client.post(url, form_of([HEADING, BUTTON], loaded_version=tab_two))
    assert stale.status_code == 200
    page = stale.content.decode()
    assert "Not saved: this template was saved after you opened it" in page
    assert 'name="blocks-1-type" value="button"' in page  # this tab's edit is still on the page
    template.refresh_from_db()
    assert [b["type"] for b in json.loads(template.body)["blocks"]] == ["heading", "text"]

    # Saving again, having been told, keeps this tab's version.
    again = editor_client.post(url, form_of([HEADING, BUTTON], loaded_version=loaded_version(page)))
    assert again.status_code == 302
    template.refresh_from_db()
    assert [b["type"] for b in json.loads(template.body)["blocks"]] == ["heading", "button"]


def test_saving_a_draft_opened_before_another_save_is_refused_naming_who_saved(
    editor_client, client
):
    from tests.campaigns.lifecycle_helpers import make_list, make_sender
    from tidings.campaigns.lifecycle import do_create_campaign
    from tidings.campaigns.models import Campaign

    editor_client.post(NEW, form_of([HEADING]))
    news = make_list()
    campaign = do_create_campaign(
        Template.objects.get(),
        name="Nov",
        topic=news.topic,
        sender=make_sender(),
        lists=[news],
        actor=None,
    )
    url = reverse("campaigns:edit", args=[campaign.pk])
    fields = {"name": "Nov", "topic": news.topic, "subject": "Hi", "lists": [news.pk]}
    mine = loaded_version(editor_client.get(url).content.decode())
    other = Client()
    other.force_login(make_operator("colleague", "editor"))
    theirs = loaded_version(other.get(url).content.decode())
    assert other.post(url, form_of([TEXT], **fields, loaded_version=theirs)).status_code == 302

    stale = editor_client.post(url, form_of([HEADING, BUTTON], **fields, loaded_version=mine))
    assert stale.status_code == 200
    assert "this campaign was saved by colleague after you opened it" in stale.content.decode()
    assert [b["type"] for b in json.loads(Campaign.objects.get().body)["blocks"]] == ["text"]
    # A change of lists alone is a new version too.
    page = stale.content.decode()
    before_lists = loaded_version(other.get(url).content.decode())
    events = make_list("Events", news.topic)
    with_events = {**fields, "lists": [news.pk, events.pk]}
    assert (
        other.post(url, form_of([TEXT], **with_events, loaded_version=before_lists)).status_code
        == 302
    )
    assert loaded_version(other.get(url).content.decode()) != before_lists
    again = editor_client.post(
        url, form_of([HEADING, BUTTON], **fields, loaded_version=loaded_version(page))
    )
    assert again.status_code == 200  # the version it was told of is old again: lists changed
    again = editor_client.post(
        url,
        form_of([HEADING, BUTTON], **fields, loaded_version=loaded_version(again.content.decode())),
    )
    assert again.status_code == 302
    assert [b["type"] for b in json.loads(Campaign.objects.get().body)["blocks"]] == [
        "heading",
        "button",
    ]


# --- colours that cannot be read (WCAG AA) -----------------------------------------------------
def test_light_grey_text_on_white_is_refused_with_the_ratio_and_a_passing_shade(editor_client):
    """Light-grey text on the white content was saved without a word: unreadable for many."""
    response = editor_client.post(
        NEW, form_of([HEADING, TEXT], **{"settings-text_colour": "#bbbbbb"})
    )
    assert response.status_code == 200
    assert not Template.objects.exists()
    page = html.unescape(response.content.decode())
    assert "Email settings, text colour: Body text (#bbbbbb) on the background (#ffffff)" in page
    assert "has a contrast of 1.92:1; WCAG AA needs at least 4.5:1." in page
    shade = re.search(r"(#[0-9a-f]{6}) would pass", page).group(1)
    from tidings.lib.contrast import contrast_ratio

    assert contrast_ratio(shade, "#ffffff") >= 4.5
    assert 'id="settings-text_colour-errors"' in page  # at the field itself
    fixed = form_of([HEADING, TEXT], **{"settings-text_colour": shade})
    assert editor_client.post(NEW, fixed).status_code == 302


def test_a_faint_link_colour_is_refused_at_its_field(editor_client):
    response = editor_client.post(
        NEW, form_of([HEADING, TEXT], **{"settings-link_colour": "#9ec5fe"})
    )
    assert not Template.objects.exists()
    page = html.unescape(response.content.decode())
    assert "Email settings, link colour: Links (#9ec5fe) on the background (#ffffff)" in page
    assert 'id="settings-link_colour-errors"' in page


def test_large_headings_alone_need_only_three_to_one(editor_client):
    grey = "#8a8a8a"  # 3.45:1 on white: enough for 28 px bold, not for body text
    ok = editor_client.post(NEW, form_of([HEADING], **{"settings-text_colour": grey}))
    assert ok.status_code == 302
    Template.objects.all().delete()
    refused = editor_client.post(NEW, form_of([HEADING, TEXT], **{"settings-text_colour": grey}))
    assert refused.status_code == 200 and not Template.objects.exists()


def test_the_live_preview_shows_the_email_and_the_contrast_problem_at_its_field(editor_client):
    data = editor_client.post(
        reverse("templates_ui:blocks-preview"),
        form_of([HEADING, TEXT], **{"settings-text_colour": "#cccccc"}),
    ).json()
    assert data["html"]  # still previewed
    assert data["errors"][0]["field"] == "text_colour" and data["errors"][0]["block"] is None
    assert "Body text (#cccccc)" in data["problems"][0]


def dark_layout():
    """The default layout with a dark content area (its stylesheet says so, as most do)."""
    from tidings.campaigns.models import Layout
    from tidings.campaigns.rendering.sources import default_layout_html

    source = default_layout_html().replace(
        ".content { background-color: #ffffff;", ".content { background-color: #1b1f24;"
    )
    assert source != default_layout_html()
    return Layout.objects.create(name="Dark", html=source)


def test_colours_are_checked_on_the_layouts_own_background_not_white(editor_client):
    """The check assumed white content: dark text on a dark layout was saved without a word,
    and light text, readable there, was refused."""
    layout = dark_layout()
    dark_text = form_of([HEADING, TEXT], layout=str(layout.pk))  # the default #1b1f24 text
    response = editor_client.post(NEW, dark_text)
    assert response.status_code == 200 and not Template.objects.exists()
    page = html.unescape(response.content.decode())
    assert (
        "Email settings, text colour: Body text (#1b1f24) on the layout's background (#1b1f24) "
        "has a contrast of 1.00:1" in page
    )
    light = form_of(
        [HEADING, TEXT, BUTTON],
        layout=str(layout.pk),
        **{"settings-text_colour": "#f4f5f7", "settings-link_colour": "#9ec5fe"},
    )
    assert editor_client.post(NEW, light).status_code == 302  # white-ish text reads on dark


def test_the_live_preview_checks_colours_on_the_chosen_layout(editor_client):
    layout = dark_layout()
    data = editor_client.post(
        reverse("templates_ui:blocks-preview"), form_of([HEADING, TEXT], layout=str(layout.pk))
    ).json()
    assert {e["field"] for e in data["errors"]} == {"text_colour", "link_colour"}
    assert "on the layout's background (#1b1f24)" in data["problems"][0]


def test_the_footers_grey_is_refused_at_the_footer_on_a_dark_layout(editor_client):
    layout = dark_layout()
    footer = {"type": "footer", "text": "Example Ltd, Chester"}
    response = editor_client.post(
        NEW,
        form_of(
            [HEADING, footer],
            layout=str(layout.pk),
            **{"settings-text_colour": "#f4f5f7", "settings-link_colour": "#9ec5fe"},
        ),
    )
    assert not Template.objects.exists()
    page = html.unescape(response.content.decode())
    assert "Block 2 (Footer), small print: Footer text (#4f5863) on the layout's background" in page
    assert 'id="block-1-text-errors"' in page


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('<div class="c" style="background:#222">{{ content }}</div>', "#222222"),
        ('<table bgcolor="#003366"><tr><td>{{ content }}</td></tr></table>', "#003366"),
        (
            '<div style="background-color: rgb(10, 20, 30)"><p style="background: transparent">'
            "<span>{{ content }}</span></p></div>",
            "#0a141e",
        ),
        ("<style>.x{background-color:black}</style><div class=x>{{ content }}</div>", "#000000"),
        ('<div style="background:url(https://x.example/a.png)">{{ content }}</div>', "#ffffff"),
        ('<div style="background:#222"></div><div>{{ content }}</div>', "#ffffff"),
        ("<p>{{ content }}</p>", "#ffffff"),
    ],
)
def test_the_layouts_background_is_read_where_the_content_goes(frame, expected):
    from tidings.campaigns.blocks.contrast import layout_background

    assert layout_background(f"<html><body>{frame}</body></html>") == expected


def test_the_default_layouts_content_is_white():
    from tidings.campaigns.blocks.contrast import layout_background

    assert layout_background(None) == "#ffffff"


def test_the_editors_text_fields_take_their_direction_from_what_is_typed(editor_client):
    page = editor_client.post(NEW, form_of([HEADING, TEXT, BUTTON], op="preview")).content.decode()
    assert re.search(r'<textarea id="block-1-text"[^>]* dir="auto"', page)
    assert re.search(r'<input type="text" id="block-0-text"[^>]* dir="auto"', page)
    assert re.search(r'<input type="text" id="block-2-label"[^>]* dir="auto"', page)
    url = re.search(r'<input type="text" id="block-2-url"[^>]*>', page).group()
    assert "dir=" not in url  # addresses stay left-to-right


def test_a_refused_link_in_text_is_shown_whole_and_escaped_at_its_field(editor_client):
    written = "javascript:alert(document.title)<b>"
    bad = {**TEXT, "text": f"See [this]({written})"}
    page = editor_client.post(NEW, form_of([HEADING, bad])).content.decode()
    assert not Template.objects.exists()
    assert "<b>" not in page.split('id="block-1-text-errors"', 1)[1].split("</", 1)[0]
    assert html.escape(f"(the link “{written}”)", quote=False) in page


def test_every_colour_is_checked_in_dark_mode_too_on_the_colour_the_blocks_paint(monkeypatch):
    """The dark-mode rules give text, links and the footer lighter shades made to pass; the
    check reads the same shades, so a change to them (or to the dark background) is caught."""
    from tidings.campaigns.blocks import contrast
    from tidings.campaigns.blocks.compiler import DARK_BACKGROUND, dark_colours
    from tidings.campaigns.blocks.schema import Document
    from tidings.lib.contrast import contrast_ratio

    document = Document.model_validate(
        {
            "settings": {"text_colour": "#5a1010", "link_colour": "#0b3d91"},
            "blocks": [{"type": "text", "text": "Hi"}, {"type": "footer", "text": "Small"}],
        }
    )
    assert contrast.contrast_errors(document) == []
    shades = dark_colours(document)
    assert all(contrast_ratio(c, DARK_BACKGROUND) >= 4.5 for c in shades.values())
    assert shades["text"] != "#5a1010" and shades["link"] != "#0b3d91"  # lighter, same hue
    monkeypatch.setattr(contrast, "DARK_BACKGROUND", "#9a9a9a")
    problems = [(e.index, e.field, e.message) for e in contrast.contrast_errors(document)]
    assert [p[:2] for p in problems] == [(None, "text_colour"), (None, "link_colour"), (1, "text")]
    assert "Body text in dark mode" in problems[0][2]
    assert "on the dark-mode background (#9a9a9a)" in problems[0][2]


@pytest.mark.parametrize("starter", sorted(STARTERS))
def test_every_description_a_field_points_at_is_on_the_page(editor_client, starter):
    """The plain-text version's box pointed its aria-describedby at "id_text_body_helptext",
    which was nowhere on the block editor's page (its help had no id): a screen reader read no
    help for it."""
    page = editor_client.get(NEW, {"starter": starter}).content.decode()
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    pointed = {
        name
        for names in re.findall(r'aria-describedby="([^"]*)"', page)
        for name in names.split()
        if "{" not in name  # a block template's, numbered by the editor's script
    }
    assert pointed and pointed <= ids, sorted(pointed - ids)
    assert 'id="id_text_body_helptext"' in page
