"""Four-eyes sending for journeys: no journey mail reaches anyone a second operator has not seen.

With ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` a journey runs only once an operator other than the
one who last changed it confirmed what it sends; a change afterwards voids that and pauses it.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.api.helpers import Api
from tests.journeys.helpers import make_template, spec, welcome_steps
from tests.operators import make_operator, sign_in
from tidings.api.actions import do_create_api_token
from tidings.campaigns.models import Template
from tidings.campaigns.template_actions import do_save_template
from tidings.campaigns.template_forms import TemplateForm
from tidings.journeys import four_eyes
from tidings.journeys.actions import (
    JourneyNotReady,
    do_activate,
    do_create_journey,
    do_pause,
    do_resume,
    do_update_journey,
)
from tidings.journeys.models import Journey
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_eyes_on(settings):
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True


@pytest.fixture
def author():
    return make_operator("author", "editor")


@pytest.fixture
def reviewer():
    return make_operator("reviewer", "owner")


def drafted(author) -> Journey:
    """The welcome series, written by ``author``, still a draft."""
    make_template("Welcome")
    return do_create_journey(spec(), actor=author)


def running(author, reviewer) -> Journey:
    """The welcome series written by ``author`` and confirmed (so activated) by ``reviewer``."""
    journey = drafted(author)
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    return Journey.objects.get(pk=journey.pk)


def actions_of(journey: Journey) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_id=str(journey.pk), action__startswith="journey.")
        .order_by("pk")
        .values_list("action", flat=True)
    )


def reworded(subject: str = "Welcome aboard, {{ contact.first_name }}"):
    steps = welcome_steps()
    steps[0]["subject"] = subject
    return spec(steps=steps)


# --- without the setting ---------------------------------------------------------------------
def test_without_four_eyes_the_author_activates_alone(author):
    journey = drafted(author)
    do_activate(journey, actor=author)
    assert Journey.objects.get(pk=journey.pk).status == "active"


def test_without_four_eyes_editing_a_running_journey_keeps_it_running(author):
    journey = drafted(author)
    do_activate(journey, actor=author)
    do_update_journey(journey, reworded(), actor=author)
    journey.refresh_from_db()
    assert journey.status == "active" and journey.paused_reason == ""
    assert "journey.confirmation_voided" not in actions_of(journey)


# --- activating --------------------------------------------------------------------------------
def test_the_author_cannot_activate_their_journey(four_eyes_on, author):
    journey = drafted(author)
    with pytest.raises(JourneyNotReady, match="waiting for a second operator"):
        do_activate(journey, actor=author)
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_no_operator_at_all_cannot_activate_an_unconfirmed_journey(four_eyes_on, author):
    journey = drafted(author)
    with pytest.raises(JourneyNotReady, match="waiting for a second operator"):
        do_activate(journey, actor="cli")
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_the_author_cannot_confirm_their_own_journey(four_eyes_on, author):
    journey = drafted(author)
    with pytest.raises(JourneyNotReady, match="you made the last change"):
        four_eyes.do_confirm(journey, actor=author, seen=four_eyes.fingerprint(journey))
    journey.refresh_from_db()
    assert journey.status == "draft" and journey.confirmed_fingerprint == ""


def test_a_second_operator_confirms_what_they_saw_and_it_runs(four_eyes_on, author, reviewer):
    journey = drafted(author)
    four_eyes.do_request_confirmation(journey, actor=author)
    assert Journey.objects.get(pk=journey.pk).confirmation_requested_by == author
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    journey.refresh_from_db()
    assert journey.status == "active"
    assert journey.confirmed_by == reviewer and journey.confirmation_requested_by is None
    assert actions_of(journey) == [
        "journey.created",
        "journey.confirmation_requested",
        "journey.confirmed",
        "journey.activated",
    ]


def test_what_changed_while_the_second_operator_looked_is_not_confirmed(
    four_eyes_on, author, reviewer
):
    journey = drafted(author)
    seen = four_eyes.fingerprint(journey)
    do_update_journey(journey, reworded(), actor=author)
    with pytest.raises(JourneyNotReady, match="changed while you were looking"):
        four_eyes.do_confirm(journey, actor=reviewer, seen=seen)
    assert Journey.objects.get(pk=journey.pk).status == "draft"


# --- a change after confirmation ---------------------------------------------------------------
def test_editing_a_running_journeys_email_pauses_it_until_another_operator_confirms(
    four_eyes_on, author, reviewer
):
    journey = running(author, reviewer)
    do_update_journey(journey, reworded("Buy now, unreviewed"), actor=reviewer)
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert journey.paused_reason.startswith("its steps or settings changed after it was confirmed")
    assert journey.confirmed_fingerprint == "" and journey.last_edited_by == reviewer
    entry = AuditEntry.objects.get(action="journey.confirmation_voided")
    assert entry.details["was"] == "active" and entry.actor == reviewer
    # Whoever changed it cannot resume it (resuming would send what nobody else saw) ...
    with pytest.raises(JourneyNotReady, match="waiting for a second operator"):
        do_resume(journey, actor=reviewer)
    with pytest.raises(JourneyNotReady, match="you made the last change"):
        four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    # The author (not the last editor now) confirms the new wording: it runs again.
    four_eyes.do_confirm(journey, actor=author, seen=four_eyes.fingerprint(journey))
    assert Journey.objects.get(pk=journey.pk).status == "active"


def test_renaming_a_running_journey_leaves_it_running(four_eyes_on, author, reviewer):
    journey = running(author, reviewer)
    do_update_journey(journey, spec(name="Welcome series"), actor=author)
    journey.refresh_from_db()
    assert journey.status == "active" and journey.confirmed_fingerprint != ""


def test_a_confirmed_journey_paused_and_resumed_needs_no_new_confirmation(
    four_eyes_on, author, reviewer
):
    journey = running(author, reviewer)
    do_pause(journey, actor=author)
    do_resume(Journey.objects.get(pk=journey.pk), actor=author)
    assert Journey.objects.get(pk=journey.pk).status == "active"


def test_saving_the_template_a_running_journey_sends_pauses_it(four_eyes_on, author, reviewer):
    journey = running(author, reviewer)
    template = Template.objects.get(name="Welcome")
    data = {
        "name": template.name,
        "layout": template.layout_id,
        "format": template.format,
        "subject": template.subject,
        "body": "Unreviewed: buy now.",
        "text_body": "",
    }
    form = TemplateForm(data, instance=template)
    assert form.is_valid(), form.errors
    do_save_template(form, actor=author)
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert journey.paused_reason.startswith("its template “Welcome” changed after it was confirmed")
    assert journey.last_edited_by == author


def test_saving_a_template_the_journey_does_not_send_leaves_it_running(
    four_eyes_on, author, reviewer
):
    journey = running(author, reviewer)
    other = make_template("Other")
    form = TemplateForm(
        {
            "name": "Other",
            "layout": other.layout_id,
            "format": other.format,
            "subject": "x",
            "body": "Changed",
            "text_body": "",
        },
        instance=other,
    )
    assert form.is_valid(), form.errors
    do_save_template(form, actor=author)
    assert Journey.objects.get(pk=journey.pk).status == "active"


def test_a_journey_started_before_four_eyes_is_shown_unconfirmed_and_any_change_pauses_it(
    settings, author, reviewer
):
    journey = drafted(author)
    do_activate(journey, actor=author)
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    assert not four_eyes.is_confirmed(Journey.objects.get(pk=journey.pk))
    do_update_journey(journey, reworded(), actor=author)
    assert Journey.objects.get(pk=journey.pk).status == "paused"


# --- the doors: API, command line, pages -------------------------------------------------------
def _token(user) -> str:
    from tests.api.helpers import ALL_SCOPES

    return do_create_api_token(name="t", operator=user, scopes=ALL_SCOPES, actor=user)[1]


def test_the_api_refuses_to_activate_an_unconfirmed_journey(settings, four_eyes_on, reviewer):
    settings.TIDINGS_API_RATE_LIMIT = 0
    journey = drafted(make_operator("writer", "editor"))
    response = Api(_token(reviewer)).post(f"/journeys/{journey.pk}/activate")
    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body["detail"].startswith("Waiting for a second operator")
    assert body["errors"][0]["field"] == "confirm"
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_the_api_activates_without_four_eyes(settings, author):
    settings.TIDINGS_API_RATE_LIMIT = 0
    journey = drafted(author)
    response = Api(_token(author)).post(f"/journeys/{journey.pk}/activate")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"


def test_the_command_line_refuses_to_activate_an_unconfirmed_journey(four_eyes_on, author):
    drafted(author)
    with pytest.raises(CommandError, match=r'^journey "Welcome" cannot run: waiting for a second'):
        call_command("journeys", "activate", "Welcome", stdout=StringIO())
    assert Journey.objects.get().status == "draft"


def test_the_command_line_resumes_a_confirmed_journey(four_eyes_on, author, reviewer):
    journey = running(author, reviewer)
    do_pause(journey, actor=author)
    out = StringIO()
    call_command("journeys", "resume", "Welcome", stdout=out)
    assert "resumed" in out.getvalue() and Journey.objects.get().status == "active"


def test_the_page_shows_who_asked_and_offers_the_confirmation_to_others_only(
    client, four_eyes_on, author, reviewer
):
    journey = drafted(author)
    url = reverse("journeys:detail", args=[journey.pk])
    sign_in(client, author)
    page = client.get(url).content.decode()
    assert "Waiting for a second operator" in page and "you cannot confirm it yourself" in page
    assert reverse("journeys:confirm", args=[journey.pk]) not in page
    assert reverse("journeys:activate", args=[journey.pk]) not in page
    client.post(reverse("journeys:request", args=[journey.pk]))
    sign_in(client, reviewer)
    page = client.get(url).content.decode()
    assert "author asked for it on" in page and "Confirm and activate" in page
    seen = four_eyes.fingerprint(journey)
    assert f'name="seen" value="{seen}"' in page
    client.post(reverse("journeys:confirm", args=[journey.pk]), {"seen": seen})
    assert Journey.objects.get(pk=journey.pk).status == "active"
    page = client.get(url).content.decode()
    assert "Confirmed by a second operator" in page and "reviewer confirmed" in page


def test_the_author_posting_the_confirmation_is_refused(client, four_eyes_on, author):
    journey = drafted(author)
    sign_in(client, author)
    response = client.post(
        reverse("journeys:confirm", args=[journey.pk]),
        {"seen": four_eyes.fingerprint(journey)},
        follow=True,
    )
    assert "you made the last change" in response.content.decode()
    assert Journey.objects.get(pk=journey.pk).status == "draft"


def test_saving_a_running_journeys_new_email_in_the_editor_says_it_paused(
    client, four_eyes_on, author, reviewer
):
    from tidings.journeys.forms import EXAMPLE_STEPS

    journey = running(author, reviewer)
    sign_in(client, author)
    data = {
        "name": "Welcome",
        "topic": "product news",
        "trigger": "confirmed",
        "entry": "once",
        "entry_days": "0",
        "steps": EXAMPLE_STEPS,
    }
    response = client.post(reverse("journeys:edit", args=[journey.pk]), data, follow=True)
    page = response.content.decode()
    assert "Saved, and paused" in page
    assert "Paused: its steps or settings changed after it was confirmed" in page
    assert Journey.objects.get(pk=journey.pk).status == "paused"


def test_the_engine_pauses_a_journey_whose_mail_changed_unseen_before_sending_it(
    four_eyes_on, author, reviewer
):
    # A change made around the actions that void (the admin, a shell): the engine's safety net.
    from tests.journeys.helpers import make_list, subscriber
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys import engine
    from tidings.journeys.actions import do_enrol

    journey = running(author, reviewer)
    do_enrol(journey, subscriber("Ann Example", make_list()))
    Template.objects.filter(name="Welcome").update(body="Unreviewed: buy now.")
    engine.advance_due()
    journey.refresh_from_db()
    assert journey.status == "paused" and journey.paused_reason.startswith("what it sends changed")
    assert not OutgoingMessage.objects.filter(kind__startswith="journey:").exists()
    entry = AuditEntry.objects.get(action="journey.confirmation_voided")
    assert entry.actor_label == "worker"
    # Confirmed again by another operator, it sends the mail as it is now.
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    engine.advance_due()
    assert OutgoingMessage.objects.filter(kind__startswith="journey:").count() == 1


def test_the_engine_sends_what_was_confirmed(four_eyes_on, author, reviewer):
    from tests.journeys.helpers import make_list, subscriber
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys import engine
    from tidings.journeys.actions import do_enrol

    journey = running(author, reviewer)
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    assert Journey.objects.get(pk=journey.pk).status == "active"
    assert OutgoingMessage.objects.filter(kind__startswith="journey:").count() == 1


# --- who learns of it --------------------------------------------------------------------------
def test_asking_for_a_confirmation_emails_the_operators_who_may_confirm(
    four_eyes_on, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    other_editor = make_operator("other", "editor")
    make_operator("writer", "writer")  # may not send: cannot confirm, not told
    journey = drafted(author)
    with django_capture_on_commit_callbacks(execute=True):
        four_eyes.do_request_confirmation(journey, actor=author)
    task = DBTaskResult.objects.get(task_path__endswith="notify_confirmers_task")
    assert task.args_kwargs["args"] == [journey.pk, author.pk]
    assert four_eyes.notify_confirmers_task.call(journey.pk, author.pk) == 2
    [mail] = mailoutbox
    assert mail.to == sorted([reviewer.email, other_editor.email])
    assert mail.subject == "tidings: please confirm the journey “Welcome”"
    assert "author asks a second operator to confirm it" in mail.body
    assert f"/campaigns/journeys/{journey.pk}/" in mail.body


def test_nobody_is_emailed_once_the_journey_is_confirmed(
    four_eyes_on, author, reviewer, mailoutbox
):
    journey = drafted(author)
    four_eyes.do_request_confirmation(journey, actor=author)
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    assert four_eyes.notify_confirmers_task.call(journey.pk, author.pk) == 0
    assert mailoutbox == []


def test_a_change_after_asking_withdraws_the_request(four_eyes_on, author, reviewer):
    journey = drafted(author)
    four_eyes.do_request_confirmation(journey, actor=author)
    do_update_journey(journey, reworded(), actor=author)
    journey.refresh_from_db()
    assert journey.confirmation_requested_by is None  # they ask again about what it is now


def test_the_confirm_box_links_to_each_template_the_journey_sends(
    client, four_eyes_on, author, reviewer
):
    make_template("Tips")
    steps = welcome_steps()
    steps[2]["template"] = "Tips"
    make_template("Welcome")
    journey = do_create_journey(spec(steps=steps), actor=author)
    sign_in(client, reviewer)
    page = client.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    for name in ("Welcome", "Tips"):
        template = Template.objects.get(name=name)
        preview = reverse("templates_ui:template-preview", args=[template.pk])
        assert f'<a href="{preview}">“{name}”</a>' in page
        assert reverse("templates_ui:template-edit", args=[template.pk]) in page


# --- journeys as code ----------------------------------------------------------------------------
def _welcome_file(tmp_path, subject: str = "Welcome, {{ contact.first_name }}") -> str:
    from tidings.journeys.files import export_journey

    make_template("Welcome")
    journey = do_create_journey(spec(), actor=None)
    text = export_journey(journey).replace("Welcome, {{ contact.first_name }}", subject)
    journey.versions.all().delete()
    journey.delete()
    path = tmp_path / "welcome.toml"
    path.write_text(text)
    return str(path)


def test_a_journey_loaded_by_an_operator_cannot_be_confirmed_by_them(
    tmp_path, four_eyes_on, author, reviewer
):
    path = _welcome_file(tmp_path)
    call_command("journeys", "load", path, "--operator", "author", stdout=StringIO())
    journey = Journey.objects.get()
    assert journey.created_by == author and journey.changed_by_id == author.pk
    entry = AuditEntry.objects.filter(action="journey.created").latest("pk")
    assert entry.actor_id == author.pk
    with pytest.raises(JourneyNotReady, match="you made the last change"):
        four_eyes.do_confirm(journey, actor=author, seen=four_eyes.fingerprint(journey))
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    assert Journey.objects.get().status == "active"


def test_loading_a_change_makes_the_operator_its_editor(tmp_path, four_eyes_on, author, reviewer):
    path = _welcome_file(tmp_path)
    call_command("journeys", "load", path, "--operator", "author", stdout=StringIO())
    four_eyes.do_confirm(
        Journey.objects.get(), actor=reviewer, seen=four_eyes.fingerprint(Journey.objects.get())
    )
    changed = tmp_path / "changed.toml"
    changed.write_text(Path(path).read_text().replace("Welcome, {{", "Hello, {{"))
    out = StringIO()
    call_command("journeys", "load", str(changed), "--operator", "reviewer", stdout=out)
    journey = Journey.objects.get()
    assert journey.status == "paused" and "It is paused" in out.getvalue()
    assert journey.changed_by_id == reviewer.pk  # so the author may confirm it now, not them
    with pytest.raises(JourneyNotReady, match="you made the last change"):
        four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))


def test_loading_without_an_operator_is_refused_with_four_eyes(tmp_path, four_eyes_on):
    path = _welcome_file(tmp_path)
    with pytest.raises(CommandError, match=r"^--operator USERNAME is needed"):
        call_command("journeys", "load", path, stdout=StringIO())
    assert not Journey.objects.exists()


@pytest.mark.parametrize(
    ("username", "error"),
    [("nobody", 'no active operator is called "nobody"'), ("analyst", "no content permission")],
)
def test_loading_as_someone_who_may_not_edit_is_refused(tmp_path, four_eyes_on, username, error):
    make_operator("analyst", "analyst")
    path = _welcome_file(tmp_path)
    with pytest.raises(CommandError, match=error):
        call_command("journeys", "load", path, "--operator", username, stdout=StringIO())
    assert not Journey.objects.exists()


def test_a_writer_cannot_load_a_change_to_a_started_journey(tmp_path, author):
    path = _welcome_file(tmp_path)
    make_operator("writer", "writer")
    call_command("journeys", "load", path, "--operator", "author", stdout=StringIO())
    do_activate(Journey.objects.get(), actor=author)
    with pytest.raises(CommandError, match="may not change a journey that was started"):
        call_command("journeys", "load", path, "--operator", "writer", stdout=StringIO())


# --- journeys running when the setting is switched on ------------------------------------------
def test_a_journey_running_unconfirmed_when_four_eyes_is_switched_on_pauses_before_sending(
    settings, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    from tests.journeys.helpers import make_list, subscriber
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys import engine
    from tidings.journeys.actions import do_enrol

    journey = drafted(author)
    do_activate(journey, actor=author)
    do_enrol(journey, subscriber("Ann Example", make_list()))
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    with django_capture_on_commit_callbacks(execute=True):
        engine.advance_due()
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert journey.paused_reason.startswith("sending needs a second operator now")
    assert not OutgoingMessage.objects.filter(kind__startswith="journey:").exists()
    assert four_eyes.notify_confirmers_task.call(journey.pk, None) == 1
    assert mailoutbox[0].to == [reviewer.email]
    assert "It is paused: sending needs a second operator now" in mailoutbox[0].body
    # Its author cannot resume it; another operator confirms it, and Ann gets her mail.
    with pytest.raises(JourneyNotReady, match="waiting for a second operator"):
        do_resume(journey, actor=author)
    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    engine.advance_due()
    assert Journey.objects.get(pk=journey.pk).status == "active"
    assert OutgoingMessage.objects.filter(kind__startswith="journey:").count() == 1


def test_the_page_of_a_journey_running_unconfirmed_says_it_will_pause(
    client, settings, author, reviewer
):
    journey = drafted(author)
    do_activate(journey, actor=author)
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    sign_in(client, reviewer)
    page = client.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert "Not confirmed by a second operator" in page
    assert "it pauses before anyone in it takes their next step" in page


def test_the_dashboard_and_the_journey_list_show_what_waits_for_a_second_operator(
    client, four_eyes_on, author, reviewer
):
    """Nothing outside a journey's own page said it waited for a confirmation: the journey list
    marks it, and the dashboard of an operator who may confirm it lists it with a link."""
    journey = drafted(author)
    other = do_create_journey(spec(name="Renewal reminder"), actor=author)
    four_eyes.do_request_confirmation(journey, actor=author)
    link = reverse("journeys:detail", args=[journey.pk])

    sign_in(client, reviewer)
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Waiting for a second operator (1)" in page
    assert f'<a href="{link}">{journey.name}</a>' in page
    assert other.name not in page
    listing = client.get(reverse("journeys:index")).content.decode()
    assert listing.count("Waiting for a second operator") == 1

    sign_in(client, author)  # who last changed it may not confirm it
    assert (
        "Waiting for a second operator" not in client.get(reverse("web:dashboard")).content.decode()
    )

    four_eyes.do_confirm(journey, actor=reviewer, seen=four_eyes.fingerprint(journey))
    assert four_eyes.waiting() == []


def test_a_journey_voided_by_a_long_named_change_still_waits_on_the_dashboard(
    client, four_eyes_on, author, reviewer
):
    """The reason is kept to 300 characters: a long name in what changed used to cut off its
    end ("… another operator must confirm it again"), which is how the waiting list knows it,
    so the paused journey vanished from the dashboard and its page lost what to do next."""
    journey = running(author, reviewer)
    Template.objects.filter(name="Welcome").update(body="Unreviewed: buy now.")
    long_name = "Quarterly " + "long " * 50 + "template"
    four_eyes.void_changed_journeys(f"its template “{long_name}”", actor=author)

    journey.refresh_from_db()
    assert journey.status == "paused"
    assert len(journey.paused_reason) <= 300
    assert journey.paused_reason.startswith("its template “Quarterly long long")
    assert journey.paused_reason.endswith("another operator must confirm it again")
    assert [j.pk for j in four_eyes.waiting(reviewer)] == [journey.pk]
    sign_in(client, reviewer)
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Waiting for a second operator (1)" in page
    assert f'href="{reverse("journeys:detail", args=[journey.pk])}"' in page
    assert "…”" in journey.paused_reason  # the name is shortened, visibly


def test_a_journey_voided_before_the_fix_with_its_reason_cut_still_waits(
    client, four_eyes_on, author, reviewer
):
    """A reason stored before the fix above lost its end at 300 characters ("…must co"): the
    journey is still listed as waiting, and its page shows the whole reason (what changed is
    all there; only our fixed sentence is completed), with nothing rewritten in the row."""
    journey = running(author, reviewer)
    old = ("its template “" + "long " * 44 + "” " + four_eyes.VOIDED_END)[:300]
    assert not old.endswith(four_eyes.VOIDED_END)
    Journey.objects.filter(pk=journey.pk).update(
        status="paused", paused_reason=old, confirmed_fingerprint=""
    )
    assert [j.pk for j in four_eyes.waiting(reviewer)] == [journey.pk]
    sign_in(client, reviewer)
    assert "Waiting for a second operator (1)" in client.get(reverse("web:dashboard")).text
    page = client.get(reverse("journeys:detail", args=[journey.pk])).text
    assert "long ” changed after it was confirmed: another operator must confirm it again</p>" in (
        page
    )
    assert Journey.objects.get(pk=journey.pk).paused_reason == old


def test_a_paused_journey_whose_confirmation_a_change_voids_emails_its_author_and_confirmer_once(
    four_eyes_on, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    """Paused by hand, it would resume as confirmed; after a change it cannot, and whoever
    counts on resuming it must learn so now — once, not at each later change.  As for a
    campaign (``campaigns.sent_back``): its author and whoever confirmed it, each once.  It
    went to every operator permitted to confirm it instead, and never to its author."""
    from django_tasks_db.models import DBTaskResult

    make_operator("third", "owner")  # may confirm it, but neither wrote nor confirmed it
    journey = running(author, reviewer)
    do_pause(journey, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        do_update_journey(
            Journey.objects.get(pk=journey.pk), reworded("Buy now, unreviewed"), actor=author
        )
    assert not DBTaskResult.objects.filter(task_path__endswith="notify_confirmers_task")
    [task] = DBTaskResult.objects.filter(task_path__endswith="notify_voided_task")
    assert four_eyes.notify_voided_task.call(*task.args_kwargs["args"]) == 2
    [mail] = mailoutbox
    assert sorted(mail.to) == sorted([author.email, reviewer.email])  # each once
    assert mail.subject == "tidings: the paused journey “Welcome” needs confirming again"
    assert "its steps or settings changed after it was confirmed" in mail.body
    assert "The change was made by author." in mail.body
    assert reverse("journeys:detail", args=[journey.pk]) in mail.body

    with django_capture_on_commit_callbacks(execute=True):
        do_update_journey(
            Journey.objects.get(pk=journey.pk), reworded("Buy now, again"), actor=author
        )
    assert DBTaskResult.objects.filter(task_path__endswith="notify_voided_task").count() == 1


def test_a_running_journey_paused_by_someone_elses_change_tells_its_author_and_confirmer(
    four_eyes_on, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    """A third operator saves the template it sends: it pauses, and the two who count on it
    running are told what changed and by whom — each once."""
    from django_tasks_db.models import DBTaskResult

    third = make_operator("third", "owner")
    journey = running(author, reviewer)
    template = Template.objects.get(name="Welcome")
    data = {
        "name": template.name,
        "layout": template.layout_id,
        "format": template.format,
        "subject": template.subject,
        "body": "Unreviewed: buy now.",
        "text_body": "",
    }
    form = TemplateForm(data, instance=template)
    assert form.is_valid(), form.errors
    with django_capture_on_commit_callbacks(execute=True):
        do_save_template(form, actor=third)
    assert Journey.objects.get(pk=journey.pk).status == "paused"
    [task] = DBTaskResult.objects.filter(task_path__endswith="notify_voided_task")
    assert four_eyes.notify_voided_task.call(*task.args_kwargs["args"]) == 2
    [mail] = mailoutbox
    assert sorted(mail.to) == sorted([author.email, reviewer.email])  # each once
    assert (
        mailoutbox[0].subject == "tidings: the journey “Welcome” paused: it needs confirming again"
    )
    assert "its template “Welcome” changed" in mailoutbox[0].body
    assert "The change was made by third." in mailoutbox[0].body
