"""Every list page, while empty, says what the thing is for and offers the first action."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

EMPTY_PAGES = [
    ("audience:contacts", "Contacts are the people you hold data about", "audience:imports"),
    ("audience:lists", "A list is a newsletter people subscribe to", "audience:list-new"),
    ("audience:segments", "A segment picks contacts", "audience:segment-new"),
    ("audience:signup-forms", "A sign-up form lets people subscribe", "audience:signup-form-new"),
    ("audience:imports", "Bring your subscribers from Mailchimp", None),
    ("campaigns:index", "A campaign is one email to your lists", "campaigns:new"),
    ("templates_ui:index", "A template is an email design", "templates_ui:template-new"),
    ("campaigns:senders", "A sender is the From address", None),
    ("media:index", "pictures your emails and public pages show", None),
    ("outbox:index", "every email it would send is kept here", "campaigns:index"),
    ("bounces:index", "spam complaints, arrive here", None),
    ("crm:enquiries", "“New” above adds the first", "crm:enquiry-new"),
    ("booking:upcoming", "Visitors book them on", "booking:availability"),
    ("privacy:queue", "People ask for a copy", "privacy:new-request"),
    ("api_settings:tokens", "A token lets one of your other systems", None),
    ("api_settings:webhooks", "A webhook tells your other systems", None),
]


@pytest.mark.parametrize(("name", "purpose", "action"), EMPTY_PAGES)
def test_an_empty_list_page_says_what_it_is_for_and_offers_the_first_action(
    client, owner, name, purpose, action
):
    client.force_login(owner)
    page = client.get(reverse(name)).text
    assert purpose in page
    assert "<form" in page or (action and f'href="{reverse(action)}"' in page)
    if action:
        assert f'href="{reverse(action)}"' in page
        assert client.get(reverse(action)).status_code in (200, 302)
