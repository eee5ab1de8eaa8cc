"""Bodies made of blocks: checked, compiled through MJML, then through the same pipeline as HTML
bodies (sandbox, personalisation, CSS inlining, plain text)."""

import json
import re

import pytest

from tidings.campaigns.blocks import blocks_to_html, parse, to_mjml
from tidings.campaigns.blocks.compiler import BlocksInvalid
from tidings.campaigns.blocks.markup import Tokens
from tidings.campaigns.blocks.starters import STARTERS
from tidings.campaigns.rendering import (
    SAMPLE_CONTACT,
    CompiledMessage,
    MessageLinks,
    check_template,
)

LINKS = MessageLinks(
    unsubscribe_url="https://news.example.co.uk/u/T",
    preferences_url="https://news.example.co.uk/p/T",
    view_url="https://news.example.co.uk/archive/1/",
)

EVERY_BLOCK = [
    {"type": "heading", "text": 'Hello {{ contact.first_name or "friend" }}', "level": 1},
    {"type": "text", "text": "Thanks,\nThe team\n\n- one\n- **two**\n\n<b>not markup</b>"},
    {"type": "image", "src": "/media/abc123/cat.jpg", "alt": "A cat", "link": "{{ view_url }}"},
    {
        "type": "button",
        "label": "Read more",
        "url": "https://example.com/read",
        "colour": "#ffcc00",
    },
    {"type": "columns", "left_text": "Left *side*", "right_text": "Right side"},
    {"type": "divider"},
    {"type": "spacer", "height": 30},
    {"type": "social", "links": [{"network": "mastodon", "url": "https://social.example/@us"}]},
    {"type": "footer", "text": "Sent by {{ controller.name }}"},
]


def body(*blocks, **settings) -> str:
    return json.dumps({"version": 1, "settings": settings, "blocks": list(blocks)})


def render(source: str, contact=SAMPLE_CONTACT):
    compiled = CompiledMessage.from_sources(subject="Hi", body=blocks_to_html(source), fmt="html")
    return compiled.render(contact, LINKS)


def test_every_kind_of_block_passes_the_template_checks(settings):
    assert check_template("Hi {{ contact.first_name }}", body(*EVERY_BLOCK), "blocks") == []


def test_blocks_are_personalised_and_keep_placeholders_with_quotes():
    rendered = render(body(*EVERY_BLOCK))
    assert "Hello Ada" in rendered.html
    anonymous = render(body(*EVERY_BLOCK), contact={"email": "x@example.com"})
    assert "Hello friend" in anonymous.html


def test_text_blocks_keep_line_breaks_and_never_pass_html_through():
    rendered = render(body(*EVERY_BLOCK))
    assert re.search(r"Thanks,<br\s*/?>\s*The team", rendered.html)
    assert "&lt;b&gt;not markup&lt;/b&gt;" in rendered.html
    assert "<b>not markup" not in rendered.html
    assert "Thanks,\nThe team" in rendered.text


def test_library_images_get_the_installations_address_and_their_description(settings):
    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    rendered = render(body(*EVERY_BLOCK))
    assert 'src="https://news.example.co.uk/media/abc123/cat.jpg"' in rendered.html
    assert 'alt="A cat"' in rendered.html
    assert 'href="https://news.example.co.uk/archive/1/"' in rendered.html  # {{ view_url }}


def test_a_button_is_a_real_link_with_readable_text_on_its_colour():
    rendered = render(body(*EVERY_BLOCK))
    button = re.search(r'<a href="https://example.com/read"[^>]*>\s*Read more', rendered.html)
    assert button is not None
    # Yellow takes black text (white on #ffcc00 would be 1.6:1).
    assert "color: #000000" in button.group() or "color:#000000" in button.group()
    assert "Read more (https://example.com/read)" in rendered.text


def test_the_output_is_responsive_and_outlook_safe():
    html = render(body(*EVERY_BLOCK)).html
    assert "@media only screen and (min-width:480px)" in html  # columns side by side when wide
    assert "mj-column-per-50" in html
    assert "<!--[if mso | IE]>" in html  # Outlook's fixed-width tables
    assert "googleapis" not in html  # no web fonts fetched from anyone


def test_the_layout_still_frames_a_block_body():
    rendered = render(body({"type": "text", "text": "Just this"}))
    assert LINKS.unsubscribe_url in rendered.html
    assert "Just this" in rendered.text


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"type": "button", "label": "Go", "url": "javascript:alert(1)"}, "Block 1 (Button), link"),
        ({"type": "image", "src": "file:///etc/passwd"}, "Block 1 (Image), image"),
        ({"type": "heading", "text": "  "}, "Block 1 (Heading), heading"),
        ({"type": "spacer", "height": 5000}, "Block 1 (Spacer), height in pixels"),
        ({"type": "divider", "colour": "red; background:url(x)"}, "Block 1 (Divider), colour"),
        ({"type": "marquee"}, "Block 1"),
    ],
)
def test_a_bad_block_is_refused_saying_which_block_and_field(block, expected):
    problems = check_template("Hi", body(block), "blocks")
    assert len(problems) == 1
    assert problems[0].part == "body"
    assert problems[0].message.startswith(expected), problems[0].message


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"type": "text", "text": "See [the shop](/shop)."}, "must start with https://"),
        ({"type": "text", "text": "[Offer](https://example.com/a b)"}, "cannot contain spaces"),
        ({"type": "footer", "text": "[x](javascript:alert(1))"}, "must start with https://"),
        ({"type": "columns", "left_text": "[Map](www.example.com)"}, "must start with https://"),
    ],
)
def test_a_link_in_text_that_would_arrive_dead_or_as_brackets_is_refused_at_its_block(
    block, expected
):
    """A relative address became a link to nowhere in the email; an address with a space, or a
    javascript: one, reached the reader as the raw "[Offer](…)" — and the editor said nothing."""
    problems = check_template("Hi", body(block), "blocks")
    assert len(problems) == 1, problems
    assert problems[0].message.startswith("Block 1 ("), problems[0].message
    assert expected in problems[0].message


def test_links_in_text_to_real_addresses_and_placeholders_are_kept():
    text = (
        "[web]({{ view_url }}) [shop](https://example.com/a?b=1&c=2#top)"
        " [mail](mailto:a@example.com) [ref](https://example.com/?ref={{ contact.company }})"
        " [idn](https://例え.jp/パス) [x] (y)"
    )
    assert check_template("Hi", body({"type": "text", "text": text}), "blocks") == []


def test_a_megabyte_pasted_into_a_block_is_refused_in_words():
    """It said "String should have at most 20000 characters" (pydantic's words)."""
    problems = check_template("Hi", body({"type": "text", "text": "word " * 200_000}), "blocks")
    assert [p.message for p in problems] == [
        "Block 1 (Text), text: too long: at most 20,000 characters"
    ]


def test_a_newsletter_of_ten_stories_stays_under_gmails_clipping_size():
    """Gmail cuts a message over 102 KB short behind "View entire message", hiding the footer
    with the unsubscribe link.  One MJML section a block made ten stories 109 KB; consecutive
    full-width blocks now share a section (the columns block keeps its own)."""
    story = [
        {"type": "heading", "text": "A story", "level": 2},
        {"type": "text", "text": "Lorem ipsum dolor sit amet, consectetur. " * 8},
        {"type": "image", "src": "https://example.com/picture.jpg", "alt": "A picture"},
        {"type": "button", "label": "Read more", "url": "https://example.com/story"},
    ]
    source = body(*(story * 10), {"type": "columns", "left_text": "L", "right_text": "R"})
    html = render(source).html
    assert len(html.encode()) < 60_000, len(html.encode())
    assert html.count("Read more") == 10 and html.count('alt="A picture"') == 10
    assert to_mjml(parse(source), Tokens()).count("<mj-section>") == 2  # the run, the columns


def test_an_unknown_placeholder_in_a_block_is_refused_with_a_suggestion():
    problems = check_template(
        "Hi", body({"type": "text", "text": "Hi {{ contact.frist_name }}"}), "blocks"
    )
    assert problems and "did you mean" in problems[0].message


def test_a_document_that_is_not_json_is_a_problem_not_a_crash():
    with pytest.raises(BlocksInvalid):
        parse("{not json")
    problems = check_template("Hi", "{not json", "blocks")
    assert problems and "not a block document" in problems[0].message


def test_an_empty_document_is_an_empty_body():
    problems = check_template("Hi", body(), "blocks")
    assert [p.message for p in problems] == ["the body is empty"]


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_every_starter_template_compiles_and_renders_as_it_is(key):
    starter = STARTERS[key]
    assert check_template(starter.subject, starter.body(), "blocks") == []
    rendered = render(starter.body())
    assert "Hello Ada," in rendered.html
    assert "{{" not in rendered.html


def test_markdown_bodies_keep_their_line_breaks_too():
    compiled = CompiledMessage.from_sources(subject="Hi", body="Thanks,\nThe team", fmt="markdown")
    rendered = compiled.render(SAMPLE_CONTACT, LINKS)
    assert re.search(r"Thanks,<br\s*/?>\s*The team", rendered.html)
    assert "Thanks,\nThe team" in rendered.text


@pytest.mark.parametrize(
    "hostile",
    [
        "</mj-text><mj-raw><script>alert(1)</script></mj-raw><mj-text>",
        '<img src=x onerror="alert(1)">',
        '"><svg onload=alert(1)>',
    ],
)
def test_markup_typed_into_any_block_field_stays_text(hostile):
    source = body(
        {"type": "heading", "text": hostile},
        {"type": "text", "text": hostile},
        {"type": "image", "src": "https://example.com/a.png", "alt": hostile},
        {"type": "button", "label": hostile, "url": "https://example.com/"},
        {"type": "footer", "text": hostile},
    )
    from html.parser import HTMLParser

    found: list[str] = []

    class Elements(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append(tag)
            found.extend(f"@{name}" for name, _ in attrs)

    rendered = render(source)
    Elements().feed(rendered.html)
    assert not {"script", "svg", "mj-raw"} & set(found)
    assert not [a for a in found if a.startswith("@on")]
    assert "alert(1)" in rendered.text  # shown, as the words typed


# --- right-to-left scripts ----------------------------------------------------------------------
ARABIC = "شكرا لاشتراكك في نشرتنا."
HEBREW = "תודה שנרשמתם!"


def test_arabic_and_hebrew_blocks_are_marked_right_to_left_and_start_on_the_right():
    """They were sent with no direction: a left-aligned Arabic paragraph whose full stop sat at
    its right end, after the first word instead of after the last."""
    rendered = render(
        body(
            {"type": "heading", "text": "مرحبا بكم", "level": 1},
            {"type": "text", "text": ARABIC},
            {"type": "button", "label": "اقرأ المزيد", "url": "https://example.com/"},
            {"type": "footer", "text": HEBREW},
        )
    )
    page = rendered.html
    assert re.search(r'<h1 dir="rtl"[^>]*>مرحبا بكم</h1>', page)
    assert re.search(r'text-align:right[^>]*>\s*<div dir="rtl"[^>]*>\s*<p[^>]*>' + ARABIC, page)
    assert '<span dir="rtl">اقرأ المزيد</span>' in page
    assert re.search(r'<div dir="rtl"[^>]*>\s*<p[^>]*>' + HEBREW, page)


def test_mixed_scripts_get_dir_auto_and_latin_text_no_direction():
    page = render(
        body(
            {"type": "text", "text": "مرحبا من Tidings"},
            {"type": "text", "text": "Hello {{ contact.first_name }}"},
        )
    ).html
    assert re.search(r'<div dir="auto" style="text-align:\s*start;?"', page)
    assert page.count('dir="rtl"') == 0
    assert page.count("<p") and "Hello Ada" in page
    # A placeholder or a link's address is not words: they do not make Arabic "mixed".
    linked = render(
        body({"type": "text", "text": "{{ contact.first_name }}، [اقرأ](https://x.example/a)"})
    )
    assert 'dir="rtl"' in linked.html


def test_the_text_part_starts_right_to_left_lines_with_a_right_to_left_mark():
    """Plain text has no dir: a line beginning with a Latin name ("Ada، شكرا.") was taken as
    left-to-right by mail programs, its punctuation on the wrong side."""
    text = render(
        body(
            {"type": "text", "text": "{{ contact.first_name }}، " + ARABIC},
            {"type": "text", "text": "Hello"},
        )
    ).text
    assert "\u200fAda، " + ARABIC in text  # logical order, as typed
    assert "\nHello" in text and "\u200fHello" not in text
    assert text.index(ARABIC) < text.index("Hello")


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("[x](javascript:alert(1))", "javascript:alert(1)"),
        ("Read [it](javascript:f(g(1), 2)) now", "javascript:f(g(1), 2)"),
        ("[Offer](https://example.com/a b) and more", "https://example.com/a b"),
        ("[unclosed](javascript:alert(1", "javascript:alert(1"),
        ("[wiki](/wiki/Tidings_(software))", "/wiki/Tidings_(software)"),
    ],
)
def test_a_refused_link_in_text_is_quoted_whole_as_written(text, quoted):
    """The error quoted "javascript:alert(1" — the link cut at its first ")" — so the operator
    could not find what they had typed."""
    problems = check_template("Hi", body({"type": "text", "text": text}), "blocks")
    assert len(problems) == 1, problems
    assert problems[0].message.endswith(f"(the link “{quoted}”)"), problems[0].message


def test_a_very_long_refused_link_is_quoted_shortened_with_an_ellipsis():
    link = "javascript:alert(" + "1" * 200 + ")"
    problems = check_template("Hi", body({"type": "text", "text": f"[x]({link})"}), "blocks")
    assert problems[0].message.endswith(f"(the link “{link[:59]}…”)"), problems[0].message
