"""Writers: the SQL that turns screened rows into contacts, subscriptions and consent events.

SQL here is built from model metadata (quote_name'd table and column names) and placeholders;
every value travels as a parameter or as COPY data (escaped by psycopg).
"""

# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ..models import ConsentEvent, Contact, Import, MailingList, Subscription, Suppression
from .columns import PURPOSE, STORED_COLUMNS
from .rows import COUNTERS, GoodRow, Tally

# The ConsentEvent fields an import writes, in the order both writers use them: the contact,
# those the same for every event of an import, then the moment and IP address of each.
EVENT_COLUMNS = (
    "contact",
    "purpose",
    "channel",
    "mailing_list",
    "topic",
    "action",
    "source",
    "source_ref",
    "wording",
    "at",
    "ip_address",
)
EVENT_CONSTANTS = EVENT_COLUMNS[1:-2]

# The suppression list's reason for each way of leaving an earlier tool.
LEFT_REASONS = {
    "unsubscribed": Suppression.Reason.UNSUBSCRIBED,
    "cleaned": Suppression.Reason.HARD_BOUNCE,
    "bounced": Suppression.Reason.HARD_BOUNCE,
    "complained": Suppression.Reason.COMPLAINT,
    "disabled": Suppression.Reason.MANUAL,
    "deleted": Suppression.Reason.MANUAL,
}


def events_of(
    contact_ids: Sequence[int], rows_by_id: dict[int, GoodRow] | None, now: Any
) -> list[tuple[int, Any, str | None]]:
    """(contact, moment, IP address) of each consent event: one a contact, or two for a row that
    proves both an opt-in and a confirmation (see rows.Moments)."""
    events: list[tuple[int, Any, str | None]] = []
    for pk in contact_ids:
        row = rows_by_id.get(pk) if rows_by_id else None
        proof = row.consent if row is not None else None
        if proof is None:
            events.append((pk, now, None))
            continue
        first, first_ip, second, second_ip = proof
        events.append((pk, first, first_ip))
        if second is not None:
            events.append((pk, second, second_ip))
    return events


def power_of_two_chunks(
    rows: Sequence[Any], width: int, max_params: int
) -> Iterator[Sequence[Any]]:
    """Slices of ``rows`` of at most ``max_params`` parameters (``width`` a row), sized in powers
    of two.

    sqlite3 caches compiled statements by their text, and a 5,000-row VALUES statement compiles
    to megabytes: with one text per row count, the cache grew the process by 120 MB.  Powers of
    two keep it to a dozen shapes per statement.
    """
    size = 1 << (max(1, max_params // max(width, 1)).bit_length() - 1)
    start = 0
    while start < len(rows):
        while size > len(rows) - start:
            size >>= 1
        yield rows[start : start + size]
        start += size


@dataclass(slots=True)
class Existing:
    id: int
    key: str  # email_key
    values: tuple[str, ...]  # STORED_COLUMNS
    attributes: dict[str, Any]
    status: str | None  # of the subscription to the import's list


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model: Any) -> str:
    return _q(model._meta.db_table)


def _column(model: Any, name: str) -> str:
    return _q(model._meta.get_field(name).column)


class Writer:
    """Batched SQL for any backend (SQLite, PostgreSQL): multi-row INSERT ... ON CONFLICT DO
    NOTHING RETURNING, chunked to the backend's parameter limit.  Hand-written rather than
    bulk_create because the ORM's per-object work costs more than the whole insert (measured in
    bench/import_contacts.py), and bulk_create cannot return the ids of rows it inserted while
    ignoring conflicts.  Every row carries its ``email_key`` (GoodRow.key, computed by the
    parser), the column the contacts are unique on."""

    # Whether a batch after one with any taken address is looked up before it is inserted
    # (Lane.write); else only after one with most of them taken.
    lookup_when_any_taken = False

    def __init__(
        self, imp: Import, mailing_list: MailingList, wording_id: int, *, proof: bool = False
    ):
        self.imp = imp
        self.list = mailing_list
        self.wording_id = wording_id
        self.proof = proof  # rows may carry consent times (GoodRow.consent)
        # Statements of at most 8,000 parameters: sqlite3 keeps each compiled statement shape
        # (see power_of_two_chunks); at 30,000 the cached ones cost ~10 MB more RSS, no speed.
        self.max_params = min(connection.features.max_query_params or 30000, 8000)
        self.empty_attributes = self._json({})

    def begin_batch(self, *, immediate: bool = False) -> None:
        """Per-transaction settings (see PostgresWriter); none here."""

    # adapters
    def _json(self, value: dict[str, Any]) -> Any:
        return Contact._meta.get_field("attributes").get_db_prep_save(value, connection)

    def _now(self) -> Any:
        return connection.ops.adapt_datetimefield_value(timezone.now())

    def _chunks(self, rows: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
        return power_of_two_chunks(rows, width, self.max_params)

    def _values_sql(self, count: int, width: int) -> str:
        one = "(" + ", ".join(["%s"] * width) + ")"
        return ", ".join([one] * count)

    # reads
    def suppressed_hmacs(self, hmacs: Sequence[str]) -> set[str]:
        found: set[str] = set()
        sql = "SELECT {c} FROM {t} WHERE {c} IN ({p})"
        with connection.cursor() as cursor:
            for chunk in self._chunks(hmacs, 1):
                cursor.execute(
                    sql.format(
                        c=_column(Suppression, "email_hmac"),
                        t=_table(Suppression),
                        p=", ".join(["%s"] * len(chunk)),
                    ),
                    list(chunk),
                )
                found.update(h for (h,) in cursor.fetchall())
        return found

    def existing(self, keys: Sequence[str]) -> list[Existing]:
        """Contacts whose email_key is one of these (an index look-up on the unique key)."""
        c, s = _table(Contact), _table(Subscription)
        cols = ", ".join(f"c.{_column(Contact, f)}" for f in STORED_COLUMNS)
        sql = (
            f"SELECT c.{_column(Contact, 'id')}, c.{_column(Contact, 'email_key')}, {cols}, "
            f"c.{_column(Contact, 'attributes')}, s.{_column(Subscription, 'status')} "
            f"FROM {c} c LEFT JOIN {s} s ON s.{_column(Subscription, 'contact')} = "
            f"c.{_column(Contact, 'id')} AND s.{_column(Subscription, 'mailing_list')} = %s "
            f"WHERE c.{_column(Contact, 'email_key')} IN ({{p}})"
        )
        out: list[Existing] = []
        with connection.cursor() as cursor:
            for chunk in self._chunks(keys, 1):
                cursor.execute(sql.format(p=", ".join(["%s"] * len(chunk))), [self.list.pk, *chunk])
                out.extend(self._existing(row) for row in cursor.fetchall())
        return out

    @staticmethod
    def _existing(row: Sequence[Any]) -> Existing:
        n = len(STORED_COLUMNS)
        attributes = row[2 + n]
        if isinstance(attributes, str):
            attributes = json.loads(attributes)
        return Existing(row[0], row[1], tuple(row[2 : 2 + n]), attributes or {}, row[3 + n])

    # writes
    def insert_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """Insert these contacts unless their address exists; returns {email: id} of new ones."""
        now = self._now()
        names = ["email", "email_key", *STORED_COLUMNS, "attributes", "created_at", "updated_at"]
        cols = ", ".join(_column(Contact, n) for n in names)
        empty = self.empty_attributes
        params_rows = [
            (
                r.email,
                r.key,
                *r.values,
                empty if r.attributes is None else self._json(r.attributes),
                now,
                now,
            )
            for r in rows
        ]
        created: dict[str, int] = {}
        with connection.cursor() as cursor:
            for chunk in self._chunks(params_rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(Contact)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))} ON CONFLICT DO NOTHING "
                    f"RETURNING {_column(Contact, 'id')}, {_column(Contact, 'email')}",
                    [p for row in chunk for p in row],
                )
                created.update((email, pk) for pk, email in cursor.fetchall())
        return created

    def create_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """Insert the contacts whose address is new, subscribe them and record their consent.

        Returns {email: id} of the contacts created; the others exist already.
        """
        created = self.insert_contacts(rows)
        if created:
            subscribed = self.subscribe(list(created.values()))
            by_id = None
            if self.proof:
                by_id = {created[r.email]: r for r in rows if r.email in created}
            self.consent_events(subscribed, by_id)
        return created

    def suppress(self, rows: Sequence[GoodRow]) -> None:
        """Put these addresses on the suppression list (as HMACs), each with the reason its row
        gives; addresses already there keep their entry."""
        now = self._now()
        names = ("email_hmac", "reason", "created_at")
        cols = ", ".join(_column(Suppression, n) for n in names)
        values = [
            (r.digest.hex(), LEFT_REASONS.get(r.left, Suppression.Reason.UNSUBSCRIBED).value, now)
            for r in rows
        ]
        with connection.cursor() as cursor:
            for chunk in self._chunks(values, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(Suppression)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))} ON CONFLICT DO NOTHING",
                    [p for row in chunk for p in row],
                )

    def fill_contacts(self, fills: Sequence[tuple[int, dict[str, str], dict[str, Any] | None]]):
        """Fill blank fields of existing contacts (never overwriting: checked again in SQL)."""
        now = self._now()
        with connection.cursor() as cursor:
            for pk, values, attributes in fills:
                sets = [
                    f"{_q(c)} = CASE WHEN {_q(c)} = '' THEN %s ELSE {_q(c)} END"
                    for c in (Contact.column_name(n) for n in values)
                ]
                params: list[Any] = list(values.values())
                if attributes is not None:
                    sets.append(f"{_column(Contact, 'attributes')} = %s")
                    params.append(self._json(attributes))
                sets.append(f"{_column(Contact, 'updated_at')} = %s")
                cursor.execute(
                    f"UPDATE {_table(Contact)} SET {', '.join(sets)} "
                    f"WHERE {_column(Contact, 'id')} = %s",
                    [*params, now, pk],
                )

    def subscribe(self, contact_ids: Sequence[int]) -> list[int]:
        """Confirmed subscriptions for these contacts; returns the ids actually subscribed."""
        now = self._now()
        names = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        cols = ", ".join(_column(Subscription, n) for n in names)
        confirmed = Subscription.Status.CONFIRMED.value
        rows = [(pk, self.list.pk, confirmed, now, now, now) for pk in contact_ids]
        done: list[int] = []
        with connection.cursor() as cursor:
            for chunk in self._chunks(rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(Subscription)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))} ON CONFLICT DO NOTHING "
                    f"RETURNING {_column(Subscription, 'contact')}",
                    [p for row in chunk for p in row],
                )
                done.extend(pk for (pk,) in cursor.fetchall())
        return done

    def confirm(self, contact_ids: Sequence[int]) -> list[int]:
        """Confirm these contacts' pending subscriptions to the list; returns those confirmed."""
        now = self._now()
        done: list[int] = []
        contact = _column(Subscription, "contact")
        with connection.cursor() as cursor:
            for chunk in self._chunks(contact_ids, 1):
                cursor.execute(
                    f"UPDATE {_table(Subscription)} SET {_column(Subscription, 'status')} = %s, "
                    f"{_column(Subscription, 'confirmed_at')} = %s, "
                    f"{_column(Subscription, 'unsubscribed_at')} = NULL, "
                    f"{_column(Subscription, 'updated_at')} = %s "
                    f"WHERE {_column(Subscription, 'mailing_list')} = %s "
                    f"AND {_column(Subscription, 'status')} = %s "
                    f"AND {contact} IN ({', '.join(['%s'] * len(chunk))}) RETURNING {contact}",
                    [
                        Subscription.Status.CONFIRMED.value,
                        now,
                        now,
                        self.list.pk,
                        Subscription.Status.PENDING.value,
                        *chunk,
                    ],
                )
                done.extend(pk for (pk,) in cursor.fetchall())
        return done

    def _event_constants(self) -> tuple[Any, ...]:
        return (
            PURPOSE,
            "email",
            self.list.pk,
            self.list.topic,
            ConsentEvent.Action.GRANTED.value,
            ConsentEvent.Source.IMPORT.value,
            f"import:{self.imp.pk}",
            self.wording_id,
        )

    def consent_events(
        self, contact_ids: Sequence[int], rows_by_id: dict[int, GoodRow] | None = None
    ) -> None:
        """A granted event for each of these contacts, at the moments their rows prove (else
        now), for the import's list, with the import's provenance as its wording."""
        now = timezone.now()
        adapt = connection.ops.adapt_datetimefield_value
        names = EVENT_COLUMNS
        cols = ", ".join(_column(ConsentEvent, n) for n in names)
        const = self._event_constants()
        rows = [
            (pk, *const, adapt(at), ip) for pk, at, ip in events_of(contact_ids, rows_by_id, now)
        ]
        with connection.cursor() as cursor:
            for chunk in self._chunks(rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(ConsentEvent)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))}",
                    [p for row in chunk for p in row],
                )


class PostgresWriter(Writer):
    """The same work, set-based.  A batch's new rows travel by COPY into a temporary staging
    table and become contacts, subscriptions and consent events in one statement, so their ids
    never leave the server; other values travel as arrays (one bound parameter each, through
    psycopg's server-side binding) and unnest() in the server.  Measured in
    bench/import_contacts.py and described in the module docstring."""

    STAGE = "tidings_import_stage"
    lookup_when_any_taken = True  # then the insert can go without ON CONFLICT (create_contacts)
    STAGE_COLUMNS = ("email", "email_key", *STORED_COLUMNS, "attributes")
    # The consent proof of each row (rows.Moments), staged only when the file carries it.
    PROOF_COLUMNS = ("at1", "ip1", "at2", "ip2")

    def __init__(
        self, imp: Import, mailing_list: MailingList, wording_id: int, *, proof: bool = False
    ):
        super().__init__(imp, mailing_list, wording_id, proof=proof)
        self.stage = f"{self.STAGE}_proof" if proof else self.STAGE
        self.analyzed = False
        self.stage_columns = self.STAGE_COLUMNS + (self.PROOF_COLUMNS if proof else ())
        # Insert without ON CONFLICT while no row of the last batch was taken (see
        # create_contacts); a new writer starts hopeful.
        self.optimistic = True

    def _cursor(self) -> Any:
        import psycopg

        connection.ensure_connection()
        return psycopg.Cursor(connection.connection)

    def _execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self._cursor() as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall() if cursor.description else []

    def begin_batch(self, *, immediate: bool = False) -> None:
        """Settings for the batch's transaction (SET LOCAL: they end with it).

        synchronous_commit off: the commit returns before its WAL reaches the disk.  A crash of
        the database server can then lose the last batches an import reported as committed; the
        import is idempotent, so running it again (the worker does after a crash) writes them
        and nothing twice.  ``immediate`` checks foreign keys at each statement's end rather
        than at commit, so the Import row updated last is locked for the commit only (parallel
        writers update that same row).
        """
        self._execute(
            "SELECT set_config('synchronous_commit', 'off', true), "
            "set_config('client_min_messages', 'warning', true)"
        )
        if immediate:
            self._execute("SET CONSTRAINTS ALL IMMEDIATE")

    def suppressed_hmacs(self, hmacs: Sequence[str]) -> set[str]:
        c = _column(Suppression, "email_hmac")
        sql = f"SELECT {c} FROM {_table(Suppression)} WHERE {c} = ANY(%s::text[])"
        return {h for (h,) in self._execute(sql, [list(hmacs)])}

    def existing(self, keys: Sequence[str]) -> list[Existing]:
        c, s = _table(Contact), _table(Subscription)
        cols = ", ".join(f"c.{_column(Contact, f)}" for f in STORED_COLUMNS)
        pk = _column(Contact, "id")
        sql = (
            f"SELECT c.{pk}, c.{_column(Contact, 'email_key')}, {cols}, "
            f"c.{_column(Contact, 'attributes')}, s.{_column(Subscription, 'status')} "
            f"FROM {c} c LEFT JOIN {s} s ON s.{_column(Subscription, 'contact')} = c.{pk} "
            f"AND s.{_column(Subscription, 'mailing_list')} = %s "
            # ARRAY(...) is computed once, so the planner probes the unique index once per
            # address; a join against unnest() was planned as a hash join over every contact
            # (100 ms a batch at 200,000 contacts, growing with the table).
            f"WHERE c.{_column(Contact, 'email_key')} = ANY(ARRAY(SELECT unnest(%s::text[])))"
        )
        return [self._existing(row) for row in self._execute(sql, [self.list.pk, list(keys)])]

    def _stage(self, rows: Sequence[GoodRow]) -> None:
        """COPY the rows into the connection's staging table (emptied at every commit).

        psycopg writes COPY rows in C (~0.8 µs a row, a hand-built COPY text saved nothing);
        dumping the values as arrays instead cost ~6 µs a row in Python, the largest single cost
        of the import's process.
        """
        stage, columns = self.stage, self.stage_columns
        self._execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
            f"({', '.join(f'{name} text' for name in columns)}) "
            f"ON COMMIT DELETE ROWS"
        )
        self._execute(f"TRUNCATE {stage}")  # a dry run stages every batch in one transaction
        dumps = json.dumps
        with (
            self._cursor() as cursor,
            cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            if not self.proof:
                for r in rows:
                    attributes = None if r.attributes is None else dumps(r.attributes)
                    write((r.email, r.key, *r.values, attributes))
                return
            none = (None, None, None, None)
            for r in rows:
                attributes = None if r.attributes is None else dumps(r.attributes)
                proof = r.consent or none
                write(
                    (
                        r.email,
                        r.key,
                        *r.values,
                        attributes,
                        None if proof[0] is None else proof[0].isoformat(),
                        proof[1],
                        None if proof[2] is None else proof[2].isoformat(),
                        proof[3],
                    )
                )
        if not self.analyzed:
            # The events join the new contacts to this table by address.  Without statistics
            # the planner guessed sizes and sorted both sides by address for a merge join
            # (collated text sorts: the batch's slowest step); with them it hashes, ~20 ms for
            # 20,000 rows.  Once is enough: later batches are the same shape.
            self._execute(f"ANALYZE {stage}")
            self.analyzed = True

    def _insert_contacts_sql(self, *, on_conflict: bool) -> str:
        names = ["email", "email_key", *STORED_COLUMNS, "attributes", "created_at", "updated_at"]
        email, key = _column(Contact, "email"), _column(Contact, "email_key")
        return (
            f"INSERT INTO {_table(Contact)} ({', '.join(_column(Contact, x) for x in names)}) "
            f"SELECT {', '.join(f's.{n}' for n in self.STAGE_COLUMNS[:-1])}, "
            f"COALESCE(s.attributes::jsonb, '{{}}'::jsonb), %(now)s, %(now)s "
            f"FROM {self.stage} s "
            # The unique index on email_key is the only arbiter: naming it spares a probe of
            # the primary key's index for every row.
            + (f"ON CONFLICT ({key}) DO NOTHING " if on_conflict else "")
            + f"RETURNING {_column(Contact, 'id')} AS id, {email} AS email"
        )

    def create_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """One statement: new contacts, their subscriptions and consent events.  A contact
        created by this transaction cannot have a subscription yet, so the subscription insert
        needs no conflict handling.

        While the last batch had no taken address (a new list, the usual import) the insert
        goes without ON CONFLICT, inside a savepoint: PostgreSQL's speculative insertion costs
        ~4 µs a row (measured: 35 -> 31 µs of server time a row).  Should an address be taken
        after all, the batch goes again with ON CONFLICT DO NOTHING, and so do the batches after
        it until one finds every address new.
        """
        if not rows:
            return {}
        import psycopg

        self._stage(rows)
        created: dict[str, int] | None = None
        if self.optimistic:
            try:
                with transaction.atomic():
                    created = self._create_staged(on_conflict=False)
            except psycopg.errors.UniqueViolation:
                created = None
        if created is None:
            created = self._create_staged(on_conflict=True)
        self.optimistic = len(created) == len(rows)
        return created

    def _create_staged(self, *, on_conflict: bool) -> dict[str, int]:
        sub = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        sql = (
            f"WITH new AS ({self._insert_contacts_sql(on_conflict=on_conflict)}), "
            f"sub AS (INSERT INTO {_table(Subscription)} "
            f"({', '.join(_column(Subscription, n) for n in sub)}) "
            f"SELECT id, %(list)s, %(confirmed)s, %(now)s, %(now)s, %(now)s FROM new "
            f"RETURNING {_column(Subscription, 'contact')} AS id), "
            f"ev AS ({self._staged_events_sql()}) "
            f"SELECT id, email FROM new"
        )
        now = timezone.now()
        params = {
            "now": now,
            "list": self.list.pk,
            "confirmed": Subscription.Status.CONFIRMED.value,
            **self._events_params(),
        }
        return {email: pk for pk, email in self._execute(sql, params)}

    def fill_contacts(self, fills: Sequence[tuple[int, dict[str, str], dict[str, Any] | None]]):
        """The generic writer's fill, in one statement: each stored column's new values as an
        array (NULL where a row fills nothing), blank columns only (measured: one UPDATE a
        contact cost a round trip each, ~10% of a merge into an audience with 10% overlap)."""
        if not fills:
            return
        columns = {name: Contact.column_name(name) for name in STORED_COLUMNS}
        sets = [
            f"{_q(c)} = CASE WHEN t.{_q(c)} = '' AND u.{name} IS NOT NULL THEN u.{name} "
            f"ELSE t.{_q(c)} END"
            for name, c in columns.items()
        ]
        attributes = _column(Contact, "attributes")
        sets.append(f"{attributes} = COALESCE(u.attributes::jsonb, t.{attributes})")
        sets.append(f"{_column(Contact, 'updated_at')} = %(now)s")
        unnest = ", ".join(f"%({name})s::text[]" for name in ("ids", *columns, "attributes"))
        names = ", ".join(("id", *columns, "attributes"))
        sql = (
            f"UPDATE {_table(Contact)} AS t SET {', '.join(sets)} "
            f"FROM unnest({unnest}) AS u({names}) WHERE t.{_column(Contact, 'id')} = u.id::bigint"
        )
        params: dict[str, Any] = {"now": timezone.now(), "ids": [str(pk) for pk, _, _ in fills]}
        for name in columns:
            params[name] = [values.get(name) for _, values, _ in fills]
        params["attributes"] = [None if a is None else json.dumps(a) for _, _, a in fills]
        self._execute(sql, params)

    def subscribe(self, contact_ids: Sequence[int]) -> list[int]:
        names = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        sql = (
            f"INSERT INTO {_table(Subscription)} "
            f"({', '.join(_column(Subscription, n) for n in names)}) "
            f"SELECT unnest(%(ids)s::bigint[]), %(list)s, %(confirmed)s, %(now)s, %(now)s, "
            f"%(now)s ON CONFLICT DO NOTHING RETURNING {_column(Subscription, 'contact')}"
        )
        params = {
            "ids": list(contact_ids),
            "list": self.list.pk,
            "confirmed": Subscription.Status.CONFIRMED.value,
            "now": timezone.now(),
        }
        return [pk for (pk,) in self._execute(sql, params)]

    def confirm(self, contact_ids: Sequence[int]) -> list[int]:
        now = timezone.now()
        contact = _column(Subscription, "contact")
        status = _column(Subscription, "status")
        sql = (
            f"UPDATE {_table(Subscription)} SET {status} = %s, "
            f"{_column(Subscription, 'confirmed_at')} = %s, "
            f"{_column(Subscription, 'unsubscribed_at')} = NULL, "
            f"{_column(Subscription, 'updated_at')} = %s "
            f"WHERE {_column(Subscription, 'mailing_list')} = %s AND {status} = %s "
            f"AND {contact} = ANY(%s::bigint[]) RETURNING {contact}"
        )
        params = [
            Subscription.Status.CONFIRMED.value,
            now,
            now,
            self.list.pk,
            Subscription.Status.PENDING.value,
            list(contact_ids),
        ]
        return [pk for (pk,) in self._execute(sql, params)]

    def _events_insert(self) -> str:
        return (
            f"INSERT INTO {_table(ConsentEvent)} "
            f"({', '.join(_column(ConsentEvent, n) for n in EVENT_COLUMNS)}) "
        )

    def _events_constants_sql(self) -> str:
        return ", ".join(f"%(ev_{n})s" for n in EVENT_CONSTANTS)

    def _staged_events_sql(self) -> str:
        """The events of the contacts the statement creates (CTEs ``sub`` and ``new``): one at
        the import's time, or, with the consent proof staged, one or two at its moments."""
        const = self._events_constants_sql()
        if not self.proof:
            return f"{self._events_insert()}SELECT id, {const}, %(now)s, NULL FROM sub"
        return (
            f"{self._events_insert()}SELECT new.id, {const}, m.at, m.ip "
            f"FROM new JOIN {self.stage} s ON s.email = new.email "
            "CROSS JOIN LATERAL (VALUES (COALESCE(s.at1::timestamptz, %(now)s), s.ip1::inet), "
            "(s.at2::timestamptz, s.ip2::inet)) AS m(at, ip) WHERE m.at IS NOT NULL"
        )

    def _events_params(self) -> dict[str, Any]:
        return {f"ev_{n}": v for n, v in zip(EVENT_CONSTANTS, self._event_constants(), strict=True)}

    def consent_events(
        self, contact_ids: Sequence[int], rows_by_id: dict[int, GoodRow] | None = None
    ) -> None:
        events = events_of(contact_ids, rows_by_id, timezone.now())
        sql = (
            f"{self._events_insert()}SELECT e.id, {self._events_constants_sql()}, e.at, e.ip "
            "FROM unnest(%(ids)s::bigint[], %(ats)s::timestamptz[], %(ips)s::text[]::inet[]) "
            "AS e(id, at, ip)"
        )
        params = {
            **self._events_params(),
            "ids": [pk for pk, _, _ in events],
            "ats": [at for _, at, _ in events],
            "ips": [ip for _, _, ip in events],
        }
        self._execute(sql, params)

    def add_progress(self, tally: Tally, processed_bytes: int) -> None:
        """Add a part's counts to the Import row (parallel writers: each adds its own)."""
        t = _table(Import)
        sets = [f"{_column(Import, n)} = {_column(Import, n)} + %({n})s" for n in COUNTERS]
        done = _column(Import, "processed_bytes")
        sets.append(
            f"{done} = GREATEST({done}, LEAST(%(bytes)s, {_column(Import, 'total_bytes')}))"
        )
        sets.append(f"{_column(Import, 'heartbeat_at')} = now()")  # the lease: alive
        params: dict[str, Any] = {**tally.counts, "bytes": processed_bytes, "pk": self.imp.pk}
        if tally.reasons:
            # Merge {reason: {count, first_line}}: counts add up, the first line is the least.
            reasons = _column(Import, "bad_reasons")
            sets.append(
                f"{reasons} = (SELECT COALESCE(jsonb_object_agg(k, jsonb_build_object("
                "'count', COALESCE((o.v->>'count')::bigint, 0) "
                "+ COALESCE((n.v->>'count')::bigint, 0), "
                "'first_line', LEAST((o.v->>'first_line')::bigint, "
                "(n.v->>'first_line')::bigint))), '{}'::jsonb) "
                f"FROM jsonb_each({reasons}) AS o(k, v) "
                "FULL JOIN jsonb_each(%(reasons)s::jsonb) AS n(k, v) USING (k))"
            )
            params["reasons"] = json.dumps(tally.reasons)
        self._execute(
            f"UPDATE {t} SET {', '.join(sets)} WHERE {_column(Import, 'id')} = %(pk)s", params
        )


def writer_for(
    imp: Import, mailing_list: MailingList, wording_id: int, fast: bool, *, proof: bool = False
) -> Writer:
    """The PostgreSQL writer where it can be used (and ``fast``), else the generic one."""
    if fast and connection.vendor == "postgresql":
        return PostgresWriter(imp, mailing_list, wording_id, proof=proof)
    return Writer(imp, mailing_list, wording_id, proof=proof)
