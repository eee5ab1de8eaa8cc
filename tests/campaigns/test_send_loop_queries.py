"""The send loop's queries per batch are pinned (issue 18.7): a batch of 100 rows costs the same
number of queries as a batch of 5, so a query per row (an N+1) shows up here as a failure.

Each step is the public function the engine's database thread calls per batch: the claim
(``queue.claim_deliveries``), the check of who may still be emailed (``engine.jobs``), and the
recording of results (``queue.record_results``).  Savepoints count: on both databases each
step runs in its own (nested) transaction.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.campaigns.delivery_helpers import make_list, sending_campaign, subscribers
from tidings.campaigns.engine import CampaignContext, OneOffFactories
from tidings.campaigns.engine.jobs import campaign_jobs, one_off_jobs
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.queue import Result, claim_deliveries, claim_outgoing, record_results

pytestmark = pytest.mark.django_db

# One claim: a savepoint, the claiming UPDATE … RETURNING, the savepoint's release.
CLAIM = 3
# Who may be emailed: the consenting contacts, their suppressed addresses, their domains, and
# (when the policy tracks) who allows tracking.
JOBS = 4
# Results: one UPDATE per group of equal outcomes (here sent, failed, retry; the sent one returns
# its rows' people), then one UPDATE of their last_received_at (the segments' engagement facts).
RECORD = 3 + 1


@pytest.fixture(params=[5, 100], ids=["5 rows", "100 rows"])
def batch(request):
    return request.param


def _claimed(batch: int):
    news = make_list()
    subscribers(news, batch)
    campaign = sending_campaign(news)
    return campaign, claim_deliveries("w1", campaign.pk, batch)


def test_a_claim_is_one_statement_whatever_its_size(batch, django_assert_num_queries):
    news = make_list()
    subscribers(news, batch)
    campaign = sending_campaign(news)
    with django_assert_num_queries(CLAIM):
        rows = claim_deliveries("w1", campaign.pk, batch)
    assert len(rows) == batch


def test_checking_who_may_be_emailed_costs_the_same_for_any_batch(batch, django_assert_num_queries):
    campaign, rows = _claimed(batch)
    context = CampaignContext(campaign)
    assert context.tracker is not None  # the example policy tracks: the fourth query runs
    with django_assert_num_queries(JOBS):
        jobs, skipped = campaign_jobs(context, rows)
    assert len(jobs) == batch and skipped == []


def test_recording_a_batch_groups_equal_outcomes(batch, django_assert_num_queries):
    _campaign, rows = _claimed(batch)
    outcomes = ["sent", "failed", "retry"]
    results = [
        Result(row, outcomes[i % 3], transport="default", error="" if i % 3 == 0 else "4.2.0")
        for i, row in enumerate(rows)
    ]
    with django_assert_num_queries(RECORD + 2), transaction.atomic():  # + the savepoint pair
        changed = record_results("w1", results)
    assert changed == batch


def test_one_off_messages_are_loaded_in_two_queries_whatever_their_number(
    batch, django_assert_num_queries
):
    news = make_list()
    for contact in subscribers(news, batch):
        send_system_email(contact, "preferences_link", {"preferences_url": "https://x/p"})
    rows = claim_outgoing("w1", batch)
    factories = OneOffFactories()
    with django_assert_num_queries(2):  # the messages, their contacts
        jobs, skipped = one_off_jobs(rows, factories, {"default"})
    assert len(jobs) == batch and skipped == []
