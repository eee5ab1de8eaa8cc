"""DMARC aggregate reports: take them in, read them with parsedmarc, keep the figures, and say
who sends as our domains and whether it passes.

Reports arrive three ways: at the bounce mailbox (publish ``rua=mailto:<your bounce address>``;
``bounces.processing`` hands anything that looks like a report here), from ``tidings dmarc
process --file report.xml.gz|.zip|.xml`` (or a whole report mail), or uploaded on the
*Deliverability* page.  Each is stored first (``DmarcReport``, unprocessed) in a transaction of
its own, so nothing that arrived is lost to a later error; then parsed (parsedmarc, offline: no
DNS look-ups or downloads, its bundled lists only) and its rows stored per day, sending address
and result (``DmarcRecord``).  A report that cannot be read stays unprocessed with the reason and
its bytes, for a later look; the same report sent twice is counted once.  A failure report
("ruf") is refused without keeping its bytes: those can quote people's messages and addresses.

Aggregate reports hold no personal data (see ``models.dmarc``).

``sources(days)`` sums the last days per sending address: messages, DMARC pass rate, SPF and DKIM
alignment, and whether the address is *known*: one of the addresses our sending servers have
(the senders' last domain checks) or mail that passes DMARC (a provider the domain authorised).
Anything else sending as the domain is flagged: a service not set up yet, or someone spoofing it.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from tidings.lib import mime

from ..models import DmarcRecord, DmarcReport, Sender

logger = logging.getLogger(__name__)

REPORT_TYPES = ("application/gzip", "application/x-gzip", "application/zip", "text/xml")
REPORT_SUFFIXES = (".xml.gz", ".xml", ".zip", ".gz")
MAX_BYTES = 20 * 1024 * 1024
# More messages than any receiver reports for one address and day; a larger (or negative) count
# is a broken report, not a figure to add to the page's sums.
MAX_ROW_COUNT = 10**12


class UnusableReport(ValueError):
    """A report parsedmarc read whose figures cannot be stored (a negative count, say)."""


def looks_like_dmarc_report(raw: bytes) -> bool:
    """Is this mail (from the bounce mailbox) a DMARC aggregate report rather than a bounce?
    RFC 7489 §7.2.1.1: subject "Report Domain: … Submitter: … Report-ID: …", with the report
    attached as zip, gzip or XML."""
    try:
        message = email.message_from_bytes(raw[:200_000], policy=email.policy.compat32)
    except Exception:  # not a mail at all: the bounce processing says so
        return False
    if message.get_content_type() == "multipart/report":
        return False  # a bounce (delivery-status) or a complaint (feedback-report)
    subject = str(message.get("Subject", "")).lower()
    if "report domain:" in subject and "report-id" in subject.replace(" ", ""):
        return True
    for part, _depth in mime.walk(message, attached=False):
        name = (part.get_filename() or "").lower()
        kind = part.get_content_type()
        if name.endswith(REPORT_SUFFIXES) and ("!" in name or kind in REPORT_TYPES):
            # Aggregate report files are named receiver!domain!begin!end[!id].xml.gz.
            return True
    return False


def do_record_dmarc_report(data: bytes, *, source: str) -> DmarcReport:
    """Store a report (a file, or a mail with the report attached), then read it.  Never raises
    for what is in it: the report's status and reason say what happened."""
    report = _store(data, source)
    return _process(report)


@transaction.atomic
def _store(data: bytes, source: str) -> DmarcReport:
    if len(data) > MAX_BYTES:
        return DmarcReport.objects.create(
            source=source[:40],
            reason=f"larger than {MAX_BYTES // 1024 // 1024} MB: not read and not kept",
        )
    return DmarcReport.objects.create(source=source[:40], raw=data)


def _process(report: DmarcReport) -> DmarcReport:
    data = bytes(report.raw)
    if not data:  # too large (the reason says so), or nothing at all
        return report if report.reason else _note(report, "the file is empty: nothing to read")
    import parsedmarc  # a second and more to import: only when a report comes

    try:
        parsed = parsedmarc.parse_report_file(data, offline=True, always_use_local_files=True)
    except parsedmarc.ParserError as exc:
        return _note(report, f"not a DMARC report parsedmarc can read: {_short(exc)}")
    except Exception as exc:  # a library bug must not lose the report
        logger.exception("DMARC report %s could not be parsed", report.pk)
        return _note(report, f"could not be read ({type(exc).__name__})")
    kind = parsed.get("report_type")
    if kind == "failure":
        return _note(
            report,
            "a failure report (ruf): not kept, as it can quote messages and addresses",
            drop=True,
        )
    if kind != "aggregate":
        return _note(report, f"a {kind or 'unknown'} report, not a DMARC aggregate report")
    try:
        return _store_aggregate(report, parsed["report"])
    except UnusableReport as exc:
        report.refresh_from_db()  # _store_aggregate's changes were rolled back
        return _note(report, f"not stored: {exc}")


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


@transaction.atomic
def _note(report: DmarcReport, reason: str, *, drop: bool = False) -> DmarcReport:
    report.reason = reason[:300]
    fields = ["reason"]
    if drop:
        report.raw = b""
        fields.append("raw")
    report.save(update_fields=fields)
    return report


def _utc(text: str | None) -> datetime | None:
    """parsedmarc writes times as naive local time of this process (``datetime.fromtimestamp``
    with Django's ``TIME_ZONE`` in effect), so they are read back the same way."""
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


@transaction.atomic
def _store_aggregate(report: DmarcReport, data: dict[str, Any]) -> DmarcReport:
    meta, published = data["report_metadata"], data["policy_published"]
    org, report_id = str(meta.get("org_name") or "")[:200], str(meta.get("report_id") or "")[:200]
    earlier = (
        DmarcReport.objects.filter(
            org_name=org, report_id=report_id, status=DmarcReport.Status.PROCESSED
        )
        .exclude(pk=report.pk)
        .first()
    )
    report.org_name, report.report_id = org, report_id
    report.domain = str(published.get("domain") or "")[:253]
    report.policy = str(published.get("p") or "")[:20]
    report.begin, report.end = _utc(meta.get("begin_date")), _utc(meta.get("end_date"))
    report.status = DmarcReport.Status.PROCESSED
    report.raw = b""
    if earlier is not None:
        report.reason = f"the same report as #{earlier.pk}: counted once"
        report.save()
        return report
    rows: dict[tuple, int] = defaultdict(int)
    for record in data.get("records", []):
        begin = _utc(record.get("interval_begin")) or report.begin or timezone.now()
        alignment = record.get("alignment") or {}
        policy = record.get("policy_evaluated") or {}
        key = (
            begin.date(),
            record["source"]["ip_address"],
            str((record.get("identifiers") or {}).get("header_from") or report.domain)[:253],
            bool(alignment.get("dmarc")),
            bool(alignment.get("spf")),
            bool(alignment.get("dkim")),
            str(policy.get("disposition") or "")[:20],
        )
        rows[key] += _count(record.get("count"), record["source"]["ip_address"])
    DmarcRecord.objects.bulk_create(
        DmarcRecord(
            report=report,
            day=day,
            source_ip=ip,
            header_from=header_from,
            dmarc_pass=passed,
            spf_aligned=spf,
            dkim_aligned=dkim,
            disposition=disposition,
            count=count,
        )
        for (day, ip, header_from, passed, spf, dkim, disposition), count in rows.items()
    )
    report.messages = sum(rows.values())
    report.reason = (
        f"{len(rows)} {'row' if len(rows) == 1 else 'rows'}, "
        f"{report.messages} {'message' if report.messages == 1 else 'messages'}"
    )
    report.save()
    return report


def _count(value: Any, ip: str) -> int:
    try:
        count = int(value or 0)
    except (TypeError, ValueError):
        raise UnusableReport(f"the row for {ip} has no number of messages") from None
    if not 0 <= count <= MAX_ROW_COUNT:
        raise UnusableReport(f"the row for {ip} gives {count} messages, which cannot be right")
    return count


def do_retry_dmarc_report(report: DmarcReport) -> DmarcReport:
    """Read an unprocessed report again (after an upgrade of parsedmarc, say)."""
    if report.status == DmarcReport.Status.PROCESSED:
        return report
    return _process(report)


# --- what the page shows --------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    ip: str
    messages: int
    passed: int
    spf_aligned: int
    dkim_aligned: int
    first_day: date
    last_day: date
    ours: bool  # one of our sending servers' addresses

    @property
    def pass_rate(self) -> float:
        return self.passed / self.messages if self.messages else 0.0

    @property
    def known(self) -> bool:
        """Ours, or passing DMARC (a provider the domain authorised)."""
        return self.ours or self.passed == self.messages

    @property
    def flagged(self) -> bool:
        return not self.known


def our_sending_addresses() -> set[str]:
    """The addresses our sending servers had at the senders' last domain checks."""
    found: set[str] = set()
    for health in Sender.objects.exclude(health={}).values_list("health", flat=True):
        found.update((health or {}).get("sending_ips", []))
    return found


def sources(days: int = 30, *, today: date | None = None) -> list[Source]:
    """Each sending address seen in the last ``days`` days, most messages first."""
    today = today or timezone.localdate()
    since = today - timedelta(days=days - 1)
    rows = (
        DmarcRecord.objects.filter(day__gte=since)
        .values("source_ip")
        .annotate(
            messages=Sum("count"),
            passed=Sum("count", filter=Q(dmarc_pass=True)),
            spf=Sum("count", filter=Q(spf_aligned=True)),
            dkim=Sum("count", filter=Q(dkim_aligned=True)),
        )
        .order_by("-messages", "source_ip")
    )
    days_seen: dict[str, list[date]] = defaultdict(list)
    for ip, day in (
        DmarcRecord.objects.filter(day__gte=since).values_list("source_ip", "day").distinct()
    ):
        days_seen[ip].append(day)
    ours = our_sending_addresses()
    return [
        Source(
            ip=row["source_ip"],
            messages=row["messages"] or 0,
            passed=row["passed"] or 0,
            spf_aligned=row["spf"] or 0,
            dkim_aligned=row["dkim"] or 0,
            first_day=min(days_seen[row["source_ip"]]),
            last_day=max(days_seen[row["source_ip"]]),
            ours=row["source_ip"] in ours,
        )
        for row in rows
    ]


def daily(days: int = 30, *, today: date | None = None) -> tuple[list[date], list[int], list[int]]:
    """(days, messages that passed DMARC, messages that failed) for the chart."""
    today = today or timezone.localdate()
    since = today - timedelta(days=days - 1)
    passed: dict[date, int] = defaultdict(int)
    failed: dict[date, int] = defaultdict(int)
    for day, ok, count in (
        DmarcRecord.objects.filter(day__gte=since)
        .values_list("day", "dmarc_pass")
        .annotate(n=Sum("count"))
        .order_by()
    ):
        (passed if ok else failed)[day] += count
    calendar = [since + timedelta(days=n) for n in range(days)]
    return calendar, [passed[d] for d in calendar], [failed[d] for d in calendar]
