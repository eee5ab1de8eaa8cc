"""The operator's list of bounces and complaints: who may see it, unprocessed first, and
"retry matching"."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.campaigns.bounce_helpers import delivered, sample
from tests.operators import make_operator
from tidings.campaigns.bounces.processing import do_record_inbound_mail
from tidings.campaigns.models import Delivery, InboundReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_client(client):
    client.force_login(make_operator("priya", "privacy_officer"))
    return client


@pytest.mark.parametrize(
    ("role", "status"),
    [("privacy_officer", 200), ("owner", 200), ("editor", 403), ("analyst", 403)],
)
def test_only_operators_with_the_privacy_permission_see_the_reports(client, role, status):
    client.force_login(make_operator(f"op-{role}", role))
    assert client.get(reverse("bounces:index")).status_code == status
    report = InboundReport.objects.create(source="pipe", raw=b"x")
    assert client.post(reverse("bounces:retry", args=[report.pk])).status_code in (status, 302)
    assert client.post(reverse("bounces:retry-all")).status_code in (status, 302)


def test_strangers_are_sent_to_sign_in(client):
    response = client.get(reverse("bounces:index"))
    assert response.status_code == 302 and "login" in response["Location"]
    report = InboundReport.objects.create(source="pipe", raw=b"x")
    assert client.post(reverse("bounces:retry", args=[report.pk])).status_code == 302
    assert InboundReport.objects.get(pk=report.pk).reason == ""


def test_unprocessed_reports_come_first_with_their_reason(officer_client):
    campaign, [(ada, delivery)] = delivered()
    do_record_inbound_mail(
        sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk)), source="pipe"
    )
    do_record_inbound_mail(sample("out_of_office.eml", recipient=ada.email), source="imap")
    page = officer_client.get(reverse("bounces:index")).content.decode()
    assert page.index("not a bounce or complaint") < page.index("hard bounce: address suppressed")
    assert campaign.name in page
    assert ada.email not in page  # the list never shows an address
    assert "Retry matching all 1 unprocessed" in page


def test_retry_matching_processes_a_report_whose_message_is_now_known(officer_client):
    _, [(ada, delivery)] = delivered()
    raw = sample("postfix_hard.eml", recipient=ada.email, row=("d", delivery.pk))
    pk = delivery.pk
    delivery.delete()
    report = do_record_inbound_mail(raw, source="pipe")
    delivery.pk = pk
    delivery.save(force_insert=True)
    response = officer_client.post(reverse("bounces:retry", args=[report.pk]), follow=True)
    assert "matched and processed: hard bounce: address suppressed" in response.content.decode()
    assert InboundReport.objects.get(pk=report.pk).status == "processed"


def test_retry_of_an_unknown_report_is_404(officer_client):
    assert officer_client.post(reverse("bounces:retry", args=[999])).status_code == 404
    assert officer_client.get(reverse("bounces:retry", args=[1])).status_code == 405


def test_the_list_costs_the_same_queries_for_few_or_many_reports(officer_client):
    _, people = delivered(3)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert officer_client.get(reverse("bounces:index")).status_code == 200
        return len(captured)

    for ada, delivery in people[:1]:
        do_record_inbound_mail(
            sample("gmail_hard.eml", recipient=ada.email, row=("d", delivery.pk)), source="pipe"
        )
    few = queries()
    for ada, delivery in people[1:]:
        do_record_inbound_mail(
            sample("gmail_hard.eml", recipient=ada.email, row=("d", delivery.pk)), source="pipe"
        )
    InboundReport.objects.create(source="pipe", raw=b"junk")
    assert Delivery.objects.count() == 3
    assert queries() == few
