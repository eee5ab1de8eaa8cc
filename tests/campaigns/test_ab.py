"""A/B tests: variants refused when they do not render, an even and reproducible random split
fixed on each person's row, figures with confidence intervals that say when a difference is not
significant, machine opens that never decide, and the winner sent to the rest — end to end with
the delivery engine and a real SMTP server."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender
from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.campaigns import abtest, lifecycle
from tidings.campaigns.abtest import (
    VariantResult,
    compare,
    decide_due_tests,
    do_pick_winner,
    do_set_ab_test,
    fisher_exact_p_value,
    proportions_p_value,
    two_proportion_p_value,
    variant_results,
    wilson_interval,
)
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.events import NewEvent, record_events
from tidings.campaigns.lifecycle import CampaignNotReady
from tidings.campaigns.models import ABTest, Campaign, Delivery, Sender, Variant
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db

SUBJECTS = {"A": "Our spring news", "B": "Three things we shipped for you"}


@pytest.fixture
def news():
    return make_list()


def readers(mailing_list, count: int) -> list:
    people = []
    for n in range(count):
        contact, _ = do_create_contact(
            {"name": f"Reader {n}", "email": f"reader{n}@example.org"}, purpose="newsletter"
        )
        do_subscribe(contact, mailing_list, source="form", wording_text="Yes", confirmed=True)
        people.append(contact)
    return people


def sender():
    return Sender.objects.filter(email="news@example.co.uk").first() or make_sender()


def ab_campaign(news, *, share=40, metric="clicks", automatic=True, wait=60, variants=None):
    campaign = make_campaign(news, sender=sender(), with_template=True)
    do_set_ab_test(
        campaign,
        variants or [{"subject": SUBJECTS["A"]}, {"subject": SUBJECTS["B"]}],
        share=share,
        metric=metric,
        wait_minutes=wait,
        automatic=automatic,
        actor=None,
    )
    return campaign


def start(campaign: Campaign) -> None:
    lifecycle.do_schedule(campaign, None, actor=None, confirmed=True)
    lifecycle.do_start(campaign.pk)
    campaign.refresh_from_db()


def rows(campaign) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for label, status in Delivery.objects.filter(campaign=campaign).values_list(
        "variant__label", "status"
    ):
        counts["held" if status == "held" else label or "-"] += 1
    return dict(counts)


# --- setting up ----------------------------------------------------------------------------------
def test_a_test_needs_two_to_four_variants_a_share_a_metric_and_a_wait(news):
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    with pytest.raises(CampaignNotReady) as refused:
        do_set_ab_test(
            campaign,
            [{"subject": "Only one"}],
            share=0,
            metric="luck",
            wait_minutes=0,
            automatic=True,
            actor=None,
        )
    fields = {p.field for p in refused.value.problems}
    assert fields == {"variants", "share", "metric", "wait_minutes"}
    with pytest.raises(CampaignNotReady):
        do_set_ab_test(
            campaign,
            [{"subject": str(n)} for n in range(5)],
            share=20,
            metric="clicks",
            wait_minutes=60,
            automatic=True,
            actor=None,
        )
    assert not ABTest.objects.exists()


def test_only_a_draft_gets_an_ab_test(news):
    campaign = make_campaign(news, sender=make_sender(), with_template=True, status="sending")
    with pytest.raises(lifecycle.InvalidTransition):
        do_set_ab_test(
            campaign,
            [{"subject": "a"}, {"subject": "b"}],
            share=20,
            metric="clicks",
            wait_minutes=60,
            automatic=True,
            actor=None,
        )


def test_a_variant_whose_subject_is_empty_for_someone_without_a_name_is_refused(news):
    # B's subject printed nothing for every reader without a name: an empty Subject header.
    readers(news, 10)
    campaign = ab_campaign(
        news, variants=[{"subject": "Fine"}, {"subject": "{{ contact.first_name }}"}]
    )
    problems = [str(p) for p in lifecycle.schedule_problems(campaign)]
    assert any(
        p.startswith("variant B: ") and "the subject is empty for someone without a name" in p
        for p in problems
    ), problems
    campaign.variants.filter(label="B").update(
        subject="{{ contact.first_name | default('Hello') }}, news"
    )
    assert not lifecycle.schedule_problems(campaign)


def test_variants_that_fail_to_render_are_refused_before_start(news):
    readers(news, 3)
    campaign = ab_campaign(
        news,
        variants=[
            {"subject": "Fine"},
            {"body": "Hello {{ contact.name | no_such_filter }}"},
            {"subject": "Fine"},
        ],
    )
    problems = [str(p) for p in lifecycle.schedule_problems(campaign)]
    assert any(p.startswith("variant B: ") and "no_such_filter" in p for p in problems), problems
    assert any("variants A and C are the same" in p for p in problems)
    with pytest.raises(CampaignNotReady):
        lifecycle.do_schedule(campaign, None, actor=None, confirmed=True)
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert not Delivery.objects.exists()


def test_a_variant_that_spells_out_the_campaigns_own_subject_is_the_same_as_a_blank_one(news):
    """Variant A blank (the campaign's subject), B the campaign's subject typed in: the "test"
    sent one message twice and chose a winner between them."""
    readers(news, 10)
    campaign = ab_campaign(news, share=100, variants=[{}, {"subject": "x"}])
    Variant.objects.filter(campaign=campaign, label="B").update(subject=campaign.subject)
    problems = [str(p) for p in lifecycle.schedule_problems(campaign)]
    assert any("variants A and B are the same" in p for p in problems), problems


def test_a_test_share_too_small_for_every_variant_is_refused(news, owner_client):
    """20% of 4 people is one person: variants B, C and D went to nobody, and A "won"."""
    readers(news, 4)
    campaign = ab_campaign(news, share=20, variants=[{"subject": f"Subject {n}"} for n in range(4)])
    expected = (
        "the A/B test is too small: 20% of 4 people is 1, fewer than its 4 variants, so some "
        "would go to nobody and could never win; raise the test share, use fewer variants, or "
        "remove the test"
    )
    assert expected in [str(p) for p in lifecycle.schedule_problems(campaign)]
    with pytest.raises(CampaignNotReady):
        lifecycle.do_schedule(campaign, None, actor=None, confirmed=True)
    page = owner_client.post(reverse("campaigns:schedule", args=[campaign.pk]), {"send_now": "1"})
    assert expected in page.content.decode()
    assert "Confirm: send to" not in page.content.decode()
    # A share that gives each variant someone goes ahead.
    ABTest.objects.filter(campaign=campaign).update(share=100)
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert not [p for p in lifecycle.schedule_problems(campaign) if "too small" in str(p)]


# --- the split ----------------------------------------------------------------------------------
def test_the_share_is_split_evenly_at_random_and_the_rest_is_held(news):
    readers(news, 100)
    campaign = ab_campaign(news, share=40)
    start(campaign)
    assert rows(campaign) == {"A": 20, "B": 20, "held": 60}
    # Random, not the first forty by id.
    tested = list(
        Delivery.objects.filter(campaign=campaign, variant__isnull=False)
        .order_by("pk")
        .values_list("contact_id", flat=True)
    )
    all_ids = sorted(
        Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True)
    )
    assert tested != all_ids[:40]


def test_the_same_seed_gives_the_same_split(news):
    readers(news, 60)
    first = ab_campaign(news, share=50)
    second = ab_campaign(news, share=50)
    ABTest.objects.filter(campaign=second).update(seed=first.ab_test.seed)
    third = ab_campaign(news, share=50)
    ABTest.objects.filter(campaign=third).update(seed=first.ab_test.seed + 1)
    for campaign in (first, second, third):
        start(campaign)

    def split(campaign):
        return dict(
            Delivery.objects.filter(campaign=campaign).values_list("contact_id", "variant__label")
        )

    assert split(first) == split(second)
    assert split(first) != split(third)


def test_four_variants_share_the_test_to_within_one_person(news):
    readers(news, 50)
    campaign = ab_campaign(
        news, share=100, variants=[{"subject": f"Subject {n}"} for n in range(4)]
    )
    start(campaign)
    counts = rows(campaign)
    assert sorted(counts) == ["A", "B", "C", "D"]
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == 50


# --- the figures ---------------------------------------------------------------------------------
def test_the_closed_forms_match_the_textbook_values():
    low, high = wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert wilson_interval(0, 0) == (0.0, 0.0)
    # (0.5 - 0.3) / sqrt(0.4 · 0.6 · (1/100 + 1/100)) = 2.8868 → p = 0.0039
    assert math.isclose(two_proportion_p_value(50, 100, 30, 100), 0.003892, abs_tol=1e-5)
    assert two_proportion_p_value(0, 10, 0, 10) == 1.0


# Two-sided p-values of scipy.stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]) (scipy 1.17).
FISHER = [
    ((3, 3, 0, 3), 0.1),
    ((5, 10, 1, 10), 0.14086687306501544),
    ((2, 40, 0, 40), 0.49367088607594933),
    ((6, 20, 0, 20), 0.0201960201960202),
    ((7, 25, 1, 25), 0.04879715369571876),
]


@pytest.mark.parametrize(("table", "expected"), FISHER)
def test_fishers_exact_test_gives_scipys_values(table, expected):
    assert math.isclose(fisher_exact_p_value(*table), expected, rel_tol=1e-9)


def _result(label: str, successes: int, trials: int) -> VariantResult:
    low, high = wilson_interval(successes, trials)
    rate = successes / trials if trials else 0.0
    return VariantResult(ord(label), label, trials, successes, successes, successes, trials, rate,
                         low, high)  # fmt: skip


def test_a_handful_of_people_is_never_called_a_significant_difference():
    # 3 of 3 clicked A, 0 of 3 clicked B: the z-test's normal approximation says p = 0.014
    # ("significant"); with so few people Fisher's exact test is used, p = 0.1.
    assert two_proportion_p_value(3, 3, 0, 3) < 0.05
    assert proportions_p_value(3, 3, 0, 3) == pytest.approx(0.1)
    comparison = compare([_result("A", 3, 3), _result("B", 0, 3)], "Unique human clicks")
    assert comparison.leader.label == "A" and not comparison.significant
    assert "not significant (p = 0.10)" in comparison.sentence
    # Enough people for the approximation: the z-test, as before.
    assert proportions_p_value(50, 100, 30, 100) == two_proportion_p_value(50, 100, 30, 100)
    assert compare([_result("A", 50, 100), _result("B", 30, 100)], "Opens").significant


def test_level_variants_are_called_level_not_one_leading():
    comparison = compare(
        [_result("A", 4, 20), _result("B", 4, 20), _result("C", 1, 20)], "Unique human opens"
    )
    assert comparison.leader.label == "A" and not comparison.significant
    assert comparison.sentence.startswith("Variants A and B are level (20.0% unique human opens)")
    assert "leads" not in comparison.sentence


def test_no_engagement_at_all_is_not_called_a_difference_or_a_winner():
    comparison = compare([_result("A", 0, 2), _result("B", 0, 2)], "Unique human clicks")
    assert not comparison.significant
    assert comparison.sentence == (
        "No variant has any unique human clicks: there is nothing to choose by, so no variant is "
        "better; variant A is taken as the first of them."
    )


def test_a_tiny_p_value_is_not_shown_as_zero():
    comparison = compare([_result("A", 500, 1000), _result("B", 100, 1000)], "Unique human clicks")
    assert comparison.significant
    assert "significant (p < 0.001)" in comparison.sentence and "0.000" not in comparison.sentence


def test_with_several_variants_the_sentence_gives_the_corrected_bar():
    # Each p is 0.030: under 5%, but three comparisons must each be under 0.017.
    results = [_result("A", 30, 100), _result("B", 17, 100), _result("C", 17, 100)]
    results.append(_result("D", 17, 100))
    comparison = compare(results, "Unique human opens")
    assert not comparison.significant
    assert all(0.017 < p < 0.05 for p in comparison.p_values.values())
    assert "not significant (p = 0.03; with 3 comparisons it must be below 0.017)" in (
        comparison.sentence
    )


def test_a_test_decided_without_evidence_names_no_winner_on_its_page(news, owner_client):
    readers(news, 8)
    campaign = ab_campaign(news, share=50, wait=1)
    start(campaign)
    Delivery.objects.filter(campaign=campaign, variant__isnull=False).update(
        status="sent", sent_at=timezone.now()
    )
    assert decide_due_tests(now=timezone.now() + timedelta(minutes=2)) == [campaign.pk]
    test = ABTest.objects.get(campaign=campaign)
    assert "there is nothing to choose by" in test.decision
    page = owner_client.get(reverse("campaigns:ab-results", args=[campaign.pk])).content.decode()
    assert "(winner)" not in page and "A (sent to the rest)" in page


def _engage(campaign, label: str, people: int, kind: str, *, machine: bool = False) -> None:
    deliveries = list(
        Delivery.objects.filter(campaign=campaign, variant__label=label).order_by("pk")[:people]
    )
    at = timezone.now() + timedelta(minutes=5)
    record_events(
        [NewEvent(d.pk, kind, at, 0 if kind == "click" else None, machine) for d in deliveries]
    )


def test_machine_opens_never_decide_the_winner(news):
    readers(news, 40)
    campaign = ab_campaign(news, share=100, metric="opens")
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=timezone.now())
    _engage(campaign, "A", 20, "open", machine=True)  # Apple's proxy opened every A message
    _engage(campaign, "B", 3, "open")  # three people opened B
    results = {r.label: r for r in variant_results(campaign, "opens")}
    assert results["A"].openers == 0 and results["B"].openers == 3
    comparison = compare(list(results.values()), "Unique human opens")
    assert comparison.leader.label == "B"


def test_the_results_page_shows_messages_opened_only_by_machines_apart(news, owner_client):
    readers(news, 40)
    campaign = ab_campaign(news, share=100, metric="opens")
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=timezone.now())
    _engage(campaign, "A", 12, "open", machine=True)  # Apple's proxy fetched twelve of A's
    _engage(campaign, "A", 2, "open")  # of which two people also opened it themselves
    _engage(campaign, "B", 5, "open", machine=True)
    results = {r.label: r for r in variant_results(campaign, "opens")}
    assert (results["A"].openers, results["A"].machine_only) == (2, 10)
    assert (results["B"].openers, results["B"].machine_only) == (0, 5)
    page = owner_client.get(reverse("campaigns:ab-results", args=[campaign.pk])).content.decode()
    assert "15 of the test's messages were opened only by a machine" in page
    assert "clicks are the surer measure" in page
    assert "<td>2</td><td>0</td><td>10</td>" in page


def test_a_small_difference_is_reported_as_not_significant(news):
    readers(news, 40)
    campaign = ab_campaign(news, share=100)
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=timezone.now())
    _engage(campaign, "A", 3, "click")
    _engage(campaign, "B", 2, "click")
    results = variant_results(campaign, "clicks")
    comparison = compare(results, "Unique human clicks")
    assert comparison.leader.label == "A" and not comparison.significant
    assert "not significant" in comparison.sentence
    a = next(r for r in results if r.label == "A")
    assert a.sent == 20 and a.clickers == 3 and a.low < 0.15 < a.high


def test_a_variants_rate_is_of_its_messages_sent_with_tracking(news):
    """B's openers were fewer only because half its people refuse tracking: B leads."""
    readers(news, 40)
    campaign = ab_campaign(news, share=100, metric="opens")
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(
        status="sent", sent_at=timezone.now(), tracked=True
    )
    b_rows = Delivery.objects.filter(campaign=campaign, variant__label="B").order_by("-pk")
    Delivery.objects.filter(pk__in=list(b_rows.values_list("pk", flat=True)[:10])).update(
        tracked=False
    )
    _engage(campaign, "A", 8, "open")
    _engage(campaign, "B", 6, "open")
    results = {r.label: r for r in variant_results(campaign, "opens")}
    assert (results["A"].sent, results["A"].trials) == (20, 20)
    assert (results["B"].sent, results["B"].trials) == (20, 10)
    assert results["B"].rate == pytest.approx(0.6) and results["A"].rate == pytest.approx(0.4)
    assert compare(list(results.values()), "Unique human opens").leader.label == "B"


def test_click_to_open_counts_clickers_among_people_who_opened(news):
    readers(news, 20)
    campaign = ab_campaign(news, share=100, metric="click_to_open")
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(status="sent", sent_at=timezone.now())
    _engage(campaign, "A", 4, "open")
    _engage(campaign, "A", 2, "click")
    _engage(campaign, "B", 2, "click")  # clicked with images off: a click implies an open
    results = {r.label: r for r in variant_results(campaign, "click_to_open")}
    assert (results["A"].successes, results["A"].trials) == (2, 4)
    assert (results["B"].successes, results["B"].trials) == (2, 2)


# --- deciding, end to end -------------------------------------------------------------------------
def test_an_ab_test_runs_end_to_end_and_the_winner_goes_to_the_rest(news, settings):
    readers(news, 40)
    campaign = ab_campaign(news, share=50, wait=60)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        start(campaign)
        assert rows(campaign) == {"A": 10, "B": 10, "held": 20}
        deliver_pending(max_seconds=20)
        assert len(sink.received) == 20
        subjects = Counter(r.message["Subject"] for r in sink.received)
        assert subjects == {SUBJECTS["A"]: 10, SUBJECTS["B"]: 10}
        # Each person got the subject of the variant on their row.
        for received in sink.received:
            label = Delivery.objects.get(
                campaign=campaign, contact__email=received.recipient
            ).variant.label
            assert received.message["Subject"] == SUBJECTS[label]
        campaign.refresh_from_db()
        assert campaign.status == "sending"  # the rest are waiting
        # People click on B's message far more than on A's.
        _engage(campaign, "B", 7, "click")
        _engage(campaign, "A", 1, "click")
        assert decide_due_tests(now=timezone.now() + timedelta(minutes=59)) == []
        assert decide_due_tests(now=timezone.now() + timedelta(minutes=61)) == [campaign.pk]
        test = ABTest.objects.get(campaign=campaign)
        assert test.winner.label == "B" and test.decided_by is None
        assert "significant" in test.decision
        deliver_pending(max_seconds=20)
        assert len(sink.received) == 40
        copies = Counter(r.recipient for r in sink.received)
        assert set(copies.values()) == {1}  # everybody exactly once
        rest = sink.received[20:]
        assert {r.message["Subject"] for r in rest} == {SUBJECTS["B"]}
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    entry = AuditEntry.objects.get(action="campaign.ab_winner")
    assert entry.details["winner"] == "B" and entry.details["released"] == 20


def test_the_waiting_time_starts_when_the_test_group_has_had_the_mail(news):
    """With "deliver at a local hour", the test's rows wait for that hour; the winner was chosen
    `wait` minutes after the campaign's start — before anyone had the mail — and sent to all."""
    readers(news, 20)
    campaign = ab_campaign(news, share=50, wait=60)
    hour = (timezone.localtime().hour + 3) % 24
    Campaign.objects.filter(pk=campaign.pk).update(local_hour=hour)
    start(campaign)
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "held"
    }
    assert decide_due_tests(now=timezone.now() + timedelta(minutes=61)) == []
    assert abtest.test_ends_at(campaign.ab_test) is None
    # The hour comes and the test group goes out; the waiting time runs from then.
    went_out = timezone.now() + timedelta(hours=3)
    Delivery.objects.filter(campaign=campaign, variant__isnull=False).update(
        status="sent", sent_at=went_out, next_attempt_at=None
    )
    assert decide_due_tests(now=went_out + timedelta(minutes=59)) == []
    assert decide_due_tests(now=went_out + timedelta(minutes=61)) == [campaign.pk]


def test_the_operator_picks_the_winner_when_it_is_not_automatic(news):
    readers(news, 20)
    campaign = ab_campaign(news, share=50, automatic=False, wait=1)
    start(campaign)
    assert decide_due_tests(now=timezone.now() + timedelta(days=1)) == []
    b = Variant.objects.get(campaign=campaign, label="B")
    released = do_pick_winner(campaign, b, actor=None)
    assert released == 10
    assert rows(campaign) == {"A": 5, "B": 15}
    with pytest.raises(abtest.DecisionError):
        do_pick_winner(campaign, b, actor=None)


def test_cancelling_mid_test_cancels_the_rest(news):
    readers(news, 20)
    campaign = ab_campaign(news, share=50)
    start(campaign)
    dropped = lifecycle.do_cancel(campaign, actor=None)
    assert dropped == 20  # the test's queued rows and the held rest
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "skipped"
    }
    assert decide_due_tests(now=timezone.now() + timedelta(days=1)) == []


def test_a_sender_name_variant_changes_the_from_line(news, settings):
    readers(news, 4)
    campaign = ab_campaign(
        news, share=100, variants=[{"sender_name": "Ada at Example"}, {"subject": "Other"}]
    )
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        start(campaign)
        deliver_pending(max_seconds=20)
    froms = Counter(str(r.message["From"]) for r in sink.received)
    assert froms == {
        "Ada at Example <news@example.co.uk>": 2,
        "Example News <news@example.co.uk>": 2,
    }


def test_the_campaign_object_is_not_changed_by_applying_a_variant(news):
    campaign = ab_campaign(news, variants=[{"sender_name": "Other name"}, {"subject": "x"}])
    campaign = Campaign.objects.select_related("sender").get(pk=campaign.pk)
    view = campaign.variants.get(label="A").applied_to(campaign)
    assert view.sender.name == "Other name"
    assert campaign.sender.name == "Example News"


# --- the pages ----------------------------------------------------------------------------------
def test_an_operator_sets_up_the_test_and_picks_the_winner_on_the_pages(news, owner_client):
    from django.urls import reverse

    readers(news, 10)
    campaign = make_campaign(news, sender=sender(), with_template=True)
    url = reverse("campaigns:ab", args=[campaign.pk])
    refused = owner_client.post(
        url, {"share": "50", "metric": "clicks", "wait_minutes": "60", "A_subject": "Only A"}
    )
    assert "give 2 to 4 variants, not 1" in refused.content.decode()
    owner_client.post(
        url,
        {
            "share": "50",
            "metric": "clicks",
            "wait_minutes": "60",
            "A_subject": SUBJECTS["A"],
            "B_subject": SUBJECTS["B"],
            "B_sender_name": "Ada at Example",
        },
    )
    test = ABTest.objects.get(campaign=campaign)
    assert (test.share, test.automatic) == (50, False)  # the box was left unticked
    assert list(campaign.variants.values_list("label", "sender_name")) == [
        ("A", ""),
        ("B", "Ada at Example"),
    ]
    start(campaign)
    page = owner_client.get(reverse("campaigns:ab-results", args=[campaign.pk]))
    text = page.content.decode()
    assert "there is nothing to choose by" in text and "Send B to the rest" in text
    b = campaign.variants.get(label="B")
    owner_client.post(reverse("campaigns:ab-pick", args=[campaign.pk, b.pk]))
    assert ABTest.objects.get(campaign=campaign).winner == b
    assert rows(campaign) == {"A": 3, "B": 7}


def test_a_writer_writes_but_cannot_send_or_pick(news, client):
    from django.urls import reverse

    from tests.operators import make_operator

    readers(news, 4)
    campaign = ab_campaign(news, share=50, automatic=False)
    client.force_login(make_operator("wendy", "writer"))
    assert client.get(reverse("campaigns:edit", args=[campaign.pk])).status_code == 200
    assert client.get(reverse("campaigns:schedule", args=[campaign.pk])).status_code == 403
    start(campaign)
    b = campaign.variants.get(label="B")
    assert client.post(reverse("campaigns:ab-pick", args=[campaign.pk, b.pk])).status_code == 403
    assert ABTest.objects.get(campaign=campaign).decided_at is None


def test_each_variant_can_be_previewed(news, owner_client):
    from django.urls import reverse

    campaign = ab_campaign(news, variants=[{"subject": "Plain"}, {"subject": "Fancy {{ 1 + 1 }}"}])
    page = owner_client.get(reverse("campaigns:preview", args=[campaign.pk]), {"variant": "B"})
    assert page.context["rendered"].subject == "Fancy 2"
    missing = owner_client.get(reverse("campaigns:preview", args=[campaign.pk]), {"variant": "Z"})
    assert "has no variant 'Z'" in missing.content.decode().replace("&#x27;", "'")


def test_a_follow_up_of_an_ab_test_repeats_the_winning_content(news):
    """A follow-up to the people who did not open repeated the campaign's own body, which the
    content variants had replaced: most of its readers had been sent the winner's."""
    from tidings.campaigns.followups import do_create_follow_up

    readers(news, 20)
    campaign = ab_campaign(
        news,
        share=50,
        automatic=False,
        variants=[
            {"subject": SUBJECTS["A"], "body": "# Plain words\n\nVariant A's text."},
            {"subject": SUBJECTS["B"], "body": "# Bold words\n\nVariant B's text."},
        ],
    )
    start(campaign)
    do_pick_winner(campaign, Variant.objects.get(campaign=campaign, label="B"), actor=None)
    campaign.refresh_from_db()
    follow_up = do_create_follow_up(
        campaign, audience="not_opened", days=3, subject="In case you missed it", actor=None
    )
    assert follow_up.body == "# Bold words\n\nVariant B's text."
    plain = ab_campaign(news, share=50, automatic=False)  # subjects only: the campaign's body
    start(plain)
    do_pick_winner(plain, Variant.objects.get(campaign=plain, label="A"), actor=None)
    plain.refresh_from_db()
    again = do_create_follow_up(plain, audience="not_opened", days=3, subject="Again", actor=None)
    assert again.body == plain.body


def test_a_variant_left_empty_before_a_filled_one_is_refused_not_relabelled(news, owner_client):
    """Filling A and C and leaving B empty saved C's subject as variant B: the report then
    named a variant the operator never wrote.  The form asks for the variants in order."""
    from tidings.campaigns.models import Variant

    readers(news, 10)
    campaign = make_campaign(news, sender=sender(), with_template=True)
    response = owner_client.post(
        reverse("campaigns:ab", args=[campaign.pk]),
        {
            "share": "50",
            "metric": "clicks",
            "wait_minutes": "60",
            "A_subject": "Subject A",
            "C_subject": "Subject C",
        },
    )
    assert "variant B is empty but variant C is not" in response.content.decode()
    assert not Variant.objects.filter(campaign=campaign).exists()


def test_the_ab_form_describes_its_fields_and_says_too_few_variants_at_variant_b(
    news, owner_client
):
    """The share's and the automatic box's aria-describedby named help that had no id (a
    screen reader read no help for them), and "give 2 to 4 variants, not 1" stood only at the
    top of the form, tied to no field: it now sits at variant B's subject, the box to fill."""
    import re

    from django.urls import reverse

    campaign = make_campaign(news, sender=sender(), with_template=True)
    url = reverse("campaigns:ab", args=[campaign.pk])

    def described(page: str, name: str) -> list[str]:
        """The texts of the elements a field's aria-describedby names (each must exist)."""
        field = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>', page)
        assert field, name
        ids = re.search(r'aria-describedby="([^"]+)"', field.group())
        texts = []
        for i in ids.group(1).split() if ids else []:
            found = re.search(rf'id="{i}"[^>]*>(.*?)</(?:div|ul)>', page, re.S)
            assert found, f"{name} is described by {i}, which is not on the page"
            texts.append(re.sub(r"<[^>]+>", "", found.group(1)).strip())
        return texts

    page = owner_client.get(url).content.decode()
    assert described(page, "share") == [
        "Split evenly between the variants at random; the rest get the winner."
    ]
    assert described(page, "automatic") == ["Off: an operator picks the winner on the report."]

    refused = owner_client.post(
        url, {"share": "50", "metric": "clicks", "wait_minutes": "60", "A_subject": "Only A"}
    ).content.decode()
    assert described(refused, "B_subject") == ["give 2 to 4 variants, not 1"]
    assert not ABTest.objects.filter(campaign=campaign).exists()


def test_people_who_withdrew_tracking_consent_do_not_decide_the_winner(news):
    """Two of B's four openers then withdrew their consent to tracking (the preference
    centre): their opens are no longer used, and they are left out of B's rate rather than
    counted as people who did not open.  A (3 of 10) then leads B (2 of 8); counting them, B
    (4 of 10) was sent to everyone else."""
    from tidings.audience.consent import CHANNEL_EMAIL, PURPOSE_TRACKING
    from tidings.audience.consent_records import record_consent
    from tidings.audience.models import ConsentEvent

    readers(news, 20)
    campaign = ab_campaign(news, share=100, metric="opens")
    start(campaign)
    Delivery.objects.filter(campaign=campaign).update(
        status="sent", sent_at=timezone.now(), tracked=True
    )
    _engage(campaign, "A", 3, "open")
    _engage(campaign, "B", 4, "open")
    b_openers = Delivery.objects.filter(campaign=campaign, variant__label="B").order_by("pk")[:2]
    for row in b_openers.select_related("contact"):
        record_consent(
            row.contact,
            purpose=PURPOSE_TRACKING,
            channel=CHANNEL_EMAIL,
            action=ConsentEvent.Action.WITHDRAWN,
            source="preferences",
        )
    results = {r.label: r for r in variant_results(campaign, "opens")}
    assert (results["A"].openers, results["A"].trials) == (3, 10)
    assert (results["B"].openers, results["B"].trials) == (2, 8)
    assert compare(list(results.values()), "Unique human opens").leader.label == "A"
    test = campaign.ab_test
    assert decide_due_tests(now=timezone.now() + timedelta(days=1)) == [campaign.pk]
    test.refresh_from_db()
    assert test.winner.label == "A"
