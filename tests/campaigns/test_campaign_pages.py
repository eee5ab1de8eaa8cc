"""The operator's campaign pages: write, preview, test-send, schedule, watch, and the buttons."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import (
    make_campaign,
    make_editor,
    make_list,
    make_sender,
    make_template,
    queue,
    schedule_confirmed,
    subscriber,
    use_outbox,
)
from tidings.audience.models import Segment
from tidings.campaigns.models import Campaign, Delivery, Layout, OutboxMessage, Sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return make_list("Product news", "product news")


@pytest.fixture
def draft(news):
    subscriber("Ada Lovelace", news)
    return make_campaign(news, sender=make_sender(), with_template=True)


def test_every_page_sends_strangers_to_sign_in(client: Client, draft):
    pk = draft.pk
    sender = Sender.objects.get()
    pages = [
        ("get", reverse("campaigns:index")),
        ("get", reverse("campaigns:new")),
        ("get", reverse("campaigns:detail", args=[pk])),
        ("get", reverse("campaigns:edit", args=[pk])),
        ("get", reverse("campaigns:preview", args=[pk])),
        ("get", reverse("campaigns:test", args=[pk])),
        ("get", reverse("campaigns:schedule", args=[pk])),
        ("get", reverse("campaigns:senders")),
        *(
            ("post", reverse(f"campaigns:{name}", args=[pk]))
            for name in ("unschedule", "pause", "resume", "cancel", "clone", "retry", "archive")
        ),
        ("post", reverse("campaigns:sender-verify", args=[sender.pk])),
    ]
    for method, url in pages:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url
    assert Campaign.objects.get(pk=pk).status == "draft"


def test_the_navigation_leads_to_campaigns(owner_client):
    page = owner_client.get(reverse("web:dashboard")).content.decode()
    assert f'href="{reverse("campaigns:index")}"' in page


def test_the_list_shows_each_campaign_with_its_sent_and_failed_counts(owner_client, news):
    ada, grace, alan = (subscriber(n, news) for n in ("Ada L", "Grace H", "Alan T"))
    campaign = make_campaign(news, status="sending", name="July news")
    queue(campaign, [ada, grace], status="sent")
    queue(campaign, [alan], status="failed")
    make_campaign(news, name="August news")
    response = owner_client.get(reverse("campaigns:index"))
    rows = {c.name: counts for c, counts in response.context["rows"]}
    assert rows["July news"]["sent"] == 2 and rows["July news"]["failed"] == 1
    assert rows["August news"]["sent"] == 0
    assert "July news" in response.content.decode()


def test_the_list_page_costs_the_same_few_queries_however_many_campaigns(
    owner_client, news, django_assert_max_num_queries
):
    for i in range(10):
        make_campaign(news, name=f"Campaign {i}", sender=make_sender(email=f"s{i}@example.com"))
    with django_assert_max_num_queries(6):  # session, user, campaigns, counts (+ savepoints)
        owner_client.get(reverse("campaigns:index"))


def test_an_operator_creates_a_campaign_from_a_template(owner_client, news):
    template = make_template()
    sender = make_sender()
    response = owner_client.post(
        reverse("campaigns:new"),
        {
            "name": "July",
            "template": template.pk,
            "topic": "product news",
            "sender": sender.pk,
            "lists": [news.pk],
        },
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("campaigns:edit", args=[campaign.pk])
    assert campaign.body == template.body and campaign.sender == sender


def test_only_verified_senders_are_offered(owner_client):
    make_sender(verified=False, email="unverified@example.com")
    verified = make_sender(email="verified@example.com")
    form = owner_client.get(reverse("campaigns:new")).context["form"]
    assert list(form.fields["sender"].queryset) == [verified]


def test_a_list_of_another_topic_is_a_form_error_not_a_crash(owner_client):
    events = make_list("Events", "events and webinars")
    response = owner_client.post(
        reverse("campaigns:new"),
        {
            "name": "July",
            "template": make_template().pk,
            "topic": "product news",
            "lists": [events.pk],
        },
    )
    assert response.status_code == 200
    assert "did not agree to emails about" in str(response.context["form"].errors["lists"])
    assert not Campaign.objects.exists()


def test_a_draft_is_edited_and_previewed_as_a_contact(owner_client, draft, news):
    ada = subscriber("Ada Byron", news)
    form = owner_client.get(reverse("campaigns:edit", args=[draft.pk])).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data |= {
        "subject": "Hello reader",
        "body": "Dear reader, *news*.",
        "lists": [news.pk],
        "sender": draft.sender_id,
        "layout": draft.layout_id,
        "segments": [],
    }
    data.pop("archive", None)
    response = owner_client.post(reverse("campaigns:edit", args=[draft.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    draft.refresh_from_db()
    assert draft.body == "Dear reader, *news*."
    preview = owner_client.get(reverse("campaigns:preview", args=[draft.pk]), {"contact": ada.pk})
    assert preview.status_code == 200
    page = preview.content.decode()
    assert 'sandbox=""' in page and "srcdoc=" in page
    assert preview.context["contact"] == ada


def test_the_preview_shows_the_preheader_as_the_contact_gets_it(owner_client, draft, news):
    """The preheader is personalised in the message; the preview showed its template text
    ("Hi {{ contact.first_name }}") instead, and for an A/B variant the campaign's own."""
    ada = subscriber("Ada Byron", news)
    draft.preheader = "Hi {{ contact.first_name }}, this is for you"
    draft.save()
    preview = owner_client.get(reverse("campaigns:preview", args=[draft.pk]), {"contact": ada.pk})
    assert preview.context["rendered"].preheader == "Hi Ada, this is for you"
    page = preview.content.decode()
    assert "Hi Ada, this is for you" in page and "first_name" not in page


def test_editing_a_campaign_that_is_no_longer_a_draft_is_a_conflict(owner_client, news):
    campaign = make_campaign(news, status="sending")
    response = owner_client.get(reverse("campaigns:edit", args=[campaign.pk]))
    assert response.status_code == 409
    assert "a sending campaign cannot be edited" in response.content.decode().lower()


def test_a_button_pressed_in_the_wrong_state_answers_409_with_the_reason(owner_client, news):
    campaign = make_campaign(news, status="finished")
    response = owner_client.post(reverse("campaigns:pause", args=[campaign.pk]))
    assert response.status_code == 409
    assert "A finished campaign cannot be paused" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_pause_resume_and_cancel_buttons(owner_client, news):
    ada = subscriber("Ada Lovelace", news)
    campaign = make_campaign(news, status="sending")
    queue(campaign, [ada])
    detail = reverse("campaigns:detail", args=[campaign.pk])
    assert owner_client.post(reverse("campaigns:pause", args=[campaign.pk])).url == detail
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    owner_client.post(reverse("campaigns:resume", args=[campaign.pk]))
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    owner_client.post(reverse("campaigns:cancel", args=[campaign.pk]))
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
    assert Delivery.objects.get().status == "skipped"


def test_the_clone_button_opens_the_new_draft(owner_client, news):
    campaign = make_campaign(news, status="finished")
    response = owner_client.post(reverse("campaigns:clone", args=[campaign.pk]))
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.url == reverse("campaigns:edit", args=[copy.pk])


def test_the_detail_page_shows_progress_failures_and_the_audience(owner_client, news):
    ada, grace = subscriber("Ada Lovelace", news), subscriber("Grace Hopper", news)
    campaign = make_campaign(news, status="sending", started_at=timezone.now())
    queue(campaign, [ada], status="sent")
    Delivery.objects.create(
        campaign=campaign, contact=grace, status="failed", attempts=3, error="550 no such user"
    )
    response = owner_client.get(reverse("campaigns:detail", args=[campaign.pk]))
    assert response.context["counts"]["sent"] == 1 and response.context["counts"]["failed"] == 1
    page = response.content.decode()
    assert "550 no such user" in page
    assert reverse("campaigns:retry", args=[campaign.pk]) in page
    assert 'http-equiv="refresh"' in page  # it updates itself while sending, without JavaScript
    draft = make_campaign(news)
    assert owner_client.get(reverse("campaigns:detail", args=[draft.pk])).context["audience"] == 2


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        ("draft", {"clone"}),
        ("scheduled", {"unschedule", "cancel", "clone"}),
        ("sending", {"pause", "cancel", "clone"}),
        ("paused", {"resume", "cancel", "clone"}),
        ("cancelled", {"clone"}),
        ("finished", {"clone"}),
    ],
)
def test_the_detail_page_offers_only_the_buttons_the_state_allows(
    owner_client, news, status, buttons
):
    campaign = make_campaign(news, status=status, with_template=True)
    page = owner_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    for name in ("unschedule", "pause", "resume", "cancel", "clone"):
        url = reverse(f"campaigns:{name}", args=[campaign.pk])
        assert (f'action="{url}"' in page) == (name in buttons), name


def test_a_test_send_from_the_page_reaches_the_outbox(
    owner_client, draft, settings, django_capture_on_commit_callbacks
):
    use_outbox(settings)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("campaigns:test", args=[draft.pk]), {"addresses": "me@example.co.uk"}
        )
    assert response.status_code == 302
    message = OutboxMessage.objects.get()
    assert message.to == "me@example.co.uk" and message.subject.startswith("[Test]")


def test_a_bad_test_address_is_shown_on_the_form(owner_client, draft):
    response = owner_client.post(
        reverse("campaigns:test", args=[draft.pk]), {"addresses": "nobody"}
    )
    assert response.status_code == 200
    assert "not an email address" in str(response.context["form"].errors["addresses"])


def test_a_test_send_says_which_address_is_wrong_and_how_many_went(
    owner_client, draft, settings, django_capture_on_commit_callbacks
):
    """With two addresses typed, "not an email address: There must be something after the
    @-sign." did not say which; a good send said "Test sent to 1 address(es)"."""
    use_outbox(settings)
    url = reverse("campaigns:test", args=[draft.pk])
    response = owner_client.post(url, {"addresses": "me@example.co.uk, me@"})
    errors = str(response.context["form"].errors["addresses"])
    assert "address 2 of 2 is not an email address" in errors and "me@" not in errors
    with django_capture_on_commit_callbacks(execute=True):
        sent = owner_client.post(url, {"addresses": "me@example.co.uk"}, follow=True)
    assert "Test sent to 1 address: its subject starts with “[Test]”." in sent.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        sent = owner_client.post(
            url, {"addresses": "a@example.co.uk\nb@example.co.uk"}, follow=True
        )
    assert "Test sent to 2 addresses:" in sent.content.decode()


def test_scheduling_for_one_person_says_person(owner_client, draft):
    """The first campaign of a new installation, to its one subscriber, was "Scheduled for …,
    to 1 people as things stand."."""
    response = schedule_confirmed(owner_client, draft, {"when": "2099-07-01T09:00"})
    page = owner_client.get(response["Location"]).content.decode()
    assert "to 1 person as things stand." in page and "1 people" not in page


def test_the_confirmation_flags_what_a_starter_design_left_to_replace(owner_client, draft):
    """A campaign made from the Announcement starter went out with its button to
    https://example.com/ and "Say what it is in one sentence…": nothing said so before sending."""
    import json

    from tidings.campaigns.blocks.starters import STARTERS

    draft.format = "blocks"
    draft.body = STARTERS["announcement"].body()
    draft.save()
    url = reverse("campaigns:schedule", args=[draft.pk])
    page = owner_client.post(url, {"when": "2099-07-01T09:00"}).content.decode()
    assert "Still as the starter design left it" in page
    # "One big piece of news with a picture": the picture is the starter's until replaced.
    assert "Block 2 (Image): still shows the starter&#x27;s example picture" in page
    assert "Block 4 (Text): still has the starter&#x27;s example words" in page
    assert "Block 5 (Button): still links to https://example.com/" in page

    document = json.loads(draft.body)
    document["blocks"][3]["text"] = "Our new plan is here."
    document["blocks"][4]["url"] = "https://shop.example.co.uk/plan"
    draft.body = json.dumps(document)
    draft.save()
    page = owner_client.post(url, {"when": "2099-07-01T09:00"}).content.decode()
    assert "Block 2 (Image): still shows the starter&#x27;s example picture" in page

    document["blocks"][1]["src"] = "https://shop.example.co.uk/plan.jpg"
    draft.body = json.dumps(document)
    draft.save()
    page = owner_client.post(url, {"when": "2099-07-01T09:00"}).content.decode()
    assert "Still as the starter design left it" not in page


def test_every_starter_is_flagged_until_its_examples_are_replaced():
    from tidings.campaigns.blocks.starters import STARTERS, leftovers

    for starter in STARTERS.values():
        assert leftovers(starter.body(), "blocks"), starter.key
    assert leftovers("# Hello https://example.com/", "markdown") == []


def test_scheduling_reads_the_time_in_the_operators_time_zone(owner_client, draft, settings):
    settings.TIME_ZONE = "Europe/London"  # British Summer Time in July: UTC+1
    with time_machine.travel(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False):
        response = schedule_confirmed(owner_client, draft, {"when": "2026-07-01T09:00"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "scheduled"
    assert draft.scheduled_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def test_a_time_the_clocks_pass_twice_is_the_first_and_one_they_skip_says_so(
    owner_client, draft, settings
):
    """01:30 on the night the clocks go back could not be scheduled at all ("may be ambiguous
    or may not exist"); the skipped hour in March got the same unhelpful words."""
    settings.TIME_ZONE = "Europe/London"
    with time_machine.travel(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False):
        skipped = owner_client.post(
            reverse("campaigns:schedule", args=[draft.pk]), {"when": "2027-03-28T01:30"}
        )
        assert "does not exist in Europe/London: the clocks go forward" in str(
            skipped.context["form"].errors["when"]
        )
        response = schedule_confirmed(owner_client, draft, {"when": "2026-10-25T01:30"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.scheduled_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST


def test_scheduling_problems_are_form_errors(owner_client, news):
    campaign = make_campaign(sender=make_sender(verified=False), with_template=True)
    response = owner_client.post(
        reverse("campaigns:schedule", args=[campaign.pk]), {"send_now": "1"}
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "not verified" in errors and "at least one list or segment" in errors
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_time_in_the_past_is_a_field_error(owner_client, draft):
    response = owner_client.post(
        reverse("campaigns:schedule", args=[draft.pk]), {"when": "2000-01-01T09:00"}
    )
    assert "choose a time in the future" in str(response.context["form"].errors["when"])


def test_send_now_schedules_for_now(owner_client, draft):
    response = schedule_confirmed(owner_client, draft, {"send_now": "1"})
    assert response.url == reverse("campaigns:detail", args=[draft.pk])
    draft.refresh_from_db()
    assert draft.status == "scheduled" and draft.scheduled_at <= timezone.now()


def test_a_layout_saved_while_the_confirmation_was_open_shows_it_again(owner_client, draft):
    """The operator confirms what they looked at: a layout changed meanwhile is not it."""
    url = reverse("campaigns:schedule", args=[draft.pk])
    shown = owner_client.post(url, {"send_now": "1"})
    fingerprint = shown.context["summary"].fingerprint
    layout = draft.layout
    Layout.objects.filter(pk=layout.pk).update(
        html=layout.html.replace("{{ content }}", "<p>New</p>{{ content }}", 1)
    )
    again = owner_client.post(url, {"send_now": "1", "confirm": "1", "fingerprint": fingerprint})
    assert again.status_code == 200 and again.context["summary"].fingerprint != fingerprint
    assert Campaign.objects.get(pk=draft.pk).status == "draft"


def test_a_segment_can_be_the_whole_audience(owner_client, news):
    subscriber("Ada Lovelace", news)
    segment = Segment.objects.create(name="Adas", query='name ^= "ada"')
    campaign = make_campaign(segments=[segment], sender=make_sender(), with_template=True)
    schedule_confirmed(owner_client, campaign, {"send_now": "1"})
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


# --- senders --------------------------------------------------------------------------------------
def test_an_operator_adds_a_sender_and_an_owner_verifies_it(owner_client):
    owner_client.post(
        reverse("campaigns:senders"),
        {"name": "News", "email": "news@example.co.uk", "reply_to": ""},
    )
    sender = Sender.objects.get()
    assert not sender.verified
    editor = Client()
    editor.force_login(make_editor())
    url = reverse("campaigns:sender-verify", args=[sender.pk])
    assert editor.post(url, {"verified": "1"}).status_code == 403
    owner_client.post(url, {"verified": "1"})
    sender.refresh_from_db()
    assert sender.verified


# --- the whole story ------------------------------------------------------------------------------
def test_an_operator_writes_previews_tests_schedules_for_a_segment_and_watches_it_send(
    owner_client, settings, django_capture_on_commit_callbacks
):
    from tidings.campaigns.engine import deliver_pending
    from tidings.campaigns.lifecycle import start_due_campaigns

    use_outbox(settings)
    settings.TIDINGS_SMTP_URL = "outbox://"
    settings.TIDINGS_SMTP_RATE = "200/s"
    news = make_list("Product news", "product news")
    readers = [
        subscriber(f"Reader{i} Example", news, company="Acme" if i % 2 == 0 else "Other")
        for i in range(6)
    ]
    acme = Segment.objects.create(name="Acme readers", query='company = "Acme"')
    template = make_template()
    sender = make_sender()

    # Writes it from a template, for a segment ...
    owner_client.post(
        reverse("campaigns:new"),
        {
            "name": "July",
            "template": template.pk,
            "topic": "product news",
            "sender": sender.pk,
            "segments": [acme.pk],
        },
    )
    campaign = Campaign.objects.get()
    form = owner_client.get(reverse("campaigns:edit", args=[campaign.pk])).context["form"]
    data = {k: v for k, v in form.initial.items() if v not in (None, False)}
    data |= {
        "subject": "July news for {{ contact.first_name }}",
        "body": "Hello {{ contact.first_name }}, we shipped the thing.",
        "sender": sender.pk,
        "layout": campaign.layout_id,
        "lists": [],
        "segments": [acme.pk],
    }
    response = owner_client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    assert response.status_code == 302, response.context["form"].errors

    # ... previews it as a contact ...
    preview = owner_client.get(
        reverse("campaigns:preview", args=[campaign.pk]), {"contact": readers[0].pk}
    )
    assert preview.context["rendered"].subject == "July news for Reader0"

    # ... test-sends it ...
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            reverse("campaigns:test", args=[campaign.pk]), {"addresses": "me@example.co.uk"}
        )
    assert OutboxMessage.objects.get().subject == "[Test] July news for Alex"

    # ... schedules it to go now; the worker's periodic job starts it ...
    schedule_confirmed(owner_client, campaign, {"send_now": "1"})
    assert start_due_campaigns() == [campaign.pk]
    page = owner_client.get(reverse("campaigns:detail", args=[campaign.pk]))
    assert page.context["counts"]["queued"] == 3

    # ... and watches it send at the configured rate.
    deliver_pending(max_seconds=30)
    page = owner_client.get(reverse("campaigns:detail", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    assert page.context["counts"]["sent"] == 3
    assert page.context["configured_rates"] == ["default: 200/s"]
    assert "default: 200/s" in page.content.decode()
    sent = OutboxMessage.objects.exclude(to="me@example.co.uk")
    assert sorted(m.to for m in sent) == sorted(r.email for r in readers if r.company == "Acme")
    assert {m.subject for m in sent} == {
        "July news for Reader0",
        "July news for Reader2",
        "July news for Reader4",
    }


def test_the_starters_example_picture_is_served_and_the_old_address_shows_it_too(client, settings):
    """The Announcement's picture is a placeholder this app serves; templates made before it
    pointed at an address that held none, and show the placeholder now, still flagged."""
    import json

    from tidings.campaigns.blocks import blocks_to_html
    from tidings.campaigns.blocks.schema import EXAMPLE_PICTURE, OLD_EXAMPLE_PICTURE
    from tidings.campaigns.blocks.starters import leftovers

    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    response = client.get(EXAMPLE_PICTURE)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    for src in (EXAMPLE_PICTURE, OLD_EXAMPLE_PICTURE):
        body = json.dumps({"blocks": [{"type": "image", "src": src, "alt": "Yours here"}]})
        assert f'src="https://news.example.co.uk{EXAMPLE_PICTURE}"' in blocks_to_html(body)
        assert leftovers(body, "blocks") == [
            "Block 1 (Image): still shows the starter's example picture"
        ]
