"""Columns: which column of the file feeds which of the policy's fields, and which are ignored."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tidings.policy import get_policy

from ..consent import ip_allowed
from ..models import Contact
from .exporters import (
    CONFIRM_IP,
    CONFIRM_TIME,
    CONSENT_USES,
    GENERIC,
    MAPPABLE_USES,
    OPTIN_IP,
    OPTIN_TIME,
    STATUS,
    STATUS_USES,
    SUBSCRIBED,
    UNSUBSCRIBED,
    USE_LABELS,
    Exporter,
    recognise,
)
from .proof import MONTH_FIRST, NONE_TELLS, date_order
from .source import FileFormat, ImportFailed, open_source

PURPOSE = "newsletter"

# Pseudo-fields a column can map to besides the policy's own fields.
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
ATTRIBUTES = "attributes"  # listmonk: a JSON object of further fields
IGNORE = ""

# The stored columns, in the order rows carry them (email travels separately).
STORED_COLUMNS = tuple(f for f in Contact.COLUMN_FIELDS if f != "email")

# Header aliases, compared after compact() (case-folded, letters and digits only).
# A spreadsheet set up in Europe heads its columns in its language: German, French, Spanish,
# Dutch, Italian and Swedish names are here too (accents are dropped by compact()).
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        (
            "email",
            "emailaddress",
            "mail",
            "emailaddr",
            "mailaddress",
            "courriel",
            "subscriber",
            "emailadresse",
            "mailadresse",
            "adresseemail",
            "adressemail",
            "correo",
            "correoelectronico",
            "emailadres",
            "indirizzoemail",
            "epost",
            "epostadress",
        ),
        "email",
    ),
    **dict.fromkeys(
        (
            "name",
            "fullname",
            "contactname",
            "displayname",
            "subscribername",
            "nomcomplet",
            "vollstandigername",
            "nombre",
            "nombrecompleto",
            "naam",
            "volledigenaam",
            "nome",
            "nomecompleto",
        ),
        "name",
    ),
    **dict.fromkeys(
        ("firstname", "fname", "givenname", "forename", "prenom", "vorname", "voornaam", "fornamn"),
        FIRST_NAME,
    ),
    **dict.fromkeys(
        (
            "lastname",
            "lname",
            "surname",
            "familyname",
            "nachname",
            "familienname",
            "nom",
            "nomdefamille",
            "apellido",
            "apellidos",
            "achternaam",
            "cognome",
            "efternamn",
        ),
        LAST_NAME,
    ),
    **dict.fromkeys(
        (
            "company",
            "companyname",
            "organisation",
            "organization",
            "organisationname",
            "organizationname",
            "org",
            "employer",
            "business",
            "firma",
            "unternehmen",
            "societe",
            "entreprise",
            "empresa",
            "bedrijf",
            "azienda",
            "societa",
            "foretag",
        ),
        "company",
    ),
    **dict.fromkeys(
        (
            "phone",
            "phonenumber",
            "telephone",
            "tel",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "mobilephonenumber",
            "cellphone",
            "sms",
            "workphone",
            "telefon",
            "telefonnummer",
            "handy",
            "portable",
            "telefono",
            "movil",
            "telefoon",
            "telefoonnummer",
            "mobiel",
            "cellulare",
            "mobilnummer",
        ),
        "phone",
    ),
    **dict.fromkeys(("jobtitle", "title", "position", "role", "jobrole", "job"), "job_title"),
    **dict.fromkeys(
        ("workaddress", "address", "businessaddress", "postaladdress", "streetaddress"),
        "work_address",
    ),
    "attributes": ATTRIBUTES,
    "attribs": ATTRIBUTES,
    # Who left, in any file: a status column is read for the tools' words (unsubscribed,
    # cleaned, bounced, unconfirmed...; blank and other words are subscribed), an unsubscribed
    # column as yes/no or a date.  Without them a spreadsheet's "Unsubscribed" people would be
    # imported as subscribers.
    **dict.fromkeys(
        (
            "status",
            "subscriberstatus",
            "subscriptionstatus",
            "emailstatus",
            "emailsubscriptionstatus",
            "memberstatus",
            "subscriberstate",
            "subscriptionstate",
            "emailmarketing",  # Mailchimp's contacts export
            # MailPoet's List status and Global status, and as its export (and a sheet) heads
            # them in German, French, Spanish, Italian, Dutch: a localised export is not
            # recognised as MailPoet's, and its unsubscribed people were imported as subscribers.
            "liststatus",
            "globalstatus",
            "listenstatus",
            "globalerstatus",
            "abostatus",
            "abonnementstatus",
            "statut",
            "statutdelaliste",
            "statutglobal",
            "statutdabonnement",
            "estadodelalista",
            "estadoglobal",
            "estadodesuscripcion",
            "statodellalista",
            "statoglobale",
            "statoiscrizione",
            "lijststatus",
            "globalestatus",
            "abonnementsstatus",
        ),
        STATUS,
    ),
    **dict.fromkeys(
        (
            "unsubscribed",
            "unsubscribedat",
            "unsubscribedon",
            "unsubscribeddate",
            "dateunsubscribed",
            "unsubscribetime",
            "optedout",
            "optout",
        ),
        UNSUBSCRIBED,
    ),
    # When a person subscribed and confirmed, in any file, by headers that cannot mean anything
    # else (Campaign Monitor's "Date Subscribed", a sheet's "Subscribed on", "Opt-in date",
    # "Anmeldedatum"...): the consent events are dated there, not at the import.  Headers that
    # could be a record's creation ("Created", "Date added") are not among them: --map says so.
    **dict.fromkeys(
        (
            "datesubscribed",
            "subscribedat",
            "subscribedon",
            "subscribeddate",
            "subscriptiondate",
            "subscriptiontime",
            "dateofsubscription",
            "optindate",
            "optintime",
            "optedinat",
            "optedinon",
            "optedindate",
            "signupdate",
            "signedupat",
            "signedupon",
            "anmeldedatum",
            "angemeldetam",
            "datedinscription",
            "datedabonnement",
            "fechadesuscripcion",
            "inschrijfdatum",
            "aangemeldop",
            "anmeldezeit",
            "anmeldezeitpunkt",
            "heuredinscription",
            "horadesuscripcion",
            "datadiiscrizione",
        ),
        OPTIN_TIME,
    ),
    **dict.fromkeys(
        ("subscriptionip", "signupip", "anmeldeip", "ipdinscription", "ipdesuscripcion"),
        OPTIN_IP,
    ),
    **dict.fromkeys(
        ("confirmationip", "bestatigungsip", "ipdeconfirmation", "ipdeconfirmacion"),
        CONFIRM_IP,
    ),
    **dict.fromkeys(
        (
            "dateconfirmed",
            "confirmedat",
            "confirmedon",
            "confirmationdate",
            "confirmationtime",
            "optinconfirmedat",
            "bestatigtam",
            "bestatigungsdatum",
            "bestatigungszeit",
            "bestatigungszeitpunkt",
            "datedeconfirmation",
            "heuredeconfirmation",
            "fechadeconfirmacion",
            "horadeconfirmacion",
            "datadiconferma",
            "bevestigingsdatum",
        ),
        CONFIRM_TIME,
    ),
    # ...and a yes/no column of consent: its no is no consent (Shopify's Accepts Email
    # Marketing, a form tool's Marketing consent, a sheet's Subscribed).
    **dict.fromkeys(
        (
            "subscribed",
            "acceptsemailmarketing",
            "acceptsmarketing",
            "marketingconsent",
            "emailconsent",
            "emailoptin",
            "newsletteroptin",
            "consenttoemail",
        ),
        SUBSCRIBED,
    ),
}


def compact(header: str) -> str:
    """A header as aliases are compared: case-folded, letters and digits only, accents
    dropped (Prénom is prenom, Société societe, Teléfono telefono)."""
    folded = header.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", folded)


@dataclass
class ColumnPlan:
    """Which columns feed which field; everything else is ignored and said so."""

    header: list[str]
    email: int
    fields: dict[str, list[int]]  # stored field -> columns, first non-blank wins
    first_name: list[int]
    last_name: list[int]
    attributes: int | None
    required: tuple[str, ...]
    allowed: tuple[str, ...]
    ignored: dict[str, list[str]] = field(default_factory=dict)  # why -> column names
    exporter: Exporter = GENERIC
    consent: dict[str, int] = field(default_factory=dict)  # OPTIN_TIME... -> column
    status: list[tuple[int, str]] = field(default_factory=list)  # (column, STATUS_USES item)
    ips_kept: bool = False  # the policy lets the ledger keep consent IP addresses
    # Per column: what it feeds (a field, a pseudo-field, a proof use; "" when ignored) and,
    # when ignored, why.  For the preview.
    uses: list[tuple[str, str]] = field(default_factory=list)
    # The file writes its consent dates month first, 3/14/2024 (see read_date_order).
    month_first: bool = False
    # What its dates say of their order: proof.DAY_FIRST, MONTH_FIRST, EITHER, BOTH, NONE_TELLS.
    date_order: str = NONE_TELLS
    # The operator's choice of order (DATE_CHOICES), "" when the file's dates decided.
    date_chosen: str = ""

    def compacted(self) -> tuple[ColumnPlan, tuple[int, ...]]:
        """The same plan over only the columns it reads, and which columns those are: the
        parser then strips and looks at ~10 cells of a 25-column export, not all of them."""
        used = sorted(
            {
                self.email,
                *self.first_name,
                *self.last_name,
                *([self.attributes] if self.attributes is not None else []),
                *(i for indexes in self.fields.values() for i in indexes),
                *self.consent.values(),
                *(i for i, _ in self.status),
            }
        )
        at = {index: position for position, index in enumerate(used)}
        plan = ColumnPlan(
            header=[self.header[i] for i in used],
            email=at[self.email],
            fields={f: [at[i] for i in indexes] for f, indexes in self.fields.items()},
            first_name=[at[i] for i in self.first_name],
            last_name=[at[i] for i in self.last_name],
            attributes=None if self.attributes is None else at[self.attributes],
            required=self.required,
            allowed=self.allowed,
            ignored=self.ignored,
            exporter=self.exporter,
            consent={use: at[i] for use, i in self.consent.items()},
            status=[(at[i], use) for i, use in self.status],
            ips_kept=self.ips_kept,
            month_first=self.month_first,
            date_order=self.date_order,
            date_chosen=self.date_chosen,
        )
        return plan, tuple(used)

    @property
    def ips_dropped(self) -> bool:
        """The file has consent IP addresses that the policy does not let us keep."""
        return IP_NOT_KEPT in self.ignored


def use_label(target: str) -> str:
    """A column's use in words, for the preview."""
    if target in USE_LABELS:
        return USE_LABELS[target]
    return {FIRST_NAME: "first name", LAST_NAME: "last name", ATTRIBUTES: "attributes (JSON)"}.get(
        target, target.replace("_", " ")
    )


def not_allowed_reason() -> str:
    return f"not allowed by the policy's {PURPOSE} purpose"


IP_NOT_KEPT = (
    f"an IP address of consent: not kept, as the policy's {PURPOSE} purpose does not collect "
    "ip_address"
)


def plan_columns(
    header: Sequence[str], column_map: dict[str, str] | None = None, filename: str = ""
) -> ColumnPlan:
    """Map a header to the policy's fields, and to the proof of consent its exporter carries.
    ``filename`` (the file's name as uploaded) tells some of an exporter's files apart
    (Exporter.status_files).  Raises ImportFailed when the file is unusable."""
    policy = get_policy()
    exporter = recognise(header)
    ips_kept = ip_allowed()
    fields = policy.fields_for(PURPOSE)
    allowed, required = fields.all, fields.required
    known = set(policy.all_fields)
    by_compact = {compact(f): f for f in policy.all_fields}
    overrides: dict[str, str] = {}
    compact_header = {compact(h): h for h in header}
    for column, target in (column_map or {}).items():
        name = column if column in header else compact_header.get(compact(column))
        if name is None:
            raise ImportFailed(f"--map: the header has no column named {column!r}")
        target = target.strip()
        if target in MAPPABLE_USES:
            overrides[name] = target
            continue
        if target and target not in known | {FIRST_NAME, LAST_NAME, ATTRIBUTES}:
            raise ImportFailed(f"--map: {target!r} is not a field of the policy")
        if target and target not in (*allowed, FIRST_NAME, LAST_NAME, ATTRIBUTES):
            raise ImportFailed(f"--map: {target!r} is {not_allowed_reason()}")
        overrides[name] = target

    plan = ColumnPlan(
        header=list(header),
        email=-1,
        fields={},
        first_name=[],
        last_name=[],
        attributes=None,
        required=required,
        allowed=allowed,
        exporter=exporter,
        ips_kept=ips_kept,
    )

    def ignore(column: str, why: str) -> None:
        plan.ignored.setdefault(why, []).append(column or "(blank header)")
        plan.uses.append(("", why))

    for index, column in enumerate(header):
        if column in overrides:
            target = overrides[column]
            if target == IGNORE:
                ignore(column, "ignored by --map")
                continue
        else:
            short = compact(column)
            target = (
                exporter.columns.get(column.strip().casefold())
                or ALIASES.get(short)
                or by_compact.get(short)
                or ""
            )
            if not target:
                ignore(column, "not a field tidings knows")
                continue
        if target in CONSENT_USES:
            if target in (OPTIN_IP, CONFIRM_IP) and not ips_kept:
                ignore(column, IP_NOT_KEPT)
            elif target in plan.consent:
                ignore(column, f"a second {use_label(target)} column")
            else:
                plan.consent[target] = index
                plan.uses.append((target, ""))
            continue
        if target in STATUS_USES:
            plan.status.append((index, target))
            plan.uses.append((target, ""))
            continue
        if target in (FIRST_NAME, LAST_NAME):
            if "name" not in allowed:
                ignore(column, not_allowed_reason())
            elif target == FIRST_NAME:
                plan.first_name.append(index)
                plan.uses.append((target, ""))
            else:
                plan.last_name.append(index)
                plan.uses.append((target, ""))
        elif target == ATTRIBUTES:
            if plan.attributes is None:
                plan.attributes = index
                plan.uses.append((target, ""))
            else:
                ignore(column, "a second attributes column")
        elif target not in allowed:
            ignore(column, not_allowed_reason())
        elif target == "email":
            if plan.email < 0:
                plan.email = index
                plan.uses.append((target, ""))
            else:
                ignore(column, "a second email column")
        else:
            plan.fields.setdefault(target, []).append(index)
            plan.uses.append((target, ""))

    _refuse_duplicate_names(plan)
    name = compact(Path(filename).name)
    for start, column, use in exporter.status_files if name else ():
        if name.startswith(start) and not any(u == STATUS for _, u in plan.status):
            # Mailchimp's file of who unsubscribed (or was cleaned): every row left, whether or
            # not its time is filled in.
            for position, (index, _) in enumerate(plan.status):
                if header[index].strip().casefold() == column:
                    plan.status[position] = (index, use)
                    plan.uses[index] = (use, "")
    if plan.email < 0:
        at = next((i for i, h in enumerate(header) if _ADDRESS.match(h.strip())), -1)
        if at >= 0:
            # Sendy's exports, and many a hand-made list, have no header line: the first row
            # would be taken for column names, and "map the column" would name a person.
            raise ImportFailed(
                f"the file has no header line: its first line holds an email address (column "
                f"{at + 1}), so it is a row, not the columns' names; add a first line naming "
                "them (for example Name,Email) and import it again"
            )
        raise ImportFailed(
            "no email column: name one Email, E-mail or Email Address, "
            "or map it with --map 'Column=email'"
        )
    if not plan.status:
        _refuse_left_by_name(filename)
    if plan.last_name and not plan.first_name and plan.fields.get("name"):
        # "Name" beside "Last name" and no first name (MailerLite's name and last_name, many a
        # spreadsheet): the name column holds the first name, or "Ann" would lose her "Lee".
        for index in plan.fields.pop("name"):
            if header[index] not in overrides:
                plan.first_name.append(index)
                plan.uses[index] = (FIRST_NAME, "")
            else:
                plan.fields.setdefault("name", []).append(index)
    has_name = bool(plan.fields.get("name") or plan.first_name or plan.last_name)
    missing = [
        f
        for f in required
        if f != "email" and not (has_name if f == "name" else plan.fields.get(f))
    ]
    if missing and plan.attributes is None:
        raise ImportFailed(
            f"no column for {', '.join(missing)}, which the policy's {PURPOSE} purpose requires "
            f"(map one with --map 'Column={missing[0]}')"
        )
    return plan


# A cell that is an email address (to tell a first row of data from a header).
_ADDRESS = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
# A file's name that says everyone in it left or never confirmed, as the tools name their
# exports: Sendy names a list's <list>-unsubscribed.csv, -bounced.csv, -marked-as-spam.csv,
# -unconfirmed.csv (no status column); campaign reports write <id>-unsubscribed.csv,
# -bounces.csv, -spam.csv; Mailchimp unsubscribed_members_export_<id>.csv and
# cleaned_members_export_<id>.csv; people name theirs "Unsubscribed 2024.csv".  Matched as whole
# words (left_by_name), never inside one ("resubscribed", "unbounced").
LEFT_FILE_WORDS: dict[tuple[str, ...], str] = {
    ("unsubscribed",): "unsubscribed",
    ("unsubscribes",): "unsubscribed",
    ("unsubscribers",): "unsubscribed",
    ("unsubs",): "unsubscribed",
    ("opted", "out"): "unsubscribed",
    ("optedout",): "unsubscribed",
    ("opt", "outs"): "unsubscribed",
    ("optouts",): "unsubscribed",
    ("blocklisted",): "were blocklisted",
    ("blacklisted",): "were blocklisted",
    ("bounced",): "bounced",
    ("bounces",): "bounced",
    ("marked", "as", "spam"): "marked the mail as spam",
    ("spam",): "marked the mail as spam",
    ("complaints",): "marked the mail as spam",
    ("complained",): "marked the mail as spam",
    ("unconfirmed",): "never confirmed their subscription",
}
# "Cleaned" is as often a list tidied up (contacts_cleaned.csv) as Mailchimp's bounced
# addresses: it says the people left only as Mailchimp names its file.
MAILCHIMP_LEFT_FILES: dict[tuple[str, ...], str] = {
    ("cleaned", "members", "export"): "were cleaned (their addresses bounced)",
    ("unsubscribed", "members", "export"): "unsubscribed",
}
# A word before a left word that turns it round (not-unsubscribed.csv, contacts-without-bounces
# .csv, no-spam.csv), or after it (bounces-removed.csv): the file is of the others.
_NEGATING_BEFORE = frozenset({"not", "non", "no", "never", "without", "excluding", "minus", "sans"})
_NEGATING_AFTER = frozenset({"removed", "excluded", "deleted", "filtered", "out", "free"})
_NAME_WORDS = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def name_words(filename: str) -> list[str]:
    """A file name's words, case-folded: split at anything not a letter or digit and between a
    lower-case letter and a capital (UnsubscribedMembers), the extension dropped."""
    stem = Path(filename).stem
    return [w.casefold() for w in _NAME_WORDS.findall(_CAMEL.sub(" ", stem))]


def left_by_name(filename: str) -> str:
    """What a file's name says the people in it did ("unsubscribed", "bounced"...), or "" when
    it says nothing of the kind.  A left word counts as a whole word of the name, anywhere in
    it (newsletter-unsubscribed.csv, Bounced 2024.csv, unsubscribed_members_export_ab12.csv)
    unless a word beside it turns it round (not-unsubscribed.csv, contacts-without-bounces.csv,
    bounces-removed.csv); "cleaned" only as Mailchimp writes it (cleaned_members_export_…)."""
    words = name_words(filename)
    for phrase, said in MAILCHIMP_LEFT_FILES.items():
        if tuple(words[: len(phrase)]) == phrase:
            return said
    for at in range(len(words)):
        for phrase, said in LEFT_FILE_WORDS.items():
            end = at + len(phrase)
            if tuple(words[at:end]) != phrase:
                continue
            before = words[at - 1] if at else ""
            after = words[end] if end < len(words) else ""
            if before in _NEGATING_BEFORE or after in _NEGATING_AFTER:
                continue
            if phrase == ("spam",) and before == "as":  # "marked as spam" is matched whole
                continue
            return said
    return ""


def _refuse_left_by_name(filename: str) -> None:
    """A file without a status column whose name says everyone in it left or never confirmed
    (newsletter-unsubscribed.csv): importing its rows as subscribers would subscribe exactly the
    people who said no.  Raises ImportFailed for it; the rows of a file with a status column
    say it themselves."""
    said = left_by_name(filename)
    if said:
        raise ImportFailed(
            f"the file's name says the people in it {said}, and it has no status column "
            "to say otherwise: tidings will not subscribe them (if that is what the file "
            "holds, add a Status column saying so for every row, and they are kept off the "
            "list; if the name is wrong, rename the file)"
        )


def _refuse_duplicate_names(plan: ColumnPlan) -> None:
    """Two columns with one name, one of which would be read: which holds what only the file's
    author knows (two "Email" columns, a person's and a colleague's; "First name" twice), and
    reading the first, the first non-blank or both joined would put one column's data where the
    other's belongs without a word.  Refused; columns that are ignored may share a name."""
    seen: dict[str, int] = {}
    for index, column in enumerate(plan.header):
        name = column.strip().casefold()
        first = seen.setdefault(name, index)
        if first != index and (plan.uses[first][0] or plan.uses[index][0]):
            raise ImportFailed(
                f"the header names {column.strip()!r} twice (columns {first + 1} and "
                f"{index + 1}): rename one of them (or delete the one not to import) and "
                "import the file again"
            )


# How many rows are read to tell whether a file writes its dates month first: a file saved by a
# spreadsheet has one convention throughout, and the first thousands of rows show it.
DATE_SAMPLE_ROWS = 10_000


# The operator's word on numeric dates (Import.date_order, --dates): day or month first.
DAY_FIRST_CHOICE = "day-first"
MONTH_FIRST_CHOICE = "month-first"
DATE_CHOICES = (DAY_FIRST_CHOICE, MONTH_FIRST_CHOICE)


def read_date_order(plan: ColumnPlan, path: Path, fmt: FileFormat, chosen: str = "") -> None:
    """Set ``plan.date_order`` from the consent dates of the first rows (proof.date_order), and
    ``plan.month_first`` from it, or from ``chosen`` (DAY_FIRST_CHOICE, MONTH_FIRST_CHOICE: the
    operator's word, which the file's dates do not overrule; plan.date_chosen says so)."""
    columns = [plan.consent[use] for use in (OPTIN_TIME, CONFIRM_TIME) if use in plan.consent]
    if not columns:
        return
    source = open_source(path, fmt)
    try:
        values = (
            row.values[i].strip()
            for row in islice(source, DATE_SAMPLE_ROWS)
            for i in columns
            if i < len(row.values)
        )
        plan.date_order = date_order(values)
    finally:
        source.close()
    if chosen in DATE_CHOICES:
        plan.date_chosen = chosen
        plan.month_first = chosen == MONTH_FIRST_CHOICE
    else:
        plan.month_first = plan.date_order == MONTH_FIRST
