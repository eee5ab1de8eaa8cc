from __future__ import annotations

import pytest
from django.urls import reverse

from tests.journeys.helpers import make_list, make_template, subscriber, welcome
from tests.operators import make_operator, sign_in
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.forms import EXAMPLE_STEPS
from tidings.journeys.models import Enrolment, Journey

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    sign_in(client, make_operator("eddie", "editor"))
    return client


def _form(**changes) -> dict:
    data = {
        "name": "Welcome",
        "topic": "product news",
        "trigger": "confirmed",
        "entry": "once",
        "entry_days": "0",
        "steps": EXAMPLE_STEPS,
    }
    data.update(changes)
    return data


def test_an_editor_builds_and_activates_a_welcome_series(editor):
    make_template("Welcome")
    response = editor.post(reverse("journeys:new"), _form())
    journey = Journey.objects.get()
    assert response.url == reverse("journeys:detail", args=[journey.pk])
    editor.post(reverse("journeys:activate", args=[journey.pk]))
    journey.refresh_from_db()
    assert journey.status == "active"
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert '<svg class="journey-map"' in page and "<script" not in page.split("<main")[-1]
    assert "Send · hello" in page


def test_the_editor_shows_key_path_errors(editor):
    make_template("Welcome")
    bad = EXAMPLE_STEPS.replace('kind = "wait"', 'kind = "nap"')
    page = editor.post(reverse("journeys:new"), _form(steps=bad)).content.decode()
    assert "steps[1].kind: unknown step &#x27;nap&#x27;" in page
    assert not Journey.objects.exists()


def test_activation_refused_for_an_enquiry_trigger_says_why(editor):
    make_template("Welcome")
    editor.post(reverse("journeys:new"), _form(trigger="enquiry_created"))
    journey = Journey.objects.get()
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert "lawful basis is consent" in page
    response = editor.post(reverse("journeys:activate", args=[journey.pk]), follow=True)
    assert "Sending the newsletters you asked for" in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "draft"


def test_the_page_counts_people_per_step(editor):
    journey = welcome()
    for name in ("Ann Example", "Bob Example"):
        do_enrol(journey, subscriber(name, make_list(name=name)))
    engine.advance_due()
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert "2 reached · 0 here now · 2 sent" in page  # hello
    assert _box(page, "pause").endswith("2 reached · 2 here now")  # waiting out the 2 days
    assert _box(page, "tips").endswith("0 reached · 0 here now")  # nobody there yet


def _box(page: str, step: str) -> str:
    """The text of one step's box on the journey's map."""
    import re

    box = page.split(f'data-step="{step}">', 1)[1].split("</g>", 1)[0]
    return re.sub(r"<title>.*?</title>|<[^>]+>", " ", box).split("  ")[-1].strip()


def test_here_now_moves_on_once_the_wait_is_over(editor):
    from datetime import timedelta

    from django.utils import timezone

    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    Enrolment.objects.update(next_run_at=timezone.now() - timedelta(minutes=1))  # wait over
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert _box(page, "pause").endswith("1 reached · 0 here now")
    assert _box(page, "tips").endswith("0 reached · 1 here now")  # due: the worker sends next


def test_the_simulator_on_the_page_writes_nothing(editor):
    journey = welcome()
    subscriber("Ann Example", make_list(), email="ann@example.com")
    url = reverse("journeys:detail", args=[journey.pk])
    page = editor.get(url, {"contact": "ann@example.com", "days": "30"}).content.decode()
    assert "email &quot;Welcome, Ann&quot;" in page
    assert not Enrolment.objects.exists()


def test_editing_a_running_journey_makes_a_new_version(editor):
    journey = welcome()
    url = reverse("journeys:edit", args=[journey.pk])
    form = editor.get(url).context["form"]
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data["steps"] = data["steps"].replace("2 days", "3 days")
    editor.post(url, data)
    journey.refresh_from_db()
    assert journey.version == 2


def test_the_list_and_the_page_cost_the_same_queries_whatever_the_numbers(editor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert editor.get(url).status_code == 200
        return len(captured)

    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    engine.advance_due()
    index, page = reverse("journeys:index"), reverse("journeys:detail", args=[journey.pk])
    before = queries(index), queries(page)
    for n in range(5):
        do_enrol(journey, subscriber(f"Reader {n}", make_list(name=f"List {n}")))
        welcome(name=f"Other {n}", activate=False)
    engine.advance_due()
    assert (queries(index), queries(page)) == before


def test_an_editor_starts_a_journey_from_a_sign_up_form_or_a_campaigns_link(editor):
    from tests.audience.public_helpers import make_form
    from tests.campaigns.event_helpers import sent_campaign

    make_template("Welcome")
    form = make_form([make_list()])
    editor.post(
        reverse("journeys:new"),
        _form(trigger="form_submitted", trigger_form=str(form.pk)),
    )
    journey = Journey.objects.get()
    assert journey.trigger_params == {"form": form.pk}
    campaign, _ = sent_campaign(people=1)
    campaign.topic = "product news"
    campaign.save()
    editor.post(
        reverse("journeys:new"),
        _form(
            name="Pricing",
            trigger="link_clicked",
            trigger_campaign=str(campaign.pk),
            trigger_url="https://example.net/pricing",
        ),
    )
    pricing = Journey.objects.get(name="Pricing")
    assert pricing.trigger_params == {"campaign": campaign.pk, "url": "https://example.net/pricing"}
    response = editor.post(reverse("journeys:new"), _form(name="No form", trigger="form_submitted"))
    assert "choose the sign-up form that starts it" in response.content.decode()


def test_an_editor_starts_a_journey_from_a_saved_segment_or_a_date_attribute(editor):
    from tidings.audience.models import Segment

    make_template("Welcome")
    segment = Segment.objects.create(name="Pro", query='company = "Pro Ltd"')
    editor.post(
        reverse("journeys:new"),
        _form(name="Pro", trigger="segment_matched", trigger_segment=str(segment.pk)),
    )
    assert Journey.objects.get(name="Pro").trigger_params == {"segment": segment.pk}
    response = editor.post(
        reverse("journeys:new"),
        _form(
            name="Birthday",
            trigger="date",
            trigger_field="attributes.birthday",
            trigger_days="-7",
            trigger_yearly="on",
        ),
    )
    # The example policy lets no purpose hold a birthday: refused, with the reason.
    assert "the policy allows no purpose to hold the attribute" in response.content.decode()
    assert not Journey.objects.filter(name="Birthday").exists()
    editor.post(
        reverse("journeys:new"),
        _form(name="Renewal", trigger="date", trigger_days="-30"),
    )
    assert Journey.objects.get(name="Renewal").trigger_params == {
        "field": "contract_end",
        "days": -30,
    }


def test_the_page_header_names_what_starts_the_journey(editor):
    """Not only the trigger's kind: the list, form, segment, campaign or date it watches."""
    from tests.audience.public_helpers import make_form
    from tidings.audience.models import Segment

    def header(journey: Journey) -> str:
        page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
        return page.split("<h1>", 1)[1].split("</p>", 1)[0]

    news = make_list(name="Product news")
    confirmed = welcome(name="On news", activate=False, trigger_params={"list": news.pk})
    assert "Confirmed on a list of the topic: “Product news”" in header(confirmed)
    anywhere = welcome(name="Any list", activate=False)
    assert "Confirmed on a list of the topic: any list of “product news”" in header(anywhere)
    form = make_form([news])
    by_form = welcome(
        name="By form", activate=False, trigger="form_submitted", trigger_params={"form": form.pk}
    )
    assert f"A sign-up form submitted (and confirmed): “{form.name}”" in header(by_form)
    segment = Segment.objects.create(name="Pro <people>", query='company = "Pro Ltd"')
    by_segment = welcome(
        name="Pro",
        activate=False,
        trigger="segment_matched",
        trigger_params={"segment": segment.pk},
    )
    assert "saved segment: “Pro &lt;people&gt;”" in header(by_segment)
    renewal = welcome(
        name="Renewal",
        activate=False,
        topic="",
        trigger="date",
        trigger_params={"field": "contract_end", "days": -30},
    )
    assert "A date field comes round: 30 days before contract_end" in header(renewal)
    segment.delete()
    assert "saved segment: (deleted)" in header(by_segment)


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        (
            '[[steps]]\nid = "a"\nkind = "send_email"\ntemplate = "Welcome"\n'
            'subject = "Hi {% if %}"\n',
            "steps[0].subject: ",
        ),
        (
            '[[steps]]\nid = "a"\nkind = "send_email"\ntemplate = "Welcome"\n'
            'subject = "Hi"\npreheader = "{{ contact.name "\n',
            "steps[0].preheader: ",
        ),
        (
            '[[steps]]\nid = "a"\nkind = "branch"\nsegment = 5\nthen = "b"\nelse = "b"\n\n'
            '[[steps]]\nid = "b"\nkind = "end"\n',
            "steps[0].segment: expected text",
        ),
        (
            '[[steps]]\nid = "a"\nkind = "notify_operator"\nto = "not an address"\nsubject = "x"\n',
            "steps[0].to: expected an email address",
        ),
        (
            '[[steps]]\nid = "a"\nkind = "set_attribute"\nkey = "shoe_size"\nvalue = "9"\n',
            "steps[0].key: the policy&#x27;s newsletter purpose does not hold the attribute",
        ),
        (
            '[[steps]]\nid = "a"\nkind = "remove_attribute"\nkey = "name"\n',
            "steps[0].key: the policy&#x27;s newsletter purpose does not hold the attribute",
        ),
    ],
    ids=["subject", "preheader", "segment", "notify", "attribute", "column"],
)
def test_the_editor_refuses_a_step_that_could_only_fail_when_it_runs(editor, steps, error):
    """Found when the journey is saved, with its key path, not by parking people later."""
    make_template("Welcome")
    page = editor.post(reverse("journeys:new"), _form(steps=steps)).content.decode()
    assert error in page
    assert not Journey.objects.exists()


def test_the_map_cuts_long_texts_and_splits_big_counts_to_fit_the_boxes():
    import re

    from tidings.journeys.stats import StepCounts
    from tidings.journeys.svg import journey_svg

    steps = [
        {"id": "x" * 40, "kind": "wait_event", "event": "e" * 100, "timeout": "3 days"}
        | {"then": "end", "else": "end"},
        {"id": "end", "kind": "end"},
    ]
    big = StepCounts(
        reached=123456, waiting=123456, sent=123456, opened=123456, clicked=123456, exited=12345
    )
    svg = journey_svg(steps, {"x" * 40: big}, "A journey")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert max(len(t) for t in texts) <= 58
    assert "123456 sent · 123456 opened, 123456 clicked" in texts
    assert "e" * 100 in svg.split("<title>")[1]  # the whole of it in the tooltip


def test_the_simulator_waits_as_long_as_the_engine_across_a_clock_change(editor):
    """A start given on the page is local time; "2 days" is two calendar days for the engine
    (the same wall-clock time, journeys.schedule), and the simulator shows the same instant."""
    from datetime import UTC, datetime

    journey = welcome()
    subscriber("Ann Example", make_list(), email="ann@example.com")
    url = reverse("journeys:detail", args=[journey.pk])
    # 28 March 2027: the clocks go forward at 01:00 GMT; 00:30 is still GMT.
    response = editor.get(
        url, {"contact": "ann@example.com", "days": "30", "start": "2027-03-28T00:30"}
    )
    hello, pause, tips = response.context["simulation"][:3]
    assert hello.at == datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert tips.at == datetime(2027, 3, 29, 23, 30, tzinfo=UTC)  # 00:30 BST, 47 hours on
    assert "waits until Tue 30 Mar 2027 00:30 BST" in pause.what


def test_the_page_counts_people_on_older_versions_in_good_english(editor):
    journey = welcome()
    do_enrol(journey, subscriber("Ann Example", make_list()))
    url = reverse("journeys:edit", args=[journey.pk])
    form = editor.get(url).context["form"]
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    editor.post(url, {**data, "steps": data["steps"].replace("2 days", "3 days")})
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert "1 person is finishing an older version." in page


def test_the_simulator_stops_at_its_horizon_after_a_wait_for_a_click_or_an_event():
    from tidings.journeys.simulate import simulate

    steps = [
        {"id": "hello", "kind": "send_email", "template": "Welcome", "subject": "Hi"},
        {"id": "click", "kind": "wait_click", "timeout": "5 days", "then": "end", "else": "more"},
        {"id": "more", "kind": "send_email", "template": "Welcome", "subject": "Later"},
        {"id": "end", "kind": "end"},
    ]
    journey = welcome(steps=steps, goals=[])
    ann = subscriber("Ann Example", make_list())
    moments = simulate(journey, ann, days=3)
    assert [m.step for m in moments] == ["hello", "click", ""]
    assert moments[-1].what == "beyond the 3 days simulated"
    assert [m.step for m in simulate(journey, ann, days=6)] == ["hello", "click", "more", "end"]


def test_the_simulator_says_where_it_stopped_in_a_journey_that_loops():
    from tidings.journeys.simulate import MAX_STEPS, simulate

    steps = [
        {"id": "nap", "kind": "wait", "duration": "1 hour"},
        {"id": "ping", "kind": "webhook", "event": "tick", "next": "nap"},
    ]
    journey = welcome(steps=steps, goals=[])
    moments = simulate(journey, subscriber("Ann Example", make_list()), days=30)
    assert len(moments) == MAX_STEPS + 1
    assert [m.step for m in moments[:4]] == ["nap", "ping", "nap", "ping"]
    assert moments[-1].what == (
        f"the simulation stops here, after {MAX_STEPS} steps (the journey goes on)"
    )


def test_a_new_journey_is_about_a_marketing_topic_until_the_editor_says_otherwise(editor):
    form = editor.get(reverse("journeys:new")).context["form"]
    assert form["topic"].value() == "product news"  # the policy's first topic, not service mail


def test_a_subscription_trigger_that_nobody_could_set_off_is_refused(editor):
    """Confirming a list is consent to its topic: a service-message journey, or a list of
    another topic, would wait for ever for people who can never enter."""
    make_template("Welcome")
    training = make_list(name="Training", topic="training")
    service = editor.post(reverse("journeys:new"), _form(topic="")).content.decode()
    assert "a service-message journey cannot start from a subscription" in service
    other = editor.post(
        reverse("journeys:new"), _form(trigger_list=str(training.pk))
    ).content.decode()
    assert "the list “Training” is about “training”, not “product news”" in other
    assert not Journey.objects.exists()


def test_an_editor_builds_a_service_message_journey(editor):
    steps = (
        '[[steps]]\nid = "tell"\nkind = "notify_operator"\nto = "s@example.com"\nsubject = "x"\n'
    )
    response = editor.post(
        reverse("journeys:new"), _form(topic="", trigger="enquiry_created", steps=steps)
    )
    journey = Journey.objects.get()
    assert response.url == reverse("journeys:detail", args=[journey.pk])
    assert (journey.topic, journey.is_marketing) == ("", False)


def test_a_huge_journey_is_refused_with_a_form_error_not_a_500(editor):
    steps = "".join(
        f'[[steps]]\nid = "s{i}"\nkind = "webhook"\nevent = "x"\n\n' for i in range(3000)
    )
    page = editor.post(reverse("journeys:new"), _form(steps=steps)).content.decode()
    assert "steps: a journey has at most 500 steps" in page
    assert not Journey.objects.exists()


def test_toml_nested_too_deeply_is_a_form_error_not_a_500(editor):
    for text in ("x = " + "[" * 5000 + "]" * 5000, "x = " + "{a=" * 3000 + "1" + "}" * 3000):
        page = editor.post(reverse("journeys:new"), _form(steps=text)).content.decode()
        assert "not valid TOML: nested too deeply" in page
    assert not Journey.objects.exists()


def test_the_editor_explains_every_step_kind_and_its_fields(editor):
    from tidings.journeys.steps import KINDS

    page = editor.get(reverse("journeys:new")).content.decode()
    help_text = page.split("<summary>Step kinds</summary>", 1)[1].split("</details>", 1)[0]
    for kind, fields in KINDS.items():
        assert f"<code>{kind}</code>" in help_text, kind
        line = help_text.split(f"<code>{kind}</code>", 1)[1].split("</li>", 1)[0]
        for field in fields:
            assert field in line, (kind, field)


def test_a_running_journey_that_the_policy_no_longer_allows_says_what_happens_to_people(editor):
    from tidings.journeys.models import JourneyVersion

    journey = welcome(steps=[{"id": "ping", "kind": "webhook", "event": "x"}], goals=[])
    # Saved when the policy held "plan"; the example policy in force now does not.
    bad = [{"id": "tag", "kind": "set_attribute", "key": "plan", "value": "pro"}]
    JourneyVersion.objects.filter(journey=journey).update(steps=bad)
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert "cannot run yet" not in page
    assert "a person reaching a step below is parked with the reason" in page
    assert 'does not hold the attribute "plan"' in page.replace("&quot;", '"')

    draft = welcome(activate=False, name="Draft", steps=[{"id": "e", "kind": "end"}], goals=[])
    JourneyVersion.objects.filter(journey=draft).update(steps=bad)
    page = editor.get(reverse("journeys:detail", args=[draft.pk])).content.decode()
    assert "It cannot run yet:" in page


def test_a_new_journey_starts_from_an_example_that_saves_as_it_is(editor):
    make_template('Spring "news"')
    make_template("Autumn")
    form = editor.get(reverse("journeys:new")).context["form"]
    steps = form.initial["steps"]
    assert steps.count('template = "Autumn"') == 2 and 'template = "Welcome"' not in steps
    response = editor.post(reverse("journeys:new"), _form(steps=steps))
    journey = Journey.objects.get()
    assert response.url == reverse("journeys:detail", args=[journey.pk])
    assert [s.get("template") for s in journey.current().steps if "template" in s] == [
        "Autumn",
        "Autumn",
    ]

    make_template("Welcome")  # the example's own template, when there is one
    assert (
        'template = "Welcome"'
        in editor.get(reverse("journeys:new")).context["form"].initial["steps"]
    )


def test_a_writer_cannot_change_what_a_started_journey_sends(client):
    # A writer may not send: starting a journey needs "send", and so does changing one that runs
    # (its next entrants would get the writer's mail with nobody who may send having seen it).
    journey = welcome()
    sign_in(client, make_operator("wendy", "writer"))
    url = reverse("journeys:edit", args=[journey.pk])
    page = client.get(url)
    data = {k: ("" if v is None else v) for k, v in page.context["form"].initial.items()}
    data["steps"] = data["steps"].replace("Three tips", "Claim your prize at evil.example")

    response = client.post(url, data)

    assert response.status_code == 403
    assert "only an operator who may send" in response.content.decode()
    journey.refresh_from_db()
    assert journey.version == 1
    assert "only an operator who may send" in page.content.decode()


def test_a_writer_still_drafts_journeys(client):
    make_template("Welcome")
    sign_in(client, make_operator("wendy", "writer"))
    client.post(reverse("journeys:new"), _form())
    journey = Journey.objects.get()
    url = reverse("journeys:edit", args=[journey.pk])

    response = client.post(url, _form(name="Welcome, again"))

    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.name == "Welcome, again"


def test_someone_who_leaves_while_waiting_left_at_the_wait(editor):
    """Unsubscribed during the 2-day wait: the map says they left at the wait, and not that
    they reached (and left at) the next send step, which never ran for them."""
    from tidings.journeys.actions import do_exit_contact

    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    do_exit_contact(ann.pk, "unsubscribed")
    page = editor.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    assert _box(page, "pause").endswith("1 reached · 0 here now · 1 left")
    assert _box(page, "tips").endswith("0 reached · 0 here now")
