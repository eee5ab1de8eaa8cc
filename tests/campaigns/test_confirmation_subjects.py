"""The send confirmation shows the subject as recipients will read it, not the template's code
("What's new at {{ controller.name }}" was what the operator was asked to confirm)."""

import pytest
from django.template.loader import render_to_string

from tests.campaigns.lifecycle_helpers import make_campaign, make_list
from tidings.campaigns.confirmation import send_summary


@pytest.mark.django_db
def test_the_confirmation_shows_the_subject_as_a_recipient_reads_it():
    campaign = make_campaign(make_list(), subject="What's new at {{ controller.name }}")
    summary = send_summary(campaign, None)
    [(_label, shown, written, _people)] = summary.subjects_shown
    assert shown == "What's new at Example Software Ltd"
    assert written == "What's new at {{ controller.name }}"
    page = render_to_string(
        "campaigns/campaign_confirm.html", {"summary": summary, "campaign": campaign}
    )
    assert "“What&#x27;s new at Example Software Ltd”" in page


@pytest.mark.django_db
def test_a_plain_subject_is_shown_once_and_a_broken_one_as_written():
    news = make_list()
    plain = send_summary(make_campaign(news, subject="Spring is here"), None)
    assert plain.subjects_shown[0][1:3] == ("Spring is here", "Spring is here")
    broken = send_summary(make_campaign(news, subject="Hello {{ contact.first_name"), None)
    assert broken.subjects_shown[0][1] == "Hello {{ contact.first_name"
