"""The operator pages for layouts and campaign templates."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.pages import other_scripts
from tidings.audience.actions import do_create_contact
from tidings.campaigns.models import Layout, Template
from tidings.campaigns.rendering import default_layout_html

pytestmark = pytest.mark.django_db


@pytest.fixture
def layout():
    return Layout.objects.create(name="Default", html=default_layout_html())


@pytest.fixture
def template(layout, owner):
    return Template.objects.create(
        name="Monthly news",
        layout=layout,
        format="markdown",
        subject="News for {{ contact.first_name | default('you') }}",
        body="# Hello {{ contact.first_name | default('there') }}\n\n"
        "Work at {{ contact.company }}?",
        created_by=owner,
    )


@pytest.fixture
def stranger_client(client):
    user = get_user_model().objects.create_user("stranger", "s@example.com", "pw")
    client.force_login(user)
    return client


def person(name, email, **extra):
    contact, _ = do_create_contact({"name": name, "email": email, **extra}, purpose="newsletter")
    return contact


def page_of(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_template_pages_send_visitors_to_sign_in_and_refuse_non_staff(
    client, template, layout, django_user_model
):
    pages = [
        ("get", reverse("templates_ui:index")),
        ("get", reverse("templates_ui:template-new")),
        ("get", reverse("templates_ui:template-edit", args=[template.pk])),
        ("get", reverse("templates_ui:template-preview", args=[template.pk])),
        ("post", reverse("templates_ui:template-delete", args=[template.pk])),
        ("get", reverse("templates_ui:layout-new")),
        ("get", reverse("templates_ui:layout-edit", args=[layout.pk])),
        ("get", reverse("templates_ui:layout-preview", args=[layout.pk])),
        ("post", reverse("templates_ui:layout-delete", args=[layout.pk])),
    ]
    for method, url in pages:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login" in response["Location"], url
    client.force_login(django_user_model.objects.create_user("stranger", "s@example.com", "pw"))
    for method, url in pages:
        assert getattr(client, method)(url).status_code == 403, url
    assert Template.objects.exists() and Layout.objects.exists()


def test_the_index_lists_templates_and_layouts_in_a_fixed_number_of_queries(
    owner_client, layout, template, django_assert_num_queries
):
    page = page_of(owner_client.get(reverse("templates_ui:index")))
    assert "Monthly news" in page and "Default" in page
    assert 'aria-current="page">Templates</a>' in page
    for i in range(5):
        Template.objects.create(name=f"T{i}", layout=layout, subject="S", body="B")
        Layout.objects.create(name=f"L{i}", html=default_layout_html())
    with django_assert_num_queries(4):  # session, user, templates with layouts, layouts
        owner_client.get(reverse("templates_ui:index"))


def test_a_new_layout_starts_from_the_default_and_is_saved(owner_client):
    page = page_of(owner_client.get(reverse("templates_ui:layout-new")))
    assert html.escape("{{ unsubscribe_url }}") in page and "View this email" in page
    response = owner_client.post(
        reverse("templates_ui:layout-new"),
        {"name": "House style", "html": default_layout_html(), "text": ""},
    )
    saved = Layout.objects.get(name="House style")
    assert response["Location"] == reverse("templates_ui:layout-preview", args=[saved.pk])


def test_a_layout_without_an_unsubscribe_link_is_refused_with_the_reason(owner_client):
    without = default_layout_html().replace('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "")
    response = owner_client.post(
        reverse("templates_ui:layout-new"), {"name": "Sneaky", "html": without, "text": ""}
    )
    page = page_of(response)
    assert "the layout has no unsubscribe link" in page
    assert 'aria-invalid="true"' in page
    assert not Layout.objects.filter(name="Sneaky").exists()


def test_a_template_error_is_shown_at_save_time_with_line_column_and_a_caret(owner_client, layout):
    body = "Hello\n\nDear {{ contact.name @ 1 }},"
    response = owner_client.post(
        reverse("templates_ui:template-new"),
        {"name": "Broken", "layout": layout.pk, "format": "markdown", "subject": "S", "body": body},
    )
    page = html.unescape(page_of(response))
    assert "Body, line 3, column 22:</strong> unexpected character '@'" in page
    assert "\nDear {{ contact.name @ 1 }},\n" + " " * 21 + "^</pre>" in page
    assert "line 3, column 22: unexpected character" in page  # at the field itself too
    assert not Template.objects.filter(name="Broken").exists()


def test_unknown_variables_and_a_broken_subject_are_caught_before_saving(owner_client, layout):
    response = owner_client.post(
        reverse("templates_ui:template-new"),
        {
            "name": "Typos",
            "layout": layout.pk,
            "format": "html",
            "subject": "Hi {{ contact.frist_name }}",
            "body": "<p>{{ unsubscribe }}</p>",
            "text_body": "{% if contact.name %}",
        },
    )
    page = html.unescape(page_of(response))
    assert "3 problems to fix before saving" in page
    assert 'Subject, line 1, column 15:</strong> contact has no field "frist_name"' in page
    assert 'Body, line 1, column 7:</strong> unknown variable "unsubscribe"' in page
    assert "Plain text, line 1, column 1:</strong> {% if %} is never closed" in page
    assert not Template.objects.filter(name="Typos").exists()


def test_a_template_whose_layout_cannot_be_used_is_refused(owner_client):
    bad = Layout.objects.create(name="Old", html="<div>{{ content }}</div>")  # made elsewhere
    response = owner_client.post(
        reverse("templates_ui:template-new"),
        {"name": "T", "layout": bad.pk, "format": "markdown", "subject": "S", "body": "Hi"},
    )
    page = html.unescape(page_of(response))
    assert "the layout “Old” cannot be used: the layout has no unsubscribe link" in page
    assert not Template.objects.filter(name="T").exists()


def test_a_valid_template_is_saved_and_opens_its_preview(owner_client, owner, layout):
    response = owner_client.post(
        reverse("templates_ui:template-new"),
        {
            "name": "Welcome",
            "layout": layout.pk,
            "format": "markdown",
            "subject": "Welcome {{ contact.first_name }}",
            "body": "Hello **{{ contact.attributes.plan | default('friend') }}**",
            "text_body": "",
        },
    )
    saved = Template.objects.get(name="Welcome")
    assert saved.created_by == owner
    assert response["Location"] == reverse("templates_ui:template-preview", args=[saved.pk])
    page = page_of(owner_client.get(response["Location"]))
    assert "Welcome Ada" in page  # the sample contact, Ada Lovelace


def test_a_new_template_without_any_layout_asks_for_a_layout_first(owner_client):
    response = owner_client.get(reverse("templates_ui:template-new"))
    assert response["Location"] == reverse("templates_ui:layout-new") + "?then=template"


def test_the_preview_renders_as_a_contact_chosen_by_id_or_email(owner_client, template):
    grace = person("Grace Hopper", "grace@navy.example", company="US Navy")
    person("Grace Kelly", "kelly@example.com")
    url = reverse("templates_ui:template-preview", args=[template.pk])

    page = html.unescape(page_of(owner_client.get(url, {"contact": grace.pk})))
    assert "News for Grace" in page and "Work at US Navy?" in page
    assert f"Showing contact #{grace.pk}, grace@navy.example." in page

    page = html.unescape(page_of(owner_client.get(url, {"contact": "GRACE@navy.example"})))
    assert "News for Grace" in page

    page = page_of(owner_client.get(url, {"contact": "grace"}))  # two match: choose one
    assert "2 contacts match" in page
    assert f'href="?contact={grace.pk}"' in page
    assert "Showing a made-up contact, Ada Lovelace." in page

    page = page_of(owner_client.get(url, {"contact": "nobody"}))
    assert "No contact matches" in page and "News for Ada" in page


def test_the_preview_shows_subject_text_and_html_in_a_sandboxed_frame_that_runs_nothing(
    owner_client, layout
):
    template = Template.objects.create(
        name="Hostile",
        layout=layout,
        format="html",
        subject="Hi",
        body=(
            '<p onmouseover="steal()">Hello {{ contact.name }}</p><script>steal()</script>'
            '<img src="x" onerror="steal()"><a href="javascript:steal()">x</a>'
        ),
    )
    page = page_of(owner_client.get(reverse("templates_ui:template-preview", args=[template.pk])))
    assert "steal" not in page
    assert not other_scripts(page)
    frame = re.search(r"<iframe[^>]*>", page).group()
    assert 'sandbox=""' in frame
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert "<p" in srcdoc and "Hello Ada Lovelace" in srcdoc
    assert re.search(r'<pre class="preview-text">[^<]*Hello Ada Lovelace', page)


def test_the_preview_says_when_the_template_cannot_be_sent(owner_client, template, layout):
    Layout.objects.filter(pk=layout.pk).update(html="<div>{{ content }}</div>")
    page = page_of(owner_client.get(reverse("templates_ui:template-preview", args=[template.pk])))
    assert "This cannot be sent:" in page and "no unsubscribe link" in page
    assert "<iframe" not in page


def test_the_phone_width_preview_keeps_the_chosen_contact(owner_client, template):
    url = reverse("templates_ui:template-preview", args=[template.pk])
    page = page_of(owner_client.get(url, {"contact": "ada@example.com", "width": "phone"}))
    assert 'class="preview-frame phone"' in page
    assert 'name="width" value="phone"' in page


def test_a_layout_preview_shows_the_layout_around_a_sample_body(owner_client, layout):
    page = html.unescape(
        page_of(owner_client.get(reverse("templates_ui:layout-preview", args=[layout.pk])))
    )
    assert "Preview of the layout Default" in page
    assert "Your campaign goes here" in page and "Unsubscribe (" in page
    # The sample's link led to {{ view_url }}, blank in a preview: "with a link ()" in the
    # plain text and an empty href in the HTML.
    assert "with a link (https://example.com/)" in page and "link ()" not in page


def test_a_layout_in_use_is_not_deleted_and_a_template_is(owner_client, layout, template):
    response = owner_client.post(reverse("templates_ui:layout-delete", args=[layout.pk]))
    assert response["Location"] == reverse("templates_ui:layout-edit", args=[layout.pk])
    assert Layout.objects.filter(pk=layout.pk).exists()
    owner_client.post(reverse("templates_ui:template-delete", args=[template.pk]))
    assert not Template.objects.exists()
    owner_client.post(reverse("templates_ui:layout-delete", args=[layout.pk]))
    assert not Layout.objects.exists()


def test_editing_a_template_keeps_its_author_and_shows_the_variables(owner_client, template):
    url = reverse("templates_ui:template-edit", args=[template.pk])
    page = html.unescape(page_of(owner_client.get(url)))
    assert "{{ contact.attributes.KEY }}" in page and "{{ unsubscribe_url }}" in page
    owner_client.post(
        url,
        {
            "name": "Renamed",
            "layout": template.layout_id,
            "format": "markdown",
            "subject": "S",
            "body": "New body",
        },
    )
    template.refresh_from_db()
    assert template.name == "Renamed" and template.body == "New body"


def test_saving_and_deleting_layouts_and_templates_leave_audit_entries_and_a_refusal_none(
    owner_client, owner, layout, template
):
    from tidings.lib.models import AuditEntry

    def actions() -> list[tuple[str, str]]:
        return list(AuditEntry.objects.order_by("pk").values_list("action", "object_id"))

    owner_client.post(reverse("templates_ui:layout-delete", args=[layout.pk]))  # still in use
    assert actions() == []
    owner_client.post(
        reverse("templates_ui:layout-new"),
        {"name": "House style", "html": default_layout_html(), "text": ""},
    )
    house = Layout.objects.get(name="House style")
    owner_client.post(reverse("templates_ui:template-delete", args=[template.pk]))
    owner_client.post(reverse("templates_ui:layout-delete", args=[house.pk]))
    assert actions() == [
        ("layout.created", str(house.pk)),
        ("template.deleted", str(template.pk)),
        ("layout.deleted", str(house.pk)),
    ]
    assert AuditEntry.objects.filter(actor=owner).count() == 3


# --- what mail going out reads ------------------------------------------------------------------
@pytest.fixture
def writer_client(client):
    from tests.operators import make_operator, sign_in

    sign_in(client, make_operator("wendy", "writer"))
    return client


def _layout_form(layout: Layout, **changes) -> dict:
    return {"name": layout.name, "html": layout.html, "text": layout.text or "", **changes}


def _template_form(template: Template, **changes) -> dict:
    values = {
        "name": template.name,
        "layout": template.layout_id,
        "format": template.format,
        "subject": template.subject,
        "body": template.body,
        "text_body": template.text_body,
    }
    return values | changes


def test_the_layout_page_has_its_html_box_and_save_button_as_a_browser_parses_it(
    owner_client, layout
):
    # The HTML box's help text said "Styles in a <style> element" unescaped (Django prints help
    # text as HTML): a browser took the rest of the page as a style sheet, so the layout page
    # showed a name and no HTML box, no plain-text box and no button. html.parser reads
    # <style> as browsers do: raw text up to </style>.
    from html.parser import HTMLParser

    class Fields(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def handle_starttag(self, tag, attrs):
            found = dict(attrs)
            if tag in ("textarea", "button") or (tag == "input" and found.get("type") != "hidden"):
                self.seen.append(f"{tag}:{found.get('name') or found.get('type', '')}")

    parser = Fields()
    parser.feed(owner_client.get(reverse("templates_ui:layout-edit", args=[layout.pk])).text)

    assert {"input:name", "textarea:html", "textarea:text"} <= set(parser.seen)
    assert any(seen.startswith("button:") for seen in parser.seen)


def test_a_writer_cannot_change_the_layout_a_scheduled_campaign_goes_out_in(writer_client, layout):
    # A writer may not send: the layout is read as each message is made, so changing it under a
    # scheduled campaign sent the writer's words to the whole list without anyone who may send.
    from tests.campaigns.lifecycle_helpers import make_campaign

    make_campaign(status="scheduled", layout=layout, name="November news")
    url = reverse("templates_ui:layout-edit", args=[layout.pk])
    phishing = layout.html.replace("</body>", '<a href="https://evil.example">Log in</a></body>')

    response = writer_client.post(url, _layout_form(layout, html=phishing))

    assert response.status_code == 403
    assert "The campaign “November news” sends this as it goes out" in response.text
    layout.refresh_from_db()
    assert "evil.example" not in layout.html
    assert "only an operator who may send" in page_of(writer_client.get(url))


def test_a_writer_cannot_change_a_template_a_started_journey_sends(writer_client, template):
    from tests.journeys.helpers import spec
    from tidings.journeys.actions import do_activate, do_create_journey

    steps = [{"id": "hello", "kind": "send_email", "template": template.name}]
    journey = do_create_journey(spec(name="Welcome", steps=steps, goals=[]), actor=None)
    do_activate(journey, actor=None)
    url = reverse("templates_ui:template-edit", args=[template.pk])

    response = writer_client.post(url, _template_form(template, body="Claim your prize!"))

    assert response.status_code == 403
    assert "The journey “Welcome” sends this" in response.text
    template.refresh_from_db()
    assert "prize" not in template.body


def test_templates_and_layouts_nothing_is_sending_stay_the_writers_to_change(
    writer_client, layout, template
):
    from tests.campaigns.lifecycle_helpers import make_campaign

    make_campaign(status="draft", layout=layout, template=template, body="")
    make_campaign(status="finished", layout=layout, template=template, body="")
    # A scheduled campaign with its own body and layout no longer reads the template.
    make_campaign(status="scheduled", layout=layout, template=template)

    saved = writer_client.post(
        reverse("templates_ui:template-edit", args=[template.pk]),
        _template_form(template, body="New words"),
    )

    assert saved.status_code == 302
    template.refresh_from_db()
    assert template.body == "New words"


def test_an_editor_who_may_send_changes_what_is_going_out(owner_client, layout):
    from tests.campaigns.lifecycle_helpers import make_campaign

    make_campaign(status="sending", layout=layout)

    response = owner_client.post(
        reverse("templates_ui:layout-edit", args=[layout.pk]), _layout_form(layout, name="New")
    )

    assert response.status_code == 302
    layout.refresh_from_db()
    assert layout.name == "New"


def test_the_first_template_on_a_new_installation_saves_a_layout_then_comes_back(owner_client):
    """ "Design a template" led to a page of layout HTML with an empty name to invent, and
    saving it ended on the layout's preview: the template asked for was nowhere in sight."""
    Layout.objects.all().delete()
    new_template = reverse("templates_ui:template-new")
    asked = owner_client.get(new_template)
    assert asked["Location"] == reverse("templates_ui:layout-new") + "?then=template"
    page = owner_client.get(asked["Location"])
    form = page.context["form"]
    assert form.initial["name"] == "Default" and "{{ content }}" in form.initial["html"]
    saved = owner_client.post(
        asked["Location"], {"name": form.initial["name"], "html": form.initial["html"]}
    )
    assert saved["Location"] == new_template
    assert Layout.objects.get().name == "Default"
    assert owner_client.get(new_template).status_code == 200  # the starter designs
