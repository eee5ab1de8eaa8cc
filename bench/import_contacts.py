"""Benchmark: importing a contacts CSV (``tidings import contacts``) against a throwaway database.

    .venv/bin/python -m bench.import_contacts --rows 1000000
    .venv/bin/python -m bench.import_contacts --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres

SQLite by default (a temporary file); with a PostgreSQL URL, a fresh database
``bench_import_<pid>`` is created beside the one named and dropped at the end.  The CSV (Mailchimp
headers, faker names from a pre-generated pool, unique addresses) has 1% planted bad rows (half
invalid addresses, half missing names) and 0.1% suppressed addresses.  The import runs in a child
process, so the peak RSS printed (VmHWM) is the importing process's alone.  The baseline is what
the database does with the same file and no application work: PostgreSQL ``COPY`` into a table
with a unique index on the address, or on SQLite a plain ``executemany`` insert into one.
Figures are printed, not asserted.
"""

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

BAD_SHARE = 0.01
SUPPRESSED_SHARE = 0.001
INTERNATIONAL_SHARE = 0.005  # addresses with a non-ASCII local part (email-validator's path)
INVALID_ADDRESSES = (
    "no-at-sign.example.com",
    "two@@example.com",
    "trailing.dot@example.",
    "a b@x.io",
)


# --- the file --------------------------------------------------------------------------------
def generate_csv(path: Path, rows: int, seed: int = 1) -> dict[str, int]:
    """Write the file; returns what was planted."""
    from faker import Faker

    fake = Faker(["en_GB", "de_DE", "fr_FR"])
    Faker.seed(seed)
    rng = random.Random(seed)
    # faker costs ~50 µs a value: a pool, combined at random, keeps generation to seconds.
    firsts = [fake.first_name() for _ in range(1500)]
    lasts = [fake.last_name() for _ in range(1500)]
    companies = [fake.company() for _ in range(500)]
    titles = [fake.job() for _ in range(300)]
    domains = [fake.free_email_domain() for _ in range(50)] + [
        fake.domain_name() for _ in range(250)
    ]
    planted = {"invalid": 0, "missing_name": 0, "suppressed": 0}
    suppressed: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp)
        writer.writerow(
            ["Email Address", "First Name", "Last Name", "Company", "Phone Number", "Job Title"]
        )
        for i in range(rows):
            first, last = rng.choice(firsts), rng.choice(lasts)
            local = f"{first}.{last}".lower()
            if rng.random() >= INTERNATIONAL_SHARE:  # most people's addresses are plain ASCII
                local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
            local = re.sub(r"[^\w.]+", "", local)
            email = f"{local}.{i}@{rng.choice(domains)}"
            roll = rng.random()
            if roll < BAD_SHARE / 2:
                email = f"{i}.{rng.choice(INVALID_ADDRESSES)}"
                planted["invalid"] += 1
            elif roll < BAD_SHARE:
                first = last = ""
                planted["missing_name"] += 1
            elif roll < BAD_SHARE + SUPPRESSED_SHARE:
                suppressed.append(email)
                planted["suppressed"] += 1
            phone = f"+44 7{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}"
            writer.writerow([email, first, last, rng.choice(companies), phone, rng.choice(titles)])
    (path.parent / "suppressed.json").write_text(json.dumps(suppressed), encoding="utf-8")
    return planted


# --- the databases ---------------------------------------------------------------------------
def create_postgres(url: str) -> str:
    import psycopg

    name = f"bench_import_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_baseline(url: str, path: Path) -> float:
    """Seconds for PostgreSQL to COPY the file into a table with a unique address index."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_copy (email text, first_name text, last_name text, "
            "company text, phone text, job_title text)"
        )
        conn.execute("CREATE UNIQUE INDEX bench_copy_email ON bench_copy (lower(email))")
        conn.commit()
        started = time.perf_counter()
        sql = "COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, cur.copy(sql) as copy, path.open("rb") as fp:
            while chunk := fp.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def executemany_baseline(path: Path) -> float:
    """Seconds for SQLite to insert the file's rows (executemany) into an indexed table."""
    import sqlite3

    db = path.parent / "baseline.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE bench (email text, first_name text, last_name text, company text, "
        "phone text, job_title text)"
    )
    conn.execute("CREATE UNIQUE INDEX bench_email ON bench (lower(email))")
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fp:
        reader = csv.reader(fp)
        next(reader)
        conn.executemany("INSERT INTO bench VALUES (?, ?, ?, ?, ?, ?)", reader)
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


# --- the import (in a child process) ---------------------------------------------------------
def child(path: Path, generic: bool) -> None:
    """Runs in its own process: migrate, plant suppressions, import, print JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django

    django.setup()
    from tidings.audience.emails import email_hmac, normalise_email
    from tidings.audience.importer import create_import, run_import
    from tidings.audience.models import MailingList, Suppression

    addresses = json.loads((path.parent / "suppressed.json").read_text(encoding="utf-8"))
    Suppression.objects.bulk_create(
        Suppression(email_hmac=email_hmac(normalise_email(a)), reason="unsubscribed")
        for a in addresses
    )
    news = MailingList.objects.create(name="Newsletter", topic="product news")
    imp = create_import(mailing_list=news, original_filename=path.name)
    rss_before = _vm("VmRSS")
    started = time.perf_counter()
    imp = run_import(imp, path, fast=not generic)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "peak_rss_mb": _vm("VmHWM"),
        "rss_before_mb": rss_before,
        "rows_read": imp.rows_read,
        "created": imp.created,
        "bad_rows": imp.bad_rows,
        "bad_reasons": imp.bad_reasons,
        "skipped_suppressed": imp.skipped_suppressed,
        "vendor": django.db.connection.vendor,
    }
    print("RESULT " + json.dumps(result))


def _vm(name: str) -> float:
    """A /proc/self/status memory figure (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default="", help="postgres://... (a database to connect to for admin)"
    )
    parser.add_argument("--generic", action="store_true", help="force the portable SQL writer")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.generic)
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench_import_"))
    csv_path = workdir / "contacts.csv"
    env = dict(os.environ, TIDINGS_DATA_DIR=str(workdir / "data"), TIDINGS_LOG_LEVEL="WARNING")
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    db_url = ""
    try:
        started = time.perf_counter()
        planted = generate_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} rows ({size_mb:.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s; planted {planted}"
        )
        db_url = create_postgres(args.database_url) if postgres else ""
        env["DATABASE_URL"] = db_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        # Migrations in a process of their own: loading them all would count in the peak RSS.
        subprocess.run([sys.executable, "-m", "tidings", "migrate", "-v0"], env=env, check=True)
        cmd = [sys.executable, "-m", "bench.import_contacts", "--child", str(csv_path)]
        if args.generic:
            cmd.append("--generic")
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        result_line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode or not result_line:
            print(out.stdout, out.stderr, sep="\n")
            raise SystemExit("the import failed")
        result = json.loads(result_line[0].removeprefix("RESULT "))
        rate = result["rows_read"] / result["seconds"]
        writer = "generic SQL" if args.generic else "default writer"
        print(
            f"import ({result['vendor']}, {writer}): {result['rows_read']:,} rows in "
            f"{result['seconds']:.1f} s = {rate:,.0f} rows/s; "
            f"peak RSS {result['peak_rss_mb']:.0f} MB "
            f"({result['rss_before_mb']:.0f} MB before the import started)"
        )
        reasons = {k: v["count"] for k, v in result["bad_reasons"].items()}
        planted_bad = planted["invalid"] + planted["missing_name"]
        print(
            f"bad rows reported {result['bad_rows']:,} vs planted {planted_bad:,} {reasons}; "
            f"suppressed skipped {result['skipped_suppressed']:,} vs planted "
            f"{planted['suppressed']:,}; created {result['created']:,}"
        )
        if postgres:
            base = copy_baseline(db_url, csv_path)
            label = "PostgreSQL COPY into a table with a unique address index"
        else:
            base = executemany_baseline(csv_path)
            label = "SQLite executemany into a table with a unique address index"
        base_rate = args.rows / base
        print(
            f"baseline ({label}): {base:.1f} s = {base_rate:,.0f} rows/s; "
            f"import/baseline time ratio {result['seconds'] / base:.1f}x"
        )
    finally:
        if db_url:
            drop_postgres(args.database_url, db_url)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
