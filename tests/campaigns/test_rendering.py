"""Compiling and personalising campaign messages (campaigns.rendering)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from markupsafe import Markup

from tidings.campaigns import rendering
from tidings.campaigns.models import Campaign, Layout, Template
from tidings.campaigns.rendering import (
    CampaignSandbox,
    CompiledMessage,
    MessageLinks,
    TemplateProblem,
    check_layout,
    check_template,
    contact_values,
    default_layout_html,
    ensure_default_layout,
    html_to_text,
    markdown_to_html,
    sanitise_html,
)
from tidings.policy import get_policy

LINKS = MessageLinks(
    unsubscribe_url="https://news.example.com/u/tok-1/",
    preferences_url="https://news.example.com/p/tok-2/",
    view_url="https://news.example.com/v/tok-3/",
)
ADDRESS = get_policy().controller.address

PLAIN_LAYOUT = (
    "<html><head><style>p { color: #123456 } .footer { font-size: 12px }"
    " @media (max-width: 600px) { p { color: #000001 } }</style></head>"
    '<body><div class="main">{{ content }}</div>'
    '<p class="footer"><a href="{{ unsubscribe_url }}">Unsubscribe</a> · '
    '<a href="{{ preferences_url }}">Preferences</a><br>{{ controller.address }}</p>'
    "</body></html>"
)


def person(name="Ada Lovelace", email="ada@example.com", **attributes):
    return SimpleNamespace(
        pk=1,
        name=name,
        email=email,
        company="Analytical Engines",
        job_title="",
        attributes=attributes,
    )


def compile_message(body, fmt="markdown", **kwargs):
    kwargs.setdefault("subject", "News for {{ contact.first_name }}")
    return CompiledMessage.from_sources(body=body, fmt=fmt, **kwargs)


def problems_of(*args, **kwargs):
    return [(p.part, p.line, p.column, p.message) for p in check_template(*args, **kwargs)]


# --- bodies, layouts, personalisation ---------------------------------------------------------
def test_a_markdown_body_renders_inside_the_default_layout():
    message = compile_message("# Hello {{ contact.first_name }}\n\nSome *news* for you.")
    rendered = message.render(person(), LINKS)
    assert rendered.subject == "News for Ada"
    assert re.search(r"<h1[^>]*>Hello Ada</h1>", rendered.html)
    assert re.search(r"<em>news</em>", rendered.html)
    # The default layout's frame: view in browser, unsubscribe, preferences, address.
    assert f'href="{LINKS.view_url}"' in rendered.html
    assert f'href="{LINKS.unsubscribe_url}"' in rendered.html
    assert f'href="{LINKS.preferences_url}"' in rendered.html
    assert ADDRESS in rendered.html
    assert rendered.html.startswith("<!DOCTYPE html>")


def test_an_html_body_renders_inside_its_layout():
    message = compile_message(
        '<h2>Offers</h2><p>Dear {{ contact.name }}, see <a href="{{ view_url }}">this</a>.</p>',
        fmt="html",
        layout_html=PLAIN_LAYOUT,
    )
    html = message.render(person(), LINKS).html
    assert re.search(r'<div class="main"><h2>Offers</h2><p[^>]*>Dear Ada Lovelace, see', html)
    assert html.index("Offers") < html.index("Unsubscribe")


def test_personalisation_uses_the_contact_fields_attributes_and_links():
    message = compile_message(
        "{{ contact.name }}|{{ contact.first_name }}|{{ contact.email }}|{{ contact.company }}|"
        "{{ contact.attributes.plan }}|{{ controller.name }}|{{ campaign.subject }}|"
        "{{ unsubscribe_url }}",
        fmt="html",
    )
    html = message.render(person(plan="pro"), LINKS).html
    expected = (
        f"Ada Lovelace|Ada|ada@example.com|Analytical Engines|pro|"
        f"{get_policy().controller.name}|News for Ada|{LINKS.unsubscribe_url}"
    )
    assert expected in html


def test_contact_values_are_plain_data_never_the_model():
    values = contact_values(person(plan="pro"))
    assert values == {
        "name": "Ada Lovelace",
        "first_name": "Ada",
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "job_title": "",
        "attributes": {"plan": "pro"},
    }
    assert (
        contact_values({"email": "x@example.com", "attributes": "not a dict"})["attributes"] == {}
    )


@pytest.mark.parametrize("name", ["   ", "\u00a0", "\t\n"])
def test_a_name_of_only_white_space_has_no_first_name_and_still_renders(name):
    """Such a name got past the contact forms; its first word was looked up in an empty split,
    so the preview answered 500 and the person's campaign message failed ("build: IndexError")."""
    assert contact_values(person(name=name))["first_name"] == ""
    message = compile_message("Hello {{ contact.first_name or 'there' }}!")
    rendered = message.render(person(name=name), LINKS)
    assert rendered.subject == "News for"
    assert "Hello there!" in rendered.html


def test_a_missing_attribute_renders_nothing_or_its_default():
    message = compile_message(
        "[{{ contact.attributes.plan }}][{{ contact.attributes.plan | default('friend') }}]"
        "[{{ contact.attributes.a.b.c }}][{{ contact.job_title | default('no title', true) }}]",
        fmt="html",
    )
    html = message.render(person(), LINKS).html
    assert "[][friend][][no title]" in html


def test_default_stands_in_for_a_blank_name_too():
    """A contact without a name has first_name "" (defined), which Jinja's default left alone:
    "Hi {{ contact.first_name | default('there') }}" read "Hi " to everyone without a name."""
    message = compile_message(
        "[{{ contact.first_name | default('there') }}][{{ contact.attributes.n | d('none') }}]"
        "[{{ contact.attributes.note | default('-') }}]",
        fmt="html",
        subject="Hi {{ contact.first_name | default('there') }}",
    )
    blank = message.render(person(name="", n=0, note=None), LINKS)
    assert blank.subject == "Hi there"
    assert "[there][0][-]" in blank.html  # a 0 is a value: it stays
    assert message.render(person(name="Ada Lovelace"), LINKS).subject == "Hi Ada"


def test_a_missing_attribute_in_sums_and_comparisons_does_not_crash():
    message = compile_message(
        "[{{ contact.attributes.visits + 1 }}]"
        "[{% if contact.attributes.visits > 3 %}regular{% else %}new{% endif %}]"
        "[{{ contact.attributes.visits | int + 1 }}]",
        fmt="html",
    )
    assert "[][new][1]" in message.render(person(), LINKS).html
    assert "[5][regular][5]" in message.render(person(visits=4), LINKS).html


def test_an_attribute_of_an_unexpected_type_renders_as_if_missing_instead_of_crashing(caplog):
    message = compile_message(
        "Hello {{ contact.first_name }}, visit {{ contact.attributes.visits + 1 }}.", fmt="html"
    )
    rendered = message.render(person(visits="many"), LINKS)  # "many" + 1: a TypeError
    assert "Hello Ada, visit ." in rendered.html
    assert "rendered without attributes" in caplog.text and "many" not in caplog.text


def test_none_and_html_in_contact_data_are_printed_safely():
    message = compile_message("<p>{{ contact.attributes.note }}|{{ contact.name }}</p>", fmt="html")
    rendered = message.render(person(name="<b>Ada</b>", note=None), LINKS)
    assert re.search(r"<p[^>]*>\|&lt;b&gt;Ada&lt;/b&gt;</p>", rendered.html)
    assert "|<b>Ada</b>" in rendered.text  # plain text is not HTML: no escaping there


def test_the_subject_is_personalised_and_kept_on_one_line():
    message = compile_message("Body", subject="Hi {{ contact.name }}")
    assert message.render(person(name="Ada\nLovelace"), LINKS).subject == "Hi Ada Lovelace"


# --- CSS -----------------------------------------------------------------------------------------
def test_css_is_inlined_and_media_queries_kept_in_a_style_element():
    message = compile_message("Hello", layout_html=PLAIN_LAYOUT)
    html = message.render(person(), LINKS).html
    assert re.search(r'<p style="color: #123456;">Hello</p>', html)
    assert re.search(r'<p class="footer" style="color: #123456;font-size: 12px;">', html)
    assert "@media (max-width: 600px)" in html
    assert "p { color: #123456 }" not in html  # the rule itself is gone once inlined


def test_the_charset_comes_first_in_the_head_before_the_layouts_css():
    """css-inline put the <style> it keeps (media queries, dark-mode rules) before <meta
    charset>: past the first 1024 bytes, a browser opening the email saved as .html (or the
    web version) did not find the charset and showed "Jörg" as "JÃ¶rg"."""
    dark = " ".join(
        f"@media (prefers-color-scheme: dark) {{ .c{n} {{ color: #eeeeee !important;"
        f" background-color: #111111 !important }} }}"
        for n in range(20)
    )
    layout = PLAIN_LAYOUT.replace("</style>", f" {dark}</style>")
    message = compile_message("Grüße, Jörg", layout_html=layout)
    html = message.render(person(), LINKS).html
    assert len(html.encode()[: html.index("</style>")]) > 1024  # the CSS is that long
    head = html[html.index("<head>") + len("<head>") :].lstrip()
    assert head.startswith('<meta charset="utf-8">')
    assert html.count("<meta charset") == 1
    assert b'<meta charset="utf-8">' in html.encode()[:1024]
    assert "prefers-color-scheme: dark" in html and "Grüße, Jörg" in html


def test_inlining_leaves_jinja_in_tables_and_comparisons_intact():
    # Unprotected, css-inline moves "{% for %}" out of the table and escapes "<" in the "if".
    body = (
        "<table>{% for i in range(3) %}<tr><td>{{ i }}{% if i < 2 %},{% endif %}</td></tr>"
        "{% endfor %}</table>"
    )
    message = compile_message(body, fmt="html", layout_html=PLAIN_LAYOUT)
    assert "<tbody>{% for i in range(3) %}<tr>" in message.html_source
    assert "{% if i < 2 %}" in message.html_source
    html = message.render(person(), LINKS).html
    assert re.search(r"<tbody><tr><td[^>]*>0,</td></tr><tr><td[^>]*>1,</td></tr>"
                     r"<tr><td[^>]*>2</td></tr></tbody>", html)  # fmt: skip


# --- the plain-text part -------------------------------------------------------------------------
def test_the_text_part_is_generated_from_the_html_with_links_as_text_and_url():
    message = compile_message(
        "# Hello {{ contact.first_name }}\n\nRead [our news]({{ view_url }}).\n\n"
        "- one\n- two\n\nBye"
    )
    text = message.render(person(), LINKS).text
    assert (
        "Hello Ada\n\nRead our news (https://news.example.com/v/tok-3/).\n\n- one\n- two\n\nBye"
        in text
    )
    assert f"Unsubscribe ({LINKS.unsubscribe_url})" in text
    assert ADDRESS in text
    assert "<" not in text and "{{" not in text


def test_the_text_part_can_be_written_by_hand_and_is_personalised_too():
    message = compile_message(
        "# Hello",
        text_body="Hi {{ contact.first_name }},\n{% if contact.company %}\nfrom "
        "{{ contact.company }}\n{% endif %}\nBye",
    )
    text = message.render(person(), LINKS).text
    assert "Hi Ada,\nfrom Analytical Engines\nBye" in text
    assert "# Hello" not in text and "Hello" not in text.split("Hi Ada")[1]
    assert f"Unsubscribe ({LINKS.unsubscribe_url})" in text  # still inside the layout's frame


def test_a_layouts_own_text_frame_wraps_the_body_text():
    frame = (
        "{{ controller.name }}\n\n{{ content }}\n\n--\nLeave: {{ unsubscribe_url }}\n"
        "Choose: {{ preferences_url }}\n{{ controller.address }}\n"
    )
    message = compile_message("Hello *there*", layout_html=PLAIN_LAYOUT, layout_text=frame)
    text = message.render(person(), LINKS).text
    assert text.startswith(f"{get_policy().controller.name}\n\nHello there\n\n--\nLeave: ")


def test_the_preheader_is_hidden_at_the_top_of_the_html_and_left_out_of_the_text():
    message = compile_message("Body text", preheader="Inside: news for {{ contact.first_name }}")
    rendered = message.render(person(), LINKS)
    body = rendered.html[rendered.html.index("<body") :]
    assert re.match(
        r'<body[^>]*>\s*<div style="display:none;[^"]*"[^>]*>Inside: news for Ada', body
    )
    assert "Inside:" not in rendered.text


def test_literal_braces_in_the_html_stay_literal():
    message = compile_message("<p>&#123;&#123; not a tag }}</p>", fmt="html")
    rendered = message.render(person(), LINKS)
    assert "{{ not a tag }}" in rendered.text
    assert "{{ not a tag }}" in rendered.html


# --- layouts that cannot be used -----------------------------------------------------------------
def test_a_layout_without_an_unsubscribe_link_is_refused_with_a_clear_message():
    layout = PLAIN_LAYOUT.replace('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "")
    problems = check_layout(layout)
    assert [p.part for p in problems] == ["layout"]
    assert problems[0].message.startswith("the layout has no unsubscribe link: add <a href=")


def test_a_layout_needs_the_preference_link_the_address_and_the_content_marker():
    problems = check_layout('<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')
    messages = " / ".join(p.message for p in problems)
    assert "{{ content }} exactly once" in messages
    problems = check_layout('{{ content }}<a href="{{ unsubscribe_url }}">Unsubscribe</a>')
    messages = " / ".join(p.message for p in problems)
    assert "no link to the preference centre" in messages
    assert "does not show your postal address" in messages
    assert check_layout(PLAIN_LAYOUT) == []


def test_a_hand_written_text_frame_must_carry_the_links_too():
    problems = check_layout(PLAIN_LAYOUT, "{{ content }}\n{{ preferences_url }}")
    assert {(p.part, p.message) for p in problems} == {
        ("text", "the plain-text layout must contain {{ unsubscribe_url }}"),
        ("text", "the plain-text layout must contain {{ controller.address }}"),
    }


def test_an_unsubscribe_link_the_sanitiser_removes_does_not_count():
    layout = PLAIN_LAYOUT.replace('href="{{ unsubscribe_url }}"', 'onclick="{{ unsubscribe_url }}"')
    assert check_layout(layout)  # the attribute is stripped, so its Jinja is reported lost


@pytest.mark.django_db
def test_a_campaign_whose_layout_lacks_an_unsubscribe_link_cannot_be_compiled():
    broken = Layout.objects.create(name="No way out", html="<div>{{ content }}</div>")
    campaign = Campaign(name="C", subject="S", body="Hello", format="markdown", layout=broken)
    with pytest.raises(TemplateProblem) as caught:
        CompiledMessage.for_campaign(campaign)
    assert caught.value.part == "layout"
    assert "no unsubscribe link" in caught.value.message


# --- errors at save time -----------------------------------------------------------------------
def test_a_syntax_error_reports_its_line_and_column():
    assert problems_of("S", "Hello\n\nDear {{ contact.name @ 1 }}", "markdown") == [
        ("body", 3, 22, "unexpected character '@'")
    ]
    ((part, line, column, message),) = problems_of("S", "One\nTwo {{ contact.name | upper", "html")
    assert (part, line, column) == ("body", 2, 5)
    assert "end of print statement" in message


def test_an_unclosed_block_points_at_the_tag_that_opens_it():
    assert problems_of("S", "Intro\n  {% if contact.company %}\nHi\n\nBye", "markdown") == [
        ("body", 2, 3, "{% if %} is never closed: add {% endif %}")
    ]


def test_an_unknown_tag_or_filter_is_pointed_at():
    assert problems_of("S", "Hi\n{{ contact.name | defualt('x') }}", "markdown") == [
        ("body", 2, 19, "there is no filter named 'defualt'")
    ]
    ((_, line, column, message),) = problems_of("S", "a\nb {% endfro %}", "markdown")
    assert (line, column) == (2, 6) and message.startswith("unknown tag 'endfro'")


def test_unknown_variables_and_fields_are_flagged_before_sending():
    assert problems_of(
        "Hi {{ contcat.name }}", "{{ contact.nmae }}\n{{ unsubscribe }}", "html"
    ) == [
        ("subject", 1, 7, 'unknown variable "contcat": did you mean "contact"?'),
        ("body", 1, 12, 'contact has no field "nmae": did you mean "contact.name"?'),
        ("body", 2, 4, 'unknown variable "unsubscribe": did you mean "unsubscribe_url"?'),
    ]


def test_names_set_in_the_template_itself_are_not_unknown():
    body = (
        "{% set greeting = 'Hi' %}"
        "{% for x in [1, 2] %}{{ greeting }} {{ x }} {{ loop.index }}{% endfor %}"
    )
    assert check_template("S", body, "html") == []


def test_a_problem_in_the_text_part_or_subject_names_its_part():
    problems = problems_of("Hello {% if %}", "Body", "markdown", "Text {{ contact.x }}")
    assert [(part, line) for part, line, _, _ in problems] == [("subject", 1), ("text", 1)]


# --- sanitising ----------------------------------------------------------------------------------
def test_sanitising_keeps_jinja_including_inside_an_href():
    source = (
        '<p class="a" style="color: red">Hi {{ contact.name | default("you") }}</p>'
        '<a href="{{ unsubscribe_url }}">Leave</a>'
        '<a href="https://example.com/?e={{ contact.email | urlencode }}&amp;x=1">Go</a>'
        "<table>{% for i in range(2) %}<tr><td>{{ i }}</td></tr>{% endfor %}</table>"
    )
    cleaned = sanitise_html(source)
    assert '<p class="a" style="color: red">Hi {{ contact.name | default("you") }}</p>' in cleaned
    assert '<a href="{{ unsubscribe_url }}">Leave</a>' in cleaned
    assert 'href="https://example.com/?e={{ contact.email | urlencode }}&amp;x=1"' in cleaned
    assert "<table><tbody>{% for i in range(2) %}<tr><td>{{ i }}</td></tr>{% endfor %}" in cleaned


def test_sanitising_removes_scripts_frames_forms_handlers_and_javascript_links():
    cleaned = sanitise_html(
        '<p onclick="steal()">Hi</p><script>steal()</script><iframe src="https://x"></iframe>'
        '<form action="https://x"><input name="q"></form><object data="x"></object>'
        '<a href="javascript:steal()">x</a><img src="https://x/a.png" onerror="steal()">'
    )
    assert "steal" not in cleaned
    for word in ("<script", "<iframe", "<form", "<input", "<object", "javascript:"):
        assert word not in cleaned
    assert '<img src="https://x/a.png">' in cleaned


@pytest.mark.parametrize(
    "declaration",
    [
        "width: expression(steal())",
        "width: EXPR/**/ESSION(steal())",
        "width: expr\\65 ssion(steal())",
        "background: url(javascript:steal())",
        "background-image: url( 'JavaScript:steal()' )",
        "background: url(java\\73 cript:steal())",
        "background: url(vbscript:steal())",
        "background: url(data:text/html,steal)",
        "-moz-binding: url(https://x/steal.xml#x)",
        "behavior: url(steal.htc)",
    ],
)
def test_sanitising_removes_css_that_runs_code_and_keeps_the_rest(declaration):
    """Old Internet Explorer and Outlook ran CSS expressions, and some clients still follow
    javascript: URLs in CSS: a style attribute pasted from elsewhere must not carry them."""
    cleaned = sanitise_html(
        f'<p style="color: red; {declaration}; background: url(https://x/a.png)">Hi</p>'
    )
    assert "steal" not in cleaned
    assert "color: red" in cleaned and "url(https://x/a.png)" in cleaned


def test_outlooks_conditional_comments_are_sanitised_too():
    """Outlook for Windows reads what is inside <!--[if mso]>…<![endif]--> as HTML, so pasted
    HTML cannot hide a script, a handler or a javascript: link there; the unbalanced tables
    that such comments hold for Outlook (MJML writes them) stay as they are."""
    cleaned = sanitise_html(
        '<!--[if mso]><a href="javascript:steal()" onclick="steal()">x</a>'
        "<script>steal()</script><SCRIPT src=https://x/steal.js></SCRIPT>"
        '<iframe src="https://x/steal"></iframe><meta http-equiv="refresh" content="0;steal">'
        '<v:rect style="width:expression(steal())" fillcolor="#ffffff" href=" java&#x73;cript:'
        'steal()"></v:rect><table role="presentation" width="600"><tr>'
        '<td style="width:600px" class=x><![endif]--><p>Hi</p>'
        "<!--[if mso]></td></tr></table><![endif]-->"
    )
    assert "steal" not in cleaned
    for word in ("<script", "<iframe", "<meta", "onclick"):
        assert word not in cleaned.lower()
    assert (
        '<!--[if mso]><a>x</a><v:rect fillcolor="#ffffff"></v:rect>'
        '<table role="presentation" width="600"><tr><td style="width:600px" class="x">'
        "<![endif]--><p>Hi</p><!--[if mso]></td></tr></table><![endif]-->"
    ) in cleaned


def test_a_layouts_stylesheet_cannot_carry_code_into_the_message():
    layout = PLAIN_LAYOUT.replace(
        "p { color: #123456 }",
        "p { color: #123456; width: expression(steal()) }"
        " .main { background: url(javascript:steal()) }",
    )
    html = compile_message("Hi", layout_html=layout).render(person(), LINKS).html
    assert "steal" not in html and "color: #123456" in html


# What Word puts on the clipboard (and "Save as Web Page" writes): a whole document.
WORD_DOCUMENT = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta charset="utf-8">'
    "<!--[if gte mso 9]><xml><o:DocumentProperties></o:DocumentProperties></xml><![endif]-->"
    "<style><!-- p.MsoNormal {margin:0cm; font-family:Calibri,sans-serif;} --></style></head>"
    "<body lang=EN-GB style='tab-interval:36.0pt'><div class=WordSection1>"
    "<p class=MsoNormal><b>Spring update<o:p></o:p></b></p>"
    "<p class=MsoNormal>Hello {{ contact.first_name }}, visit "
    '<a href="https://example.com/spring">our site</a>.<o:p>&nbsp;</o:p></p>'
    "</div></body></html>"
)


def test_a_whole_html_document_pasted_as_the_body_takes_its_body_into_the_layout():
    """Pasting a document from Word (or a saved web page) as an HTML body: its </body> ended
    the layout's body too, cutting off the footer, and saving said "layout, line 57:
    {{ controller.name }} was removed with the HTML around it", about a layout nobody touched."""
    assert check_template("S", WORD_DOCUMENT, "html") == []  # in the default layout
    rendered = compile_message(WORD_DOCUMENT, fmt="html", layout_html=PLAIN_LAYOUT).render(
        person(), LINKS
    )
    assert "Spring update" in rendered.html and "Hello Ada, visit" in rendered.html
    assert "margin: 0cm" in rendered.html  # Word's own stylesheet, inlined like a layout's
    assert LINKS.unsubscribe_url in rendered.html and ADDRESS in rendered.html
    assert rendered.html.lower().count("<body") == 1 and "Spring update" in rendered.text


def test_jinja_inside_a_tag_but_outside_an_attribute_value_is_refused():
    assert problems_of("S", '<td {% if contact.company %}class="a"{% endif %}>x</td>', "html") == [
        ("body", 1, 5, (
            '{% if contact.company %} stands inside an HTML tag: Jinja may only go in an '
            'attribute\'s quoted value, e.g. <td class="{% if … %}vip{% endif %}">'
        ))
    ]  # fmt: skip
    assert (
        check_template("S", '<td class="{% if contact.company %}a{% endif %}">x</td>', "html") == []
    )


def test_html_in_markdown_is_sanitised_too():
    message = compile_message("Hello <script>alert(1)</script><b onclick='x()'>bold</b>")
    html = message.render(person(), LINKS).html
    assert "<script" not in html and "onclick" not in html and "<b>bold</b>" in html


def test_markdown_keeps_jinja_in_links_emphasis_and_tables():
    html = markdown_to_html(
        '*{{ contact.name }}* [x]({{ view_url }}) {{ a | default("q") }}\n\n'
        "| a |\n|---|\n| {{ contact.email }} |"
    )
    assert "<em>{{ contact.name }}</em>" in html
    assert '<a href="{{ view_url }}">x</a>' in html
    assert '{{ a | default("q") }}' in html
    assert "<td>{{ contact.email }}</td>" in html


def test_a_markdown_loop_around_a_list_repeats_its_items_not_the_list():
    message = compile_message("{% for n in ['one', 'two'] %}\n- {{ n }}\n{% endfor %}\n\nAfter")
    rendered = message.render(person(), LINKS)
    assert re.search(r"<ul[^>]*>\s*<li>one</li>\s*<li>two</li>\s*</ul>", rendered.html)
    assert "- one\n- two\n\nAfter" in rendered.text


def test_html_to_text_reads_like_an_email():
    text = html_to_text(
        "<h1>Title</h1><p>Para <b>bold</b><br>next line</p><ol><li>a</li><li>b</li></ol>"
        '<p><a href="https://x.example/">Link</a> and <a href="https://y.example/">'
        'https://y.example/</a></p><div style="display: none">hidden</div><img alt="Logo">'
    )
    assert text == (
        "Title\n\nPara bold\nnext line\n\n1. a\n2. b\n\nLink (https://x.example/) and "
        "https://y.example/\n\nLogo\n"
    )


def test_a_mailto_link_reads_as_its_address_in_the_text_part():
    text = html_to_text(
        '<p><a href="mailto:sales@example.com?subject=Hi%20there">Write to us</a> or '
        '<a href="MAILTO:j%C3%B6rg@example.com">mail Jörg</a></p>'
    )
    assert text == "Write to us (sales@example.com) or mail Jörg (jörg@example.com)\n"


# --- where the engine gets it from ---------------------------------------------------------------
@pytest.mark.django_db
def test_for_campaign_uses_the_campaign_and_falls_back_to_its_template():
    layout = Layout.objects.create(name="Plain", html=PLAIN_LAYOUT)
    template = Template.objects.create(
        name="T", layout=layout, format="html", subject="From template", body="<p>Template body</p>"
    )
    campaign = Campaign(
        name="C", subject="Hi {{ contact.first_name }}", preheader="Pre", template=template,
        body="", format="markdown",
    )  # fmt: skip
    rendered = CompiledMessage.for_campaign(campaign).render(person(), LINKS)
    assert rendered.subject == "Hi Ada"
    assert "Template body" in rendered.html and "Preferences" in rendered.html  # its layout
    campaign.body = "Own **body**"
    rendered = CompiledMessage.for_campaign(campaign).render(person(), LINKS)
    assert "<strong>body</strong>" in rendered.html and "Template body" not in rendered.html


@pytest.mark.django_db
def test_for_template_uses_its_layout_and_optionally_another_subject():
    layout = Layout.objects.create(name="Plain", html=PLAIN_LAYOUT)
    template = Template.objects.create(name="T", layout=layout, subject="Sub", body="Hello")
    assert CompiledMessage.for_template(template).render(person(), LINKS).subject == "Sub"
    compiled = CompiledMessage.for_template(template, subject="Other {{ contact.first_name }}")
    assert compiled.render(person(), LINKS).subject == "Other Ada"


@pytest.mark.django_db
def test_the_default_layout_is_created_once_and_passes_its_own_checks():
    layout = ensure_default_layout()
    assert ensure_default_layout().pk == layout.pk
    assert layout.name == "Default" and layout.html == default_layout_html()
    assert check_layout(layout.html, layout.text) == []
    html = default_layout_html()
    assert 'role="presentation"' in html and '<html lang="en">' in html
    assert "you subscribed to news from {{ controller.name }}" in html


# --- golden check: compiled once == rendered from scratch ----------------------------------------
GOLDEN_LAYOUT = default_layout_html()
GOLDEN_BODY = """\
# Hello {{ contact.first_name | default("there") }}

Your plan is **{{ contact.attributes.plan | default("free") }}** at {{ contact.company }}.

{% if contact.attributes.plan == "pro" %}
Thanks for being a pro customer.
{% else %}
Have you seen [our plans]({{ view_url }})?
{% endif %}

{% for item in ["Release notes", "Events"] %}
- {{ item }} for {{ contact.first_name }}
{% endfor %}

| Field | Value |
|-------|-------|
| Email | {{ contact.email }} |

[Manage your emails]({{ preferences_url }})
"""
GOLDEN_CONTACTS = [
    person(),
    person("Grace Brewster Hopper", "grace@example.org", plan="pro"),
    person("Alan Turing", "alan@example.net", plan="team", visits=3),
]


def slow_render(contact, links):
    """From scratch, for one contact: personalise every source first, then Markdown, sanitising,
    layout, CSS and text on the finished HTML, with no placeholders anywhere.  (Only for values
    Markdown leaves alone: here an empty name or a "*" would be read as Markdown, which the
    compiled message rightly never does.)"""
    values = {
        "contact": contact_values(contact),
        "unsubscribe_url": links.unsubscribe_url,
        "preferences_url": links.preferences_url,
        "view_url": links.view_url,
        "controller": {"name": get_policy().controller.name, "address": ADDRESS},
    }
    text_env, html_env = CampaignSandbox(autoescape=False), CampaignSandbox(autoescape=True)
    subject = " ".join(
        text_env.from_string("News for {{ contact.first_name }}").render(values).split()
    )
    values["campaign"] = {"subject": subject}
    body = text_env.from_string(GOLDEN_BODY).render(values)
    layout = html_env.from_string(GOLDEN_LAYOUT).render(values, content=Markup("{{ content }}"))
    static = CompiledMessage(
        rendering.Sources(subject=subject, body=body, fmt="markdown", layout_html=layout)
    )
    nobody = SimpleNamespace(name="", email="", company="", job_title="", attributes={})
    return static.render(nobody, links)


def test_the_compiled_message_renders_exactly_what_rendering_from_scratch_gives():
    compiled = compile_message(GOLDEN_BODY, layout_html=GOLDEN_LAYOUT)
    for contact in GOLDEN_CONTACTS:
        fast, slow = compiled.render(contact, LINKS), slow_render(contact, LINKS)
        assert fast.subject == slow.subject
        assert fast.html == slow.html
        assert fast.text == slow.text


def test_the_default_layout_leaves_out_the_browser_link_when_there_is_no_view_url():
    message = compile_message("Hello")
    rendered = message.render(
        person(), MessageLinks(LINKS.unsubscribe_url, LINKS.preferences_url, "")
    )
    assert "View this email" not in rendered.html and 'href=""' not in rendered.html
    assert rendered.text.startswith("Hello\n\nYou are receiving this email")
