"""Benchmark: importing a real-width Mailchimp export (``tidings import contacts``), into an empty
database and merging into an existing audience, against a throwaway database.

    .venv/bin/python -m bench.import_contacts                      # 1M rows; SQLite
    .venv/bin/python -m bench.import_contacts \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres  # 1M rows; PostgreSQL
    .venv/bin/python -m bench.import_contacts --quick              # 100k rows, 100k existing

The file is what Mailchimp's audience export writes for its subscribed members: 25 columns
("Email Address", "First Name", "Last Name", "Address", "Phone Number", "Company", "Job Title",
"Birthday", MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, LATITUDE, LONGITUDE,
GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED, LEID, EUID, NOTES, TAGS), faker names from a
pool, 60% double opt-in (both times and IPs), 30% a confirmation time only, 10% neither; 1%
planted bad rows (invalid addresses, missing names), 0.2% opt-in times that are not dates, and
0.1% addresses on the suppression list.

Two runs on each database, each in a fresh database:

- **empty**: the file into an empty database;
- **merge**: the same file into a database already holding ``--existing`` contacts (1M by
  default), subscribed to the list (2% of them unsubscribed), where 10% of the file's rows are
  people already there.

The import runs in a child process, so the peak RSS printed (VmHWM) is the importing process's
alone.  The baseline is what the database does with the same file and no application work:
PostgreSQL ``COPY`` into a 25-column table with a unique index on the address (for the merge, a
``COPY`` into a staging table and an ``INSERT ... ON CONFLICT DO NOTHING`` into a table already
holding the existing addresses); on SQLite an ``executemany`` insert into the same shapes.
Figures are printed with the load average (the machine may be shared), never asserted.
"""

# SQL here is built from model metadata, literal text and integers of the benchmark's own; no
# value from outside travels in it.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench._report import report as record

BAD_SHARE = 0.01
BAD_DATE_SHARE = 0.002
SUPPRESSED_SHARE = 0.001
OVERLAP_SHARE = 0.10
INTERNATIONAL_SHARE = 0.005  # addresses with a non-ASCII local part (email-validator's path)
INVALID_ADDRESSES = (
    "no-at-sign.example.com",
    "two@@example.com",
    "trailing.dot@example.",
    "a b@x.io",
)
HEADER = [
    "Email Address", "First Name", "Last Name", "Address", "Phone Number", "Company",
    "Job Title", "Birthday", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME",
    "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION",
    "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS",
]  # fmt: skip
TARGETS = {  # rows/s on PostgreSQL (issue 20); peak RSS on both databases
    "empty": 40_000,
    "merge": 25_000,
    "rss_mb": 250,
}


def existing_address(k: int) -> str:
    return f"member{k}@example.net"


# --- the file --------------------------------------------------------------------------------
def generate_csv(path: Path, rows: int, existing: int, seed: int = 1) -> dict[str, int]:
    """Write the export; returns what was planted."""
    from faker import Faker

    fake = Faker(["en_GB", "de_DE", "fr_FR"])
    Faker.seed(seed)
    rng = random.Random(seed)
    # faker costs ~50 µs a value: a pool, combined at random, keeps generation to seconds.
    firsts = [fake.first_name() for _ in range(1500)]
    lasts = [fake.last_name() for _ in range(1500)]
    companies = [fake.company() for _ in range(500)]
    titles = [fake.job() for _ in range(300)]
    streets = [fake.street_address().replace("\n", " ") for _ in range(500)]
    cities = [fake.city() for _ in range(300)]
    domains = [fake.free_email_domain() for _ in range(50)] + [
        fake.domain_name() for _ in range(250)
    ]
    zones = ["Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York"]
    planted = {"invalid": 0, "missing_name": 0, "bad_date": 0, "suppressed": 0, "overlap": 0}
    suppressed: list[str] = []
    base = 1_600_000_000
    # People already there, each at most once (a file holds an address once, as COPY needs).
    overlap = iter(rng.sample(range(existing), min(existing, int(rows * OVERLAP_SHARE * 1.2) + 10)))
    with path.open("w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp)
        writer.writerow(HEADER)
        for i in range(rows):
            first, last = rng.choice(firsts), rng.choice(lasts)
            roll = rng.random()
            k = next(overlap, None) if roll < OVERLAP_SHARE and existing else None
            if k is not None:
                email = existing_address(k)
                planted["overlap"] += 1
            else:
                local = f"{first}.{last}".lower()
                if rng.random() >= INTERNATIONAL_SHARE:
                    local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
                local = re.sub(r"[^\w.]+", "", local)
                email = f"{local}.{i}@{rng.choice(domains)}"
            optin = confirm = optin_ip = confirm_ip = ""
            kind = rng.random()
            stamp = base + rng.randrange(100_000_000)
            if kind < 0.6:  # double opt-in: the sign-up, then the click
                optin = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))
                confirm = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp + 300))
                optin_ip = confirm_ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.1.2"
            elif kind < 0.9:  # added by the account: confirmed only
                confirm = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))
            roll = rng.random()
            if roll < BAD_SHARE / 2:
                email = f"{i}.{rng.choice(INVALID_ADDRESSES)}"
                planted["invalid"] += 1
            elif roll < BAD_SHARE:
                first = last = ""
                planted["missing_name"] += 1
            elif roll < BAD_SHARE + BAD_DATE_SHARE:
                optin = "last week"
                planted["bad_date"] += 1
            elif roll < BAD_SHARE + BAD_DATE_SHARE + SUPPRESSED_SHARE:
                suppressed.append(email)
                planted["suppressed"] += 1
            writer.writerow(
                [
                    email, first, last,
                    f"{rng.choice(streets)}  {rng.choice(cities)}  {rng.randrange(10000, 99999)}",
                    f"+44 7{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}",
                    rng.choice(companies), rng.choice(titles),
                    f"{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}",
                    rng.randrange(1, 6), optin, optin_ip, confirm, confirm_ip,
                    f"{rng.uniform(-60, 60):.7f}", f"{rng.uniform(-120, 120):.7f}",
                    "0", "1", rng.choice(zones), "GB", "",
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp + 600)),
                    rng.randrange(10**8, 10**9), f"{rng.getrandbits(40):010x}", "",
                    '"Customer"' if rng.random() < 0.3 else "",
                ]
            )  # fmt: skip
    (path.parent / "suppressed.json").write_text(json.dumps(suppressed), encoding="utf-8")
    return planted


# --- the databases ---------------------------------------------------------------------------
def create_postgres(url: str, suffix: str) -> str:
    import psycopg

    name = f"tidings_bench_import_{os.getpid()}_{suffix}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _columns() -> str:
    return ", ".join(f'"{c}" text' for c in HEADER)


def copy_baseline(url: str, path: Path, existing: int) -> float:
    """Seconds for PostgreSQL to take the file into a table with a unique address index (for a
    merge: staged by COPY, then INSERT ... ON CONFLICT DO NOTHING beside ``existing`` rows)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE bench_copy ({_columns()})")
        conn.execute('CREATE UNIQUE INDEX bench_copy_email ON bench_copy (lower("Email Address"))')
        if existing:
            conn.execute(
                "INSERT INTO bench_copy (\"Email Address\") SELECT 'member' || g || "
                "'@example.net' FROM generate_series(0, %s) g",
                [existing - 1],
            )
            conn.execute(f"CREATE TEMPORARY TABLE bench_stage ({_columns()})")
        conn.commit()
        started = time.perf_counter()
        target = "bench_stage" if existing else "bench_copy"
        sql = f"COPY {target} FROM STDIN WITH (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, cur.copy(sql) as copy, path.open("rb") as fp:
            while chunk := fp.read(1 << 20):
                copy.write(chunk)
        if existing:
            conn.execute(
                'INSERT INTO bench_copy SELECT DISTINCT ON (lower("Email Address")) * '
                "FROM bench_stage ON CONFLICT DO NOTHING"
            )
        conn.commit()
        return time.perf_counter() - started


def executemany_baseline(path: Path, existing: int) -> float:
    """Seconds for SQLite to insert the file's rows (executemany, OR IGNORE) into an indexed
    table (already holding ``existing`` addresses for a merge)."""
    import sqlite3

    db = path.parent / f"baseline-{existing}.sqlite3"
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE bench ({_columns()})")
    conn.execute('CREATE UNIQUE INDEX bench_email ON bench (lower("Email Address"))')
    if existing:
        conn.executemany(
            'INSERT INTO bench ("Email Address") VALUES (?)',
            ((existing_address(k),) for k in range(existing)),
        )
        conn.commit()
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fp:
        reader = csv.reader(fp)
        next(reader)
        marks = ", ".join(["?"] * len(HEADER))
        conn.executemany(f"INSERT OR IGNORE INTO bench VALUES ({marks})", reader)
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    db.unlink(missing_ok=True)
    return seconds


# --- in child processes --------------------------------------------------------------------
def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django

    django.setup()


def seed(existing: int) -> None:
    """The existing audience: contacts, their subscriptions to the list (2% unsubscribed) and a
    consent event each, written in SQL (an import of them would take as long as the benchmark)."""
    _django()
    from django.db import connection, transaction

    from tidings.audience.models import (
        ConsentEvent,
        Contact,
        MailingList,
        Subscription,
    )

    news = MailingList.objects.create(name="Newsletter", topic="product news")
    t = {m: connection.ops.quote_name(m._meta.db_table) for m in (Contact, Subscription)}
    events = connection.ops.quote_name(ConsentEvent._meta.db_table)
    pg = connection.vendor == "postgresql"
    series = (
        f"generate_series(0, {existing - 1}) AS s(g)"
        if pg
        else f"(WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < "
        f"{existing - 1}) SELECT g FROM s) AS s"
    )
    now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            # email_key: these addresses are lower-case ASCII, their own case-folded key.
            f"INSERT INTO {t[Contact]} (email, email_key, name, phone, company, job_title, "
            f"work_address, attributes, created_at, updated_at) SELECT "
            f"'member' || g || '@example.net', 'member' || g || '@example.net', "
            f"'Member ' || g, '', '', '', '', '{{}}', {now}, {now} FROM {series}"
        )
        cursor.execute(
            f"INSERT INTO {t[Subscription]} (contact_id, mailing_list_id, status, created_at, "
            f"confirmed_at, updated_at) SELECT id, {news.pk}, CASE WHEN id % 50 = 0 THEN "
            f"'unsubscribed' ELSE 'confirmed' END, {now}, {now}, {now} FROM {t[Contact]}"
        )
        cursor.execute(
            f"INSERT INTO {events} (contact_id, purpose, channel, mailing_list_id, topic, "
            f"action, at, source, source_ref) SELECT id, 'newsletter', 'email', {news.pk}, "
            f"'product news', 'granted', {now}, 'form', '' FROM {t[Contact]}"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print("SEEDED")


def child(path: Path, generic: bool) -> None:
    """Plant suppressions, import, print JSON."""
    _django()
    import django

    from tidings.audience.emails import email_hmac, normalise_email
    from tidings.audience.imports import create_import, run_import
    from tidings.audience.models import MailingList, Suppression

    addresses = json.loads((path.parent / "suppressed.json").read_text(encoding="utf-8"))
    Suppression.objects.bulk_create(
        (
            Suppression(email_hmac=email_hmac(normalise_email(a)), reason="unsubscribed")
            for a in addresses
        ),
        ignore_conflicts=True,
    )
    news, _ = MailingList.objects.get_or_create(
        name="Newsletter", defaults={"topic": "product news"}
    )
    imp = create_import(mailing_list=news, original_filename=path.name)
    server = ServerCpu()
    rss_before = _vm("VmRSS")
    cpu_before = _cpu()
    started = time.perf_counter()
    imp = run_import(imp, path, fast=not generic)
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu_before
    server_cpu = server.stop()
    names = (
        "rows_read", "created", "updated", "unchanged", "subscribed", "skipped_suppressed",
        "skipped_unsubscribed", "left_in_file", "duplicates", "bad_rows",
    )  # fmt: skip
    result = {
        "seconds": seconds,
        "cpu_s": cpu,
        "server_cpu_s": server_cpu,
        "peak_rss_mb": _vm("VmHWM"),
        "rss_before_mb": rss_before,
        "bad_reasons": imp.bad_reasons,
        "vendor": django.db.connection.vendor,
        **{name: getattr(imp, name) for name in names},
    }
    print("RESULT " + json.dumps(result))


class ServerCpu:
    """CPU seconds the import's PostgreSQL server processes used, when the server runs on this
    machine (their /proc/<pid>/stat; None otherwise, and on SQLite).

    Unlike rows/s, the CPU a row costs hardly moves with the machine's load: it says what a
    quiet machine could do (2 cores / (client + server µs a row)).  Each connection's backend
    is read when the connection opens (the import's writers open their own) and just before it
    closes; the connection already open is read now.
    """

    def __init__(self) -> None:
        from django.db import DEFAULT_DB_ALIAS, connections
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.backends.signals import connection_created

        connection = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not django's proxy
        self.used: float | None = 0.0 if connection.vendor == "postgresql" else None
        self.open: dict[int, tuple[int, float]] = {}  # id(wrapper) -> (backend pid, CPU then)
        self._close = BaseDatabaseWrapper.close
        if self.used is None:
            return
        meter = self

        def close(wrapper: BaseDatabaseWrapper) -> None:
            meter._read(wrapper)
            meter._close(wrapper)

        BaseDatabaseWrapper.close = close  # type: ignore[method-assign]
        connection_created.connect(self._opened, weak=False)
        connection.ensure_connection()
        self._opened(None, connection)

    @staticmethod
    def _backend_cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _opened(self, sender: object, connection: object, **kwargs: object) -> None:
        if getattr(connection, "vendor", "") != "postgresql" or self.used is None:
            return
        with connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        cpu = self._backend_cpu(pid)
        if cpu is None:  # the server is elsewhere
            self.used = None
            return
        self.open[id(connection)] = (pid, cpu)

    def _read(self, connection: object) -> None:
        entry = self.open.pop(id(connection), None)
        if entry is None or self.used is None:
            return
        cpu = self._backend_cpu(entry[0])
        if cpu is not None:
            self.used += cpu - entry[1]

    def stop(self) -> float | None:
        from django.db import connections
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.backends.signals import connection_created

        for wrapper in connections.all(initialized_only=True):
            self._read(wrapper)
        BaseDatabaseWrapper.close = self._close  # type: ignore[method-assign]
        connection_created.disconnect(self._opened)
        return self.used


def _cpu() -> float:
    """CPU seconds this process used (all its threads): what the import costs the machine
    besides the database server, whatever else the machine is doing."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vm(name: str) -> float:
    """A /proc/self/status memory figure (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the runs ------------------------------------------------------------------------------
def run_scenario(args, csv_path: Path, workdir: Path, scenario: str) -> dict:
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    existing = args.existing if scenario == "merge" else 0
    env = dict(os.environ, TIDINGS_DATA_DIR=str(workdir / "data"), TIDINGS_LOG_LEVEL="WARNING")
    db_url = create_postgres(args.database_url, scenario) if postgres else ""
    sqlite_file = workdir / f"bench-{scenario}.sqlite3"
    env["DATABASE_URL"] = db_url or f"sqlite:///{sqlite_file}"
    load_before = _loadavg()
    try:
        # Migrations and seeding in processes of their own: they would count in the peak RSS.
        subprocess.run([sys.executable, "-m", "tidings", "migrate", "-v0"], env=env, check=True)
        seeded = 0.0
        if existing:
            started = time.perf_counter()
            cmd = [sys.executable, "-m", "bench.import_contacts", "--seed", str(existing)]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            seeded = time.perf_counter() - started
        cmd = [sys.executable, "-m", "bench.import_contacts", "--child", str(csv_path)]
        if args.generic:
            cmd.append("--generic")
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode or not lines:
            print(out.stdout, out.stderr, sep="\n")
            raise SystemExit(f"the {scenario} import failed")
        result = json.loads(lines[0].removeprefix("RESULT "))
        if postgres:
            base = copy_baseline(db_url, csv_path, existing)
            label = "PostgreSQL COPY" + (" + INSERT ON CONFLICT" if existing else "")
        else:
            base = executemany_baseline(csv_path, existing)
            label = "SQLite executemany"
    finally:
        if db_url:
            drop_postgres(args.database_url, db_url)
        sqlite_file.unlink(missing_ok=True)
    result |= {
        "scenario": scenario,
        "existing": existing,
        "seeded_s": seeded,
        "baseline_s": base,
        "baseline_label": label,
        "load_before": load_before,
        "load_after": _loadavg(),
    }
    return result


def report(result: dict, rows: int, postgres: bool) -> None:
    rate = result["rows_read"] / result["seconds"]
    base_rate = rows / result["baseline_s"]
    scenario = result["scenario"]
    where = (
        "an empty database"
        if not result["existing"]
        else (f"a database holding {result['existing']:,} contacts")
    )
    print(
        f"\n[{scenario}] import ({result['vendor']}) into {where}: {result['rows_read']:,} rows "
        f"in {result['seconds']:.1f} s = {rate:,.0f} rows/s; peak RSS "
        f"{result['peak_rss_mb']:.0f} MB ({result['rss_before_mb']:.0f} MB before it started)"
    )
    print(
        f"  the importing process used {result['cpu_s']:.1f} CPU s = "
        f"{result['cpu_s'] / result['rows_read'] * 1e6:.1f} µs a row (the rest is the database)"
    )
    if result.get("server_cpu_s") is not None:
        client = result["cpu_s"] / result["rows_read"] * 1e6
        server = result["server_cpu_s"] / result["rows_read"] * 1e6
        cores = os.cpu_count() or 1
        print(
            f"  its PostgreSQL server processes used {result['server_cpu_s']:.1f} CPU s = "
            f"{server:.1f} µs a row; at {client + server:.1f} µs a row in all, this machine's "
            f"{cores} cores could import at most ~{cores / (client + server) * 1e6:,.0f} rows/s "
            "if nothing else ran"
        )
    counts = {
        k: result[k]
        for k in (
            "created", "updated", "unchanged", "left_in_file", "skipped_unsubscribed",
            "skipped_suppressed", "duplicates", "bad_rows",
        )
    }  # fmt: skip
    print(
        f"  outcomes {counts}; bad { ({k: v['count'] for k, v in result['bad_reasons'].items()}) }"
    )
    print(
        f"  baseline ({result['baseline_label']}): {result['baseline_s']:.1f} s = "
        f"{base_rate:,.0f} rows/s; import/baseline time ratio "
        f"{result['seconds'] / result['baseline_s']:.1f}x"
    )
    print(f"  load average before {result['load_before']}, after {result['load_after']}")
    target = TARGETS[scenario]
    rss_met = result["peak_rss_mb"] < TARGETS["rss_mb"]
    scale = f"{result['rows_read']:,} rows, {result['vendor']}, {scenario}"
    record(
        "import",
        f"{scenario}: rows/s ({result['vendor']})",
        rate,
        "rows/s",
        baseline=base_rate,
        baseline_label=result["baseline_label"],
        target=target if postgres else None,
        higher_is_better=True,
        scale=scale,
    )
    record(
        "import",
        f"{scenario}: peak RSS ({result['vendor']})",
        result["peak_rss_mb"],
        "MB",
        target=TARGETS["rss_mb"],
        scale=scale,
    )
    if postgres:
        met = "met" if rate >= target else "NOT met"
        print(f"  target on PostgreSQL >= {target:,} rows/s: {met}")
    print(f"  target peak RSS < {TARGETS['rss_mb']} MB: {'met' if rss_met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="rows in the file (1,000,000)")
    parser.add_argument(
        "--existing", type=int, default=None, help="contacts already there for the merge (1M)"
    )
    parser.add_argument("--quick", action="store_true", help="100,000 rows and 100,000 existing")
    parser.add_argument("--scenario", choices=["empty", "merge", "both"], default="both")
    parser.add_argument(
        "--database-url", default="", help="postgres://... (a database to connect to for admin)"
    )
    parser.add_argument("--generic", action="store_true", help="force the portable SQL writer")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.generic)
        return
    if args.seed:
        seed(args.seed)
        return
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.existing = args.existing if args.existing is not None else args.rows

    workdir = Path(tempfile.mkdtemp(prefix="bench_import_"))
    csv_path = workdir / "subscribed_members_export.csv"
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    try:
        started = time.perf_counter()
        planted = generate_csv(csv_path, args.rows, args.existing)
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"generated a Mailchimp export of {args.rows:,} rows, {len(HEADER)} columns "
            f"({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s; planted {planted}"
        )
        scenarios = ["empty", "merge"] if args.scenario == "both" else [args.scenario]
        for scenario in scenarios:
            report(run_scenario(args, csv_path, workdir, scenario), args.rows, postgres)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
