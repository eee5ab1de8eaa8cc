"""Enquiries and support requests as work: status moves, owners, next actions, "My work",
filters, keyset pages, bulk assign and close, and the audit of every change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail as django_mail
from django.urls import reverse
from django.utils import timezone

from tests.audience.public_helpers import reset
from tidings.crm.actions import do_create_support_request, do_receive_enquiry
from tidings.crm.models import Enquiry, OperatorNotification
from tidings.crm.notifications import send_digests, send_pending, send_reminders
from tidings.crm.queues import my_work
from tidings.crm.work import WorkError, do_add_note, do_bulk_update, do_update_work
from tidings.lib.models import AuditEntry

from .helpers import customer, operator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    reset()
    yield
    reset()


def enquiry(n: int = 0, **kwargs) -> Enquiry:
    return do_receive_enquiry(
        {"name": f"Person {n}", "email": f"p{n}@example.com"},
        channel="web form",
        message="Hello",
        **kwargs,
    )


# --- the rules --------------------------------------------------------------------------------
def test_status_moves_follow_the_table_and_closing_is_recorded():
    ada = operator("ada")
    record = enquiry()
    assert do_update_work(record, actor=ada, status="won") == ["closed_at", "status"]
    assert record.closed_at is not None
    with pytest.raises(WorkError, match='cannot become "Waiting for them"'):
        do_update_work(record, actor=ada, status="waiting")
    do_update_work(record, actor=ada, status="open")  # reopened
    record.refresh_from_db()
    assert (record.status, record.closed_at) == ("open", None)
    entries = AuditEntry.objects.filter(action="enquiry.work_updated", actor=ada)
    assert [e.details["fields"] for e in entries.order_by("pk")] == [
        ["closed_at", "status"],
        ["closed_at", "status"],
    ]


def test_work_goes_only_to_active_operators_and_the_new_owner_is_told():
    ada, bob = operator("ada"), operator("bob")
    stranger = operator("carol")
    stranger.is_staff = False
    stranger.save(update_fields=["is_staff"])
    record = enquiry()
    with pytest.raises(WorkError, match="active operator"):
        do_update_work(record, actor=ada, owner=stranger)
    do_update_work(record, actor=ada, owner=bob, next_action_on=date(2026, 5, 1))
    record.refresh_from_db()
    assert (record.owner, record.next_action_on) == (bob, date(2026, 5, 1))
    assert OperatorNotification.objects.filter(user=bob, event="assigned").count() == 1
    entry = AuditEntry.objects.get(action="enquiry.work_updated")
    assert entry.details == {"fields": ["next_action_on", "owner"]}  # names, never values


def test_work_goes_only_to_operators_whose_role_lets_them_open_it(client):
    """An analyst (reports only) cannot open an enquiry: they are not offered as its owner, an
    assignment to them is refused, and the rota skips one whose role was changed to analyst."""
    ada = operator("ada", takes_enquiries=True)
    analyst = operator("ann", role="analyst", takes_enquiries=True)
    client.force_login(ada)
    record = enquiry()
    page = client.get(reverse("crm:enquiry", args=[record.pk])).text
    assert ">ada<" in page and ">ann<" not in page
    with pytest.raises(WorkError, match="active operator"):
        do_update_work(record, actor=ada, owner=analyst)
    response = client.post(
        reverse("crm:enquiry-work", args=[record.pk]),
        {"status": "open", "owner": analyst.pk, "next_action_on": ""},
    )
    record.refresh_from_db()
    assert response.status_code in (200, 302) and record.owner_id is None
    assert [enquiry(n, notify=True).owner for n in range(1, 4)] == [ada, ada, ada]
    send_pending()
    assert analyst.email not in [to for m in django_mail.outbox for to in m.to]


def test_new_work_is_assigned_in_turn_to_the_operators_who_take_it():
    ada = operator("ada", takes_enquiries=True)
    bob = operator("bob", takes_enquiries=True)
    operator("carol")  # does not take enquiries
    owners = [enquiry(n, notify=True).owner for n in range(4)]
    assert owners == [ada, bob, ada, bob]


def test_notes_are_screened_and_kept_in_the_conversation():
    ada = operator("ada")
    record = enquiry()
    note = do_add_note(record, text="Called back. Her husband is in hospital.", actor=ada)
    assert note.text == "Called back. [removed: health]" and note.direction == "note"


# --- My work ----------------------------------------------------------------------------------
def test_my_work_counts_what_is_mine_due_overdue_and_new_with_nobody():
    ada, bob = operator("ada"), operator("bob")
    today = date(2026, 3, 10)
    with time_machine.travel("2026-03-10 09:00Z", tick=False):
        mine_today, mine_late, mine_later, bobs = (enquiry(n) for n in range(4))
        for record, when in ((mine_today, today), (mine_late, today - timedelta(days=2))):
            do_update_work(record, actor=ada, owner=ada, next_action_on=when)
        do_update_work(mine_later, actor=ada, owner=ada, next_action_on=today + timedelta(days=5))
        do_update_work(bobs, actor=bob, owner=bob)
        enquiry(9)  # new, nobody has it
        closed = enquiry(10)
        do_update_work(closed, actor=ada, owner=ada, status="lost")
        _, _, peter = customer(end=date(2026, 4, 20))
        do_create_support_request(peter, subject="Printer", check_contract=False)
        work = my_work(ada, today)
    counts = {h.key: h.count for h in work.headings}
    assert counts["Enquiry-mine"] == 3  # not the closed one
    assert counts["Enquiry-today"] == 1 and counts["Enquiry-overdue"] == 1
    assert counts["Enquiry-new"] == 1  # the one nobody has
    assert counts["SupportRequest-new"] == 1 and counts["SupportRequest-mine"] == 0
    assert [(c.reference, days) for c, days in work.renewals] == [("C-1", 41)]


def test_the_crm_opens_on_my_work(client):
    ada = operator("ada")
    client.force_login(ada)
    record = enquiry()
    do_update_work(record, actor=ada, owner=ada, next_action_on=timezone.localdate())
    page = client.get(reverse("crm:index")).text
    assert "<h1>My work</h1>" in page and "My enquiries due today (1)" in page


def test_my_work_tells_items_apart_by_subject_and_when_they_last_changed(client):
    """Every enquiry read "Enquiry #1 from Rosa Diaz — New": the operator had to open each."""
    ada = operator("ada")
    client.force_login(ada)
    with time_machine.travel("2026-03-10 09:00Z", tick=False):
        invoice = enquiry(1, subject="Invoice for March")
        private = enquiry(2, subject="Question. I was diagnosed with cancer.")
        by_form = do_receive_enquiry(
            {"name": "Person 3", "email": "p3@example.com"},
            channel="web form",
            message="Do you   offer a\nnonprofit discount?",
        )
    with time_machine.travel("2026-03-10 11:30Z", tick=False):
        do_update_work(invoice, actor=ada, status="open", owner=ada)
    with time_machine.travel("2026-03-10 14:15Z", tick=False):
        do_add_note(by_form, text="Called them back.", actor=ada)
    page = client.get(reverse("crm:index")).text
    new = page[page.index('id="Enquiry-mine"') :]
    assert "Invoice for March" in new and "Do you offer a nonprofit discount?" in new
    assert "cancer" not in page and "[removed: health]" in private.subject  # screened as kept
    assert private.subject in new

    def changed(record: Enquiry, at: str) -> bool:
        link = new.index(reverse("crm:enquiry", args=[record.pk]))
        return f'datetime="{at}' in new[link : new.index("</li>", link)]

    def at(hour: int, minute: int) -> str:
        return timezone.localtime(datetime(2026, 3, 10, hour, minute, tzinfo=UTC)).isoformat()

    assert changed(invoice, at(11, 30)) and changed(by_form, at(14, 15))
    assert changed(private, at(9, 0))


def test_my_work_search_names_enquiries_by_their_screened_subject(client):
    """The search on My work listed each enquiry as "#12": the operator opened each to see what
    it was about, while My work itself named them by their (screened) subject."""
    ada = operator("ada")
    client.force_login(ada)
    invoice = enquiry(1, subject="Invoice for March")
    private = enquiry(2, subject="Question. I was diagnosed with cancer.")
    by_form = enquiry(3)  # no subject: the start of its message
    page = client.get(reverse("crm:index"), {"q": "Person"}).text
    results = page[page.index("<h2>Enquiries</h2>") :]
    for record, name in ((invoice, "Invoice for March"), (private, private.subject)):
        assert f'{reverse("crm:enquiry", args=[record.pk])}">{name} (#{record.pk})</a>' in results
    assert f">Hello (#{by_form.pk})</a>" in results
    assert "[removed: health]" in private.subject and "cancer" not in page


def test_my_work_reads_subject_less_enquiries_in_the_same_number_of_queries_however_many(
    client, settings
):
    """A web enquiry has no subject of its own: My work names it by our first mail's subject,
    read with one more query per enquiry.  The page (and its search, and the list) now costs
    the same with two such enquiries or ten."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tidings.crm.conversations import tagged_subject
    from tidings.crm.models import ConversationMessage

    ada = operator("ada")
    client.force_login(ada)

    def add(n: int) -> None:
        record = enquiry(n)
        do_update_work(record, actor=ada, owner=ada)
        ConversationMessage.objects.create(
            enquiry=record, direction="out", subject=tagged_subject(record, f"Your enquiry {n}")
        )

    def queries(url: str, **params: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as seen:
            page = client.get(reverse(url), params).text
        return len(seen), page

    for n in range(2):
        add(n)
    before = [queries("crm:index"), queries("crm:index", q="Person"), queries("crm:enquiries")]
    for n in range(2, 9):  # fewer than My work's ten a heading (which then counts them)
        add(n)
    after = [queries("crm:index"), queries("crm:index", q="Person"), queries("crm:enquiries")]
    assert [count for count, _ in after] == [count for count, _ in before]
    for _, page in after:
        assert "Your enquiry 8<" in page or "Your enquiry 8 (#" in page  # the tag left out
        assert "[#E-" not in page


# --- lists ------------------------------------------------------------------------------------
def test_lists_filter_by_status_and_owner_and_page_without_counting(
    client, django_assert_max_num_queries
):
    ada = operator("ada")
    client.force_login(ada)
    for n in range(55):
        record = enquiry(n)
        if n % 5 == 0:
            do_update_work(record, actor=ada, owner=ada)
    url = reverse("crm:enquiries")
    with django_assert_max_num_queries(8):
        first = client.get(url, {"status": "new", "owner": ""})
    assert len(first.context["page"].items) == 50 and first.context["page"].next_after
    mine = client.get(url, {"owner": "me", "status": "open"})
    assert len(mine.context["page"].items) == 11
    nobody = client.get(url, {"owner": "none"})
    assert all(e.owner_id is None for e in nobody.context["page"].items)
    assert "SELECT COUNT" not in str(first.context)


def test_bulk_assign_and_close_change_each_record_with_its_own_audit_entry(client):
    ada, bob = operator("ada"), operator("bob")
    client.force_login(ada)
    records = [enquiry(n) for n in range(3)]
    ids = [r.pk for r in records]
    client.post(reverse("crm:enquiries-bulk"), {"ids": ids, "action": "assign", "owner": bob.pk})
    assert set(Enquiry.objects.values_list("owner", flat=True)) == {bob.pk}
    client.post(reverse("crm:enquiries-bulk"), {"ids": ids[:2], "action": "close"})
    assert list(Enquiry.objects.order_by("pk").values_list("status", flat=True)) == [
        "lost",
        "lost",
        "new",
    ]
    assert AuditEntry.objects.filter(action="enquiry.work_updated", actor=ada).count() == 5


def test_bulk_reports_records_it_could_not_change_and_changes_the_rest():
    ada = operator("ada")
    records = [enquiry(n) for n in range(2)]
    do_update_work(records[0], actor=ada, status="won")
    records[0].refresh_from_db()
    changed, problems = do_bulk_update(records, actor=ada, close=True)
    assert changed == 1 and problems == []  # the closed one is left as it is


# --- notifications ----------------------------------------------------------------------------
def test_new_work_emails_those_who_asked_each_event_and_queues_the_digest(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    ada = operator("ada", notify="each")
    bob = operator("bob", notify="digest")
    operator("carol", notify="none")
    with time_machine.travel("2026-03-10 07:00Z", tick=False):
        record = enquiry(notify=True)
        assert send_pending() == 1
        assert send_digests() == 0  # before the digest hour
    (sent,) = django_mail.outbox
    assert sent.to == [ada.email] and f"enquiry #{record.pk} from Person 0" in sent.subject
    assert sent.extra_headers["Auto-Submitted"] == "auto-generated"
    with time_machine.travel("2026-03-10 09:00Z", tick=False):
        assert send_digests() == 1
        assert send_digests() == 0  # one a day
    digest = django_mail.outbox[-1]
    assert digest.to == [bob.email] and "New enquiry" in digest.body


def test_reminders_go_to_the_owner_once_per_due_date():
    ada = operator("ada")
    record = enquiry()
    do_update_work(record, actor=ada, owner=ada, next_action_on=date(2026, 3, 10))
    with time_machine.travel("2026-03-10 09:00Z", tick=False):
        assert send_reminders() == 1
        assert send_reminders() == 0
    with time_machine.travel("2026-03-11 09:00Z", tick=False):
        assert send_reminders() == 1  # now overdue: one more, once
        assert send_reminders() == 0
    events = list(OperatorNotification.objects.filter(user=ada).values_list("event", flat=True))
    assert events == ["due", "overdue"]


def test_a_booked_demo_goes_to_its_host_and_tells_the_operators(settings):
    from tests.booking.helpers import hosts

    (grace,) = hosts("grace")
    ada = operator("ada", notify="each")
    from tidings.booking.actions import do_book_demo, free_slots

    slot = free_slots(now=timezone.now())[0]
    booking = do_book_demo(
        {"name": "Visitor", "email": "v@example.com"},
        start=slot.start,
        visitor_timezone="Europe/London",
    )
    enquiry_ = booking.enquiry
    enquiry_.refresh_from_db()
    assert enquiry_.owner == grace.user
    assert enquiry_.next_action_on == timezone.localdate(booking.start)
    assert OperatorNotification.objects.filter(user=ada, event="demo_booked").exists()


def _work_page_fields(client, record) -> dict[str, str]:
    """What the record page's work form posts back untouched, with its hidden copies."""
    form = client.get(reverse("crm:enquiry", args=[record.pk])).context["work_form"]
    fields = {name: form[name].value() for name in form.fields}
    fields = {name: "" if value is None else str(value) for name, value in fields.items()}
    return fields | {f"initial-{name}": value for name, value in fields.items()}


def test_two_operators_changing_one_enquiry_keep_both_changes(client):
    # Ada takes the enquiry; Bob, whose page still shows it unassigned, sets a next action.
    # His save used to post "owner: nobody" with it and quietly take the enquiry from Ada.
    ada, bob = operator("ada"), operator("bob")
    record = enquiry()
    client.force_login(bob)
    bobs_page = _work_page_fields(client, record)
    client.force_login(ada)
    ada_page = _work_page_fields(client, record)
    client.post(reverse("crm:enquiry-work", args=[record.pk]), ada_page | {"owner": ada.pk})
    client.force_login(bob)
    client.post(
        reverse("crm:enquiry-work", args=[record.pk]),
        bobs_page | {"next_action_on": "2026-05-01"},
    )
    record.refresh_from_db()
    assert (record.owner, record.next_action_on) == (ada, date(2026, 5, 1))


def test_a_work_change_to_a_field_someone_changed_meanwhile_is_refused_and_says_so(client):
    ada, bob = operator("ada"), operator("bob")
    record = enquiry()
    client.force_login(ada)
    stale = _work_page_fields(client, record)
    client.post(reverse("crm:enquiry-work", args=[record.pk]), stale | {"owner": ada.pk})
    response = client.post(
        reverse("crm:enquiry-work", args=[record.pk]), stale | {"owner": bob.pk}, follow=True
    )
    assert "Someone else changed the owner since you opened this page" in response.text
    record.refresh_from_db()
    assert record.owner == ada
