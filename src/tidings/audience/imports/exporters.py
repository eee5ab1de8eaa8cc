"""The exports of other newsletter tools: how to recognise each, and which of its columns carry
the proof of consent (when and from where a person opted in or confirmed) or say that a person
left (unsubscribed, cleaned, bounced).

Formats, as the tools write them:

- Mailchimp (one CSV per status in the audience export's ZIP): "Email Address", "First Name",
  "Last Name", merge fields, MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP,
  LATITUDE, LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED, LEID, EUID, NOTES,
  TAGS; the unsubscribed file adds UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID,
  UNSUB_REASON, UNSUB_REASON_OTHER, the cleaned file CLEAN_TIME, CLEAN_CAMPAIGN_TITLE,
  CLEAN_CAMPAIGN_ID.  Times as "2024-03-14 09:12:31", in UTC.
  The unsubscribed and cleaned files, as Mailchimp names them (unsubscribed_members_export_…csv,
  cleaned_members_export_…csv), say everyone in them left, whether or not the row's UNSUB_TIME
  or CLEAN_TIME is filled in (someone the account unsubscribed, or imported into Mailchimp as
  unsubscribed, may have none); in a file named otherwise (the three merged into one sheet),
  the time says it row by row.
- listmonk (Subscribers > Export, and GET /api/subscribers/export): uuid, email, name,
  attributes (JSON), status (enabled, disabled, blocklisted), created_at, updated_at; times as
  Go prints them, "2024-03-14 09:12:31.436217 +0100 CET".  Nothing per list: its export query
  reads the subscribers table alone (the subscription status is a filter of the export,
  list_id and subscription_status, never a column), so who unsubscribed from a list is not in
  the file unless the export was filtered (README).
- Brevo (Contacts > Export, ";"-separated): CONTACT ID, EMAIL, FIRSTNAME, LASTNAME, SMS, ...,
  DOUBLE_OPT-IN, OPT_IN, ADDED_TIME, MODIFIED_TIME, and EMAIL_BLACKLISTED when the export asks
  for the subscription status; dates as "14-03-2024" or "14-03-2024 09:12", in the account's
  time zone.
- HubSpot (Contacts > Export): "Record ID", "First Name", "Last Name", "Email", "Phone Number",
  "Contact owner", "Last Activity Date", "Lead Status", "Marketing contact status", "Create
  Date", and the properties chosen for the export, such as "Unsubscribed from all email",
  "Email hard bounce reason" and "Marketing email confirmation"; dates as "2024-03-14 09:12", in
  the portal's time zone.  "Marketing contact status" is Marketing contact or Non-marketing
  contact: one the account keeps out of its marketing email, with no consent to import.
- Kit, formerly ConvertKit (Subscribers > Export), with the names of its API: first_name,
  email_address, state (active, cancelled, bounced, complained, inactive: never confirmed),
  created_at ("2025-03-03T10:00:00Z"), and the custom fields.
- MailerLite (Subscribers > Export), with the names of its API: email, name, last_name, the
  fields (company, city, z_i_p...), status (active, unsubscribed, unconfirmed, bounced, junk),
  subscribed_at and ip_address (the sign-up), opted_in_at and optin_ip (the confirmation),
  unsubscribed_at; times as "2021-08-31 14:22:08", in the account's time zone.
- Substack (Settings > Export, email_list.<publication>.csv): email, active_subscription (a
  paid plan), expiry, plan, email_disabled (the reader turned the emails off), created_at,
  first_payment_at; ISO times in UTC ("2024-01-15T10:00:00.000Z").
- MailPoet (Subscribers > Export, CSV): "Email", "First name", "Last name", "Subscription IP",
  "Subscription time", "Confirmation time", "Confirmation IP", "List status", "Global status",
  the custom fields and "List" (a person on two of the exported lists is on two rows); statuses
  subscribed, unconfirmed, unsubscribed, bounced and inactive (subscribed, but MailPoet stopped
  sending as they opened nothing for months: their consent stands); times as
  "2024-03-14 09:12:31", in UTC (WordPress runs PHP in UTC).  Every cell is quoted, and a quote
  inside one is written \" rather than doubled (source.CsvSource reads it so).
- Any other file (Campaign Monitor, a spreadsheet): a column headed Status (or Subscriber
  status, Subscription status...) is read for the words below, and one headed Unsubscribed
  (or Unsubscribed at, Opted out...) as yes/no or a date, so nobody a file says left or never
  confirmed is subscribed (columns.ALIASES).  A yes/no column's value that is neither
  (TRUE_WORDS, FALSE_WORDS, a date, a status word) makes the row bad (proof.left_reason).

Brevo and HubSpot carry no opt-in time of their own: the record's creation (ADDED_TIME,
Create Date) is the earliest moment the export proves, and the consent event is dated there.
Times without a zone are read in UTC for the exporters that say so (naive_utc: Mailchimp, Kit,
MailPoet, Substack), in the installation's TIME_ZONE for the others (the account's own zone is
the likeliest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# What a column can be used for besides the policy's fields (names for --map and the preview).
OPTIN_TIME = "optin_time"
OPTIN_IP = "optin_ip"
CONFIRM_TIME = "confirm_time"
CONFIRM_IP = "confirm_ip"
STATUS = "status"  # words: subscribed, unsubscribed, cleaned, bounced, blocklisted...
UNSUBSCRIBED = "unsubscribed"  # yes/true/1 or a date: the person unsubscribed
SUBSCRIBED = "subscribed"  # yes/no (or a date): no/false/0 says the person never opted in
# Only from an exporter's own columns:
CLEANED = "cleaned"  # a date: the address was cleaned (hard bounces)
# Mailchimp's UNSUB_TIME and CLEAN_TIME in its unsubscribed and cleaned files (by their names,
# Exporter.status_files): everyone in the file left, the time filled in or not.
UNSUBSCRIBED_FILE = "unsubscribed_file"
CLEANED_FILE = "cleaned_file"
BOUNCED = "bounced"  # any text (a bounce reason): the address bounced
CONFIRMATION = "confirmation"  # HubSpot: "double_opt_in_pending" means no consent yet

CONSENT_USES = (OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP)
STATUS_USES = (
    STATUS,
    UNSUBSCRIBED,
    SUBSCRIBED,
    CLEANED,
    BOUNCED,
    CONFIRMATION,
    UNSUBSCRIBED_FILE,
    CLEANED_FILE,
)
MAPPABLE_USES = (OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, STATUS, UNSUBSCRIBED, SUBSCRIBED)

USE_LABELS = {
    OPTIN_TIME: "opt-in time (consent proof)",
    OPTIN_IP: "opt-in IP address (consent proof)",
    CONFIRM_TIME: "confirmation time (consent proof)",
    CONFIRM_IP: "confirmation IP address (consent proof)",
    STATUS: "subscription status (who left the list)",
    UNSUBSCRIBED: "unsubscribed yes/no (who left the list)",
    SUBSCRIBED: "subscribed yes/no (no: never opted in)",
    CLEANED: "cleaned: the address bounced (who left the list)",
    BOUNCED: "bounce reason (who left the list)",
    CONFIRMATION: "confirmation status (pending: no consent yet)",
    UNSUBSCRIBED_FILE: "unsubscribe time: a file of who unsubscribed (everyone in it left)",
    CLEANED_FILE: "clean time: a file of cleaned addresses (everyone in it bounced)",
}

# The status words of the tools, and what each means here.  Blank and unknown words mean
# subscribed (an export of subscribers); every other outcome keeps the person off the list.
LEFT_WORDS = {
    "unsubscribed": "unsubscribed",
    "unsubscribe": "unsubscribed",
    "optedout": "unsubscribed",
    "optout": "unsubscribed",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
    "blocked": "unsubscribed",
    "cleaned": "cleaned",
    "bounced": "bounced",
    "hardbounce": "bounced",
    "hardbounced": "bounced",
    "complained": "complained",
    "spam": "complained",
    "spamreport": "complained",
    "disabled": "disabled",
    "deleted": "deleted",  # Campaign Monitor: removed from the list by the account
    "cancelled": "unsubscribed",  # Kit
    "canceled": "unsubscribed",
    "junk": "complained",  # MailerLite: marked as spam
    "spamcomplaint": "complained",
    # The same in the languages a spreadsheet (or a localised export) writes them in; compared
    # as left_reason compacts them (accents kept).
    "abgemeldet": "unsubscribed",
    "ausgetragen": "unsubscribed",
    "désabonné": "unsubscribed",
    "désabonnée": "unsubscribed",
    "désinscrit": "unsubscribed",
    "désinscrite": "unsubscribed",
    "desuscrito": "unsubscribed",
    "desuscrita": "unsubscribed",
    "dadodebaja": "unsubscribed",
    "dadadebaja": "unsubscribed",
    "disiscritto": "unsubscribed",
    "disiscritta": "unsubscribed",
    "uitgeschreven": "unsubscribed",
    "afgemeld": "unsubscribed",
    "avregistrerad": "unsubscribed",
}
# Status words that say the person never confirmed a double opt-in: no consent to import, so
# the row is bad (never suppressed: they may sign up again and confirm).  Kit's "inactive" is
# its word for unconfirmed.
PENDING_WORDS = frozenset(
    {
        "unconfirmed",
        "pending",
        "inactive",
        "notconfirmed",
        "unbestätigt",
        "nonconfirmé",
        "nonconfirmée",
        "noconfirmado",
        "noconfirmada",
        "nonconfermato",
        "nonconfermata",
        "onbevestigd",
    }
)
# Status words that say the person never opted in at all (Mailchimp's "Non-Subscribed": a
# shop's customers, contacts added for transactional mail): a bad row too.
# HubSpot's "Non-marketing contact" (Marketing contact status) is a contact the account keeps
# out of its marketing email, a customer or a bought lead: nothing says they opted in.
NEVER_WORDS = frozenset(
    {"nonsubscribed", "notsubscribed", "neversubscribed", "notoptedin", "nonmarketingcontact"}
)
TRUE_WORDS = frozenset({"yes", "true", "1", "y", "x", "oui", "ja"})
FALSE_WORDS = frozenset({"", "no", "false", "0", "n", "non", "nein"})


@dataclass(frozen=True)
class Exporter:
    key: str
    label: str
    # Header names (compared case-insensitively) of which ``need`` must be present.
    marks: frozenset[str]
    need: int
    # Header name (case-insensitive) -> what the column is used for.
    columns: dict[str, str] = field(default_factory=dict)
    naive_utc: bool = False  # times without a zone are UTC (else the installation's zone)
    # Status words (compacted as proof.left_reason compares them) that mean subscribed in this
    # tool, whatever they mean elsewhere: MailPoet's "inactive" is a subscriber it stopped
    # mailing, Kit's a person who never confirmed.
    subscribed_words: frozenset[str] = frozenset()
    # Whether a quote inside a quoted cell is written \" (MailPoet) rather than "" (RFC 4180).
    backslash_quotes: bool = False
    # (file name's start, compacted as columns.compact does; column; use): a file so named is one
    # of people who all left, and that column of it says so of every row (UNSUBSCRIBED_FILE...).
    status_files: tuple[tuple[str, str, str], ...] = ()

    def matches(self, header: Sequence[str]) -> bool:
        names = {h.strip().casefold() for h in header}
        return len(names & self.marks) >= self.need


def _names(*names: str) -> frozenset[str]:
    return frozenset(n.casefold() for n in names)


EXPORTERS: tuple[Exporter, ...] = (
    Exporter(
        "mailchimp",
        "Mailchimp",
        _names(
            "MEMBER_RATING",
            "OPTIN_TIME",
            "OPTIN_IP",
            "CONFIRM_TIME",
            "CONFIRM_IP",
            "LEID",
            "EUID",
            "GMTOFF",
            "DSTOFF",
            "LAST_CHANGED",
            "UNSUB_TIME",
            "CLEAN_TIME",
        ),
        3,
        {
            "optin_time": OPTIN_TIME,
            "optin_ip": OPTIN_IP,
            "confirm_time": CONFIRM_TIME,
            "confirm_ip": CONFIRM_IP,
            "unsub_time": UNSUBSCRIBED,
            "clean_time": CLEANED,
        },
        naive_utc=True,
        status_files=(
            ("unsubscribed", "unsub_time", UNSUBSCRIBED_FILE),
            ("cleaned", "clean_time", CLEANED_FILE),
        ),
    ),
    Exporter(
        "listmonk",
        "listmonk",
        _names("uuid", "email", "name", "attributes", "status", "created_at", "updated_at"),
        5,
        {"created_at": OPTIN_TIME, "status": STATUS},
    ),
    Exporter(
        "brevo",
        "Brevo",
        _names(
            "CONTACT ID",
            "ADDED_TIME",
            "MODIFIED_TIME",
            "DOUBLE_OPT-IN",
            "OPT_IN",
            "EMAIL_BLACKLISTED",
            "SMS_BLACKLISTED",
            "EXT_ID",
            "LANDLINE_NUMBER",
        ),
        2,
        {"added_time": OPTIN_TIME, "email_blacklisted": UNSUBSCRIBED},
    ),
    Exporter(
        "hubspot",
        "HubSpot",
        _names(
            "Record ID",
            "Create Date",
            "Contact owner",
            "Lead Status",
            "Marketing contact status",
            "Last Activity Date",
            "Unsubscribed from all email",
            "Email hard bounce reason",
        ),
        2,
        {
            "create date": OPTIN_TIME,
            "marketing contact status": STATUS,
            "unsubscribed from all email": UNSUBSCRIBED,
            "email hard bounce reason": BOUNCED,
            "marketing email confirmation": CONFIRMATION,
            "marketing email confirmation status": CONFIRMATION,
        },
    ),
    Exporter(
        "kit",
        "Kit",
        _names("email_address", "state"),
        2,
        {"state": STATUS, "created_at": OPTIN_TIME},
        naive_utc=True,
    ),
    Exporter(
        "mailerlite",
        "MailerLite",
        _names("subscribed_at", "opted_in_at", "optin_ip", "unsubscribed_at", "z_i_p"),
        2,
        {
            "subscribed_at": OPTIN_TIME,
            "ip_address": OPTIN_IP,
            "opted_in_at": CONFIRM_TIME,
            "optin_ip": CONFIRM_IP,
            "unsubscribed_at": UNSUBSCRIBED,
            "status": STATUS,
        },
    ),
    Exporter(
        "mailpoet",
        "MailPoet",
        _names(
            "Subscription IP",
            "Subscription time",
            "Confirmation time",
            "Confirmation IP",
            "List status",
            "Global status",
        ),
        2,
        {
            "subscription time": OPTIN_TIME,
            "subscription ip": OPTIN_IP,
            "confirmation time": CONFIRM_TIME,
            "confirmation ip": CONFIRM_IP,
            "list status": STATUS,
            "global status": STATUS,
        },
        naive_utc=True,
        subscribed_words=frozenset({"inactive"}),
        backslash_quotes=True,
    ),
    Exporter(
        "substack",
        "Substack",
        _names("active_subscription", "expiry", "email_disabled", "first_payment_at"),
        2,
        {"created_at": OPTIN_TIME, "email_disabled": UNSUBSCRIBED},
        naive_utc=True,
    ),
)
GENERIC = Exporter("csv", "CSV file", frozenset(), 1)


def recognise(header: Sequence[str]) -> Exporter:
    """The tool whose export this header is, or GENERIC."""
    return next((e for e in EXPORTERS if e.matches(header)), GENERIC)


def by_key(key: str) -> Exporter:
    return next((e for e in EXPORTERS if e.key == key), GENERIC)
