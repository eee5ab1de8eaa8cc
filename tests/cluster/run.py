"""The cluster test: tidings scaled out on one machine, with everything going on at once.

    python -m tests.cluster.run                       # 50,000 recipients (make test-cluster)
    python -m tests.cluster.run --recipients 200000   # a bigger run
    python -m tests.cluster.run --recipients 5000     # a quick look

On loopback, against a fresh PostgreSQL database of its own (made beside ``--database-url`` and
dropped at the end) and a Redis server of its own:

- one port served by ``tidings serve --workers 2``: two web processes (granian workers) sharing it;
- three ``tidings worker`` processes (delivery, tasks, periodic jobs, the Redis ingest drain);
- an SMTP sink in a process of its own (aiosmtpd) recording each recipient and Message-ID;
- a campaign to ``--recipients`` people; while it goes out, worker 1 is ``kill -9``'ed and started
  again (the other two keep sending), opens and clicks are fetched through the shared port over
  keep-alive connections (a new one every 100 hits), ``tidings retention run`` removes seeded
  expired records, and ``tidings import`` adds people to another list.

Then it checks: everybody got the campaign; second copies only for rows a recovery returned (the
documented in-flight window: at most ``TIDINGS_DELIVERY_WINDOW`` per killed worker) and with the
same Message-ID; every row sent; tracking events equal to the hits answered, and both web
processes answered some; the retention sweep and the import did all their work; no deadlock and no
traceback in any process's log.  It prints the figures, one line per check, and
"N passed, M failed"; the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cluster-test-secret-key-" + "c" * 40
WINDOW = 200  # TIDINGS_DELIVERY_WINDOW: rows a worker holds at once
SEEDED_ENQUIRIES = 2_000
SEEDED_PAGE_VIEWS = 5_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def log(text: str) -> None:
    sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stdout.flush()


@dataclass
class Cluster:
    args: argparse.Namespace
    work: Path
    database_url: str = ""
    admin_url: str = ""
    redis_port: int = 0
    smtp_port: int = 0
    web_port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_files: list[Path] = field(default_factory=list)
    worker_starts: int = 0

    # -- processes ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TIDINGS_") and k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
        }
        env.update(
            DATABASE_URL=self.database_url,
            DJANGO_SETTINGS_MODULE="tests.campaigns.worker_settings",
            SECRET_KEY=SECRET,
            PYTHONPATH=str(ROOT),
            TIDINGS_DATA_DIR=str(self.work / "data"),
            TIDINGS_BASE_URL=f"http://127.0.0.1:{self.web_port}",
            TIDINGS_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            TIDINGS_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}?tls=none",
            TIDINGS_SMTP_CONCURRENCY="4",
            TIDINGS_DELIVERY_WINDOW=str(WINDOW),
            TIDINGS_DELIVERY_LEASE_SECONDS="10",
            TIDINGS_LOG_LEVEL="INFO",
        )
        return env

    def start(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        path = self.work / f"{name}.log"
        self.log_files.append(path)
        handle = path.open("a")
        process = subprocess.Popen(
            argv, env=self.env(), cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, **kwargs
        )
        self.processes[name] = process
        return process

    def tidings(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tidings.cli", *args]

    def start_worker(self, number: int) -> None:
        self.worker_starts += 1
        self.start(f"worker{number}-run{self.worker_starts}", self.tidings("worker"))
        self.processes[f"worker{number}"] = self.processes[
            f"worker{number}-run{self.worker_starts}"
        ]

    def stop_all(self) -> None:
        """tidings' processes first (they flush to Redis and the database as they stop), then
        the SMTP sink and Redis."""
        services = {"redis", "sink"}
        for group in ([n for n in self.processes if n not in services], ["sink", "redis"]):
            live = {
                p.pid: p for name, p in self.processes.items() if name in group and p.poll() is None
            }
            for process in live.values():
                process.send_signal(signal.SIGTERM)
            for process in live.values():
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()

    # -- services ----------------------------------------------------------------------------
    def start_services(self) -> None:
        import psycopg

        parts = urlsplit(self.args.database_url)
        name = f"tidings_cluster_{os.getpid()}"
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.database_url = urlunsplit(parts._replace(path=f"/{name}"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.redis_port, self.smtp_port, self.web_port = free_port(), free_port(), free_port()
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server is needed (apt-get install redis-server)")
        self.start(
            "redis",
            [
                redis,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        sink = self.start(
            "sink",
            [
                sys.executable,
                "-m",
                "tests.cluster.sink",
                str(self.smtp_port),
                str(self.work / "received.tsv"),
            ],
        )
        wait_for_port(self.redis_port, 30)
        wait_for_port(self.smtp_port, 60)
        if sink.poll() is not None:
            raise RuntimeError("the SMTP sink did not start")

    def drop_database(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        name = urlsplit(self.database_url).path.lstrip("/")
        if name:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the data ---------------------------------------------------------------------------------
def seed(recipients: int) -> dict:
    """Contacts and their subscriptions (in SQL), expired records for the retention sweep, and the
    campaign, its queue populated, in state sending.  Returns ids and the recipients' addresses."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from tests.campaigns.delivery_helpers import default_layout
    from tidings.analytics.models import PageView
    from tidings.audience.models import Contact, MailingList
    from tidings.campaigns.models import Campaign, Sender
    from tidings.campaigns.queue import populate_deliveries
    from tidings.campaigns.targeting import audience_for
    from tidings.crm.models import Enquiry

    with transaction.atomic():
        news = MailingList.objects.create(name="Product news", topic="product news")
        MailingList.objects.create(name="Imported", topic="product news")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audience_contact (email, name, phone, company, job_title, "
                "work_address, attributes, created_at, updated_at) "
                "SELECT 'reader' || g || '@example.org', 'Reader ' || g, '', 'Company ' || "
                "(g %% 50), '', '', '{}', now(), now() FROM generate_series(1, %s) AS g",
                [recipients],
            )
            cursor.execute(
                "INSERT INTO audience_subscription (contact_id, mailing_list_id, status, "
                "created_at, confirmed_at, updated_at) "
                "SELECT id, %s, 'confirmed', now(), now(), now() FROM audience_contact",
                [news.pk],
            )
        long_ago = timezone.now() - timedelta(days=3 * 365)
        people = Contact.objects.bulk_create(
            [
                Contact(email=f"old-enquirer{n}@example.net", name=f"Old {n}")
                for n in range(SEEDED_ENQUIRIES)
            ]
        )
        Enquiry.objects.bulk_create(
            [
                Enquiry(
                    contact=c,
                    channel="web",
                    message="A question",
                    created_at=long_ago,
                    last_contact_at=long_ago,
                )
                for c in people
            ]
        )
        PageView.objects.bulk_create(
            [
                PageView(created=long_ago, site="www.example.com", path=f"/old/{n}")
                for n in range(SEEDED_PAGE_VIEWS)
            ]
        )
        sender = Sender.objects.create(email="news@example.com", name="Example", verified=True)
        campaign = Campaign.objects.create(
            name="Cluster",
            subject="News for {{ contact.name }}",
            body="Hello {{ contact.name }},\n\nRead [what changed](https://www.example.com/news) "
            "and [the details](https://www.example.com/details).",
            topic=news.topic,
            status=Campaign.Status.SENDING,
            sender=sender,
            layout=default_layout(),
        )
        campaign.lists.set([news])
    with connection.cursor() as cursor:
        # Autovacuum would analyse the freshly filled tables a little later; without statistics
        # the planner takes the audience query for a walk through nested loops.
        cursor.execute("ANALYZE audience_contact, audience_subscription, audience_consentevent")
    queued = populate_deliveries(campaign, audience_for(campaign))
    return {"campaign": campaign.pk, "queued": queued}


# --- tracking hits ----------------------------------------------------------------------------
@dataclass
class Hits:
    answered: int = 0
    refused: int = 0
    per_process: Counter = field(default_factory=Counter)  # web process pid → hits
    lock: threading.Lock = field(default_factory=threading.Lock)


# Hits sent over one keep-alive connection before the client opens a new one. Six connections
# opened at the same instant can all be accepted by whichever web process wakes first (the
# kernel hands a shared listening socket to any process waiting on it); a stop saw all six on
# one process. Mail clients and browsers open new connections all the time, so the hitters do
# too: about sixty connections over the run, each credited to the process holding it.
HITS_PER_CONNECTION = 100


def fetch_hits(
    port: int, campaign_id: int, total: int, stop_at: float, hits: Hits, server_pid: int
) -> None:
    """Opens (4 in 5) and clicks of sent messages, over 6 keep-alive connections at once, each
    replaced by a new one every ``HITS_PER_CONNECTION`` hits; before a connection is closed, the
    web process holding its server side is looked up and credited with its hits."""
    from django.db import close_old_connections

    from tidings.campaigns.models import Delivery, TrackedLink
    from tidings.campaigns.tracking import OPEN, make_token

    def sent_ids() -> list[int]:
        ids = list(
            Delivery.objects.filter(campaign_id=campaign_id, status="sent")
            .order_by("-pk")
            .values_list("pk", flat=True)[:5000]
        )
        close_old_connections()
        return ids

    def settle(connection: http.client.HTTPConnection, answered: int) -> None:
        if answered and connection.sock is not None:
            client_port = connection.sock.getsockname()[1]
            owner = owners_of({client_port}, port, server_pid).get(client_port, 0)
            with hits.lock:
                hits.per_process[owner] += answered  # 0: the server had closed it already
        connection.close()

    links = list(
        TrackedLink.objects.filter(campaign_id=campaign_id).values_list("index", flat=True)
    )
    rng = random.Random(19)
    per_thread = total // 6

    def run(seed: int) -> None:
        local = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = on_connection = 0
        ids: list[int] = []
        while done < per_thread and time.monotonic() < stop_at:
            if not ids or local.random() < 0.01:
                ids = sent_ids()
                if not ids:
                    time.sleep(0.2)
                    continue
            delivery = local.choice(ids)
            if links and local.random() < 0.2:
                path = f"/t/c/{make_token(delivery, campaign_id, local.choice(links))}"
            else:
                path = f"/t/o/{make_token(delivery, campaign_id, OPEN)}"
            try:
                connection.request("GET", path, headers={"User-Agent": "Mozilla/5.0 cluster"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                settle(connection, on_connection)
                on_connection = 0
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            with hits.lock:
                if response.status in (200, 302):
                    hits.answered += 1
                    on_connection += 1
                else:
                    hits.refused += 1
            done += 1
            closing = response.getheader("Connection", "").lower() == "close"
            if closing or on_connection >= HITS_PER_CONNECTION:
                settle(connection, on_connection)
                on_connection = 0
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.002)
        settle(connection, on_connection)

    threads = [threading.Thread(target=run, args=(rng.random(),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def owners_of(client_ports: set[int], server_port: int, root_pid: int) -> dict[int, int]:
    """Which process (pid) holds the server side of each connection from ``client_ports``."""
    inodes: dict[int, int] = {}  # socket inode → client port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port in client_ports:
                inodes[int(parts[9])] = remote_port
    owners: dict[int, int] = {}
    for pid in descendants(root_pid) | {root_pid}:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            match = re.fullmatch(r"socket:\[(\d+)\]", target)
            if match and int(match.group(1)) in inodes:
                owners[inodes.pop(int(match.group(1)))] = pid
    return owners


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# --- the run ----------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # so that `finally` stops every process and drops the database


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    work = Path(tempfile.mkdtemp(prefix="tidings-cluster-"))
    cluster = Cluster(args, work)
    started = time.monotonic()
    checks: list[Check] = []
    figures: dict[str, object] = {}
    try:
        cluster.start_services()
        # This process only reads the database: with Redis configured it would drain the ingest
        # queue too (at exit), as if it were a worker.
        os.environ.update({k: v for k, v in cluster.env().items() if k != "TIDINGS_REDIS_URL"})
        subprocess.run(
            cluster.tidings("migrate", "--verbosity", "0"), env=cluster.env(), cwd=ROOT, check=True
        )
        import django

        django.setup()
        log(f"database {cluster.database_url.rsplit('/', 1)[1]} migrated; seeding")
        data = seed(args.recipients)
        csv = work / "import.csv"
        with csv.open("w") as fp:
            fp.write("email,name\n")
            fp.writelines(
                f"imported{n}@example.com,Imported {n}\n" for n in range(args.import_rows)
            )
        log(f"{data['queued']:,} recipients queued; starting 2 web processes and 3 workers")
        web = cluster.start(
            "web",
            cluster.tidings(
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(cluster.web_port),
                "--workers",
                "2",
                "--threads",
                "2",
            ),
        )
        for number in (1, 2, 3):
            cluster.start_worker(number)
        wait_for_port(cluster.web_port, 120)
        send_started = time.monotonic()
        received = work / "received.tsv"

        def received_count() -> int:
            try:
                with received.open("rb") as fp:
                    return sum(1 for _ in fp)
            except OSError:
                return 0

        total = data["queued"]
        while received_count() < total * 0.05:
            if time.monotonic() - send_started > 300:
                raise RuntimeError("nothing was sent within 5 minutes")
            time.sleep(0.2)
        log(f"{received_count():,} received; starting the import, retention and tracking hits")
        importing = cluster.start(
            "import",
            cluster.tidings(
                "import",
                "contacts",
                str(csv),
                "--list",
                "Imported",
                "--consent-source",
                "cluster test",
            ),
        )
        retention = cluster.start("retention", cluster.tidings("retention", "run"))
        hits = Hits()
        hitter = threading.Thread(
            target=fetch_hits,
            args=(
                cluster.web_port,
                data["campaign"],
                args.hits,
                time.monotonic() + 600,
                hits,
                web.pid,
            ),
        )
        hitter.start()
        while received_count() < total * 0.3:
            time.sleep(0.1)
        victim = cluster.processes["worker1"]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = received_count()
        log(f"worker 1 (pid {victim.pid}) killed with SIGKILL at {killed_at:,} received")
        time.sleep(1.0)
        cluster.start_worker(1)
        log("worker 1 started again")

        from tidings.campaigns.models import Campaign

        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if Campaign.objects.filter(pk=data["campaign"], status="finished").exists():
                break
            time.sleep(0.5)
        finished_after = time.monotonic() - send_started
        hitter.join()
        split = Counter({pid: n for pid, n in hits.per_process.items() if pid})
        importing.wait(timeout=600)
        retention.wait(timeout=600)
        figures.update(
            _gather(
                data,
                hits,
                received,
                work,
                split,
                finished_after,
                killed_at,
                importing,
                retention,
                args,
            )
        )
        # Every tracking row reaches the database through the workers' drain.
        from tidings.campaigns.models import Event

        event_deadline = time.monotonic() + 60
        while time.monotonic() < event_deadline:
            events = Event.objects.filter(campaign_id=data["campaign"]).count()
            if events >= hits.answered:
                break
            time.sleep(0.5)
        figures["tracking events written"] = Event.objects.filter(
            campaign_id=data["campaign"]
        ).count()
    finally:
        cluster.stop_all()
    try:
        checks = _checks(figures, cluster, args)
    finally:
        cluster.drop_database()
    log(f"figures after {time.monotonic() - started:.0f} s:")
    for name, value in figures.items():
        if not name.startswith("_"):
            sys.stdout.write(f"  {name}: {value}\n")
    for check in checks:
        sys.stdout.write(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}\n")
    failed = sum(not c.ok for c in checks)
    sys.stdout.write(f"cluster: {len(checks) - failed} passed, {failed} failed\n")
    if failed:
        sys.stdout.write(f"logs kept in {work}\n")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _gather(
    data, hits, received, work, split, finished_after, killed_at, importing, retention, args
) -> dict:
    from django.db.models import Count, Sum

    from tidings.audience.models import Contact, Import
    from tidings.campaigns.models import Campaign, Delivery, DeliveryWorker, EventCounter

    copies: Counter = Counter()
    ids: dict[str, set[str]] = {}
    for line in received.read_text().splitlines():
        recipient, _, message_id = line.partition("\t")
        copies[recipient] += 1
        ids.setdefault(recipient, set()).add(message_id)
    campaign = Campaign.objects.get(pk=data["campaign"])
    rows = dict(
        Delivery.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    expected = set(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", flat=True)
    )
    recovered = list(
        DeliveryWorker.objects.filter(recovered_at__isnull=False, sends_mail=True).values_list(
            "recovered_rows", flat=True
        )
    )
    the_import = Import.objects.order_by("-pk").first()
    from tidings.lib.models import AuditEntry

    removed: Counter = Counter()  # every sweep: the CLI's, and the workers' periodic one
    for details in AuditEntry.objects.filter(action="retention.run").values_list(
        "details", flat=True
    ):
        removed.update({k: v for k, v in (details.get("counts") or {}).items() if v})
        removed["contacts"] += details.get("contacts", 0)
    counters = EventCounter.objects.filter(
        campaign=campaign, bucket=0, link=EventCounter.ALL_LINKS
    ).aggregate(total=Sum("total"))
    return {
        "recipients": data["queued"],
        "campaign status": campaign.status,
        "rows by state": rows,
        "messages received by the sink": sum(copies.values()),
        "recipients who got it": len(set(copies) & expected),
        "second copies": sum(n - 1 for n in copies.values()),
        "rows returned by recoveries": recovered,
        "received when worker 1 was killed": killed_at,
        "seconds to finish the campaign": round(finished_after, 1),
        "send rate (messages/s)": round(data["queued"] / finished_after, 1),
        "tracking hits answered": hits.answered,
        "tracking hits refused": hits.refused,
        "hits per web process (pid: hits)": dict(split),
        "tracking counter total": counters["total"] or 0,
        "import status / created": f"{the_import.status} / {the_import.created:,}"
        if the_import
        else "none",
        "import exit status": importing.returncode,
        "retention exit status": retention.returncode,
        "retention removed": dict(removed),
        "contacts left of the seeded enquirers": Contact.objects.filter(
            email__startswith="old-enquirer"
        ).count(),
        "_missing": len(expected - set(copies)),
        # What the rows of (up to five) missing recipients say, to tell a lost message from a
        # miscount if this check ever fails (test addresses only: no personal data).
        "_missing_rows": list(
            Delivery.objects.filter(
                campaign=campaign, contact__email__in=sorted(expected - set(copies))[:5]
            ).values_list("status", "attempts", "sent_at", "leased_by", "transport")
        ),
        "_more_than_one_message_id": sum(1 for s in ids.values() if len(s) > 1),
        "_import_created": the_import.created if the_import else 0,
        "_import_status": the_import.status if the_import else "",
    }


def _checks(figures: dict, cluster: Cluster, args) -> list[Check]:
    from tidings.analytics.models import PageView  # noqa: F401 - Django is set up

    checks = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append(Check(name, bool(ok), detail))

    if not figures:
        check("the run", False, "did not get as far as the figures")
        return checks
    recipients = figures["recipients"]
    check(
        "campaign finished, every row sent",
        figures["campaign status"] == "finished"
        and figures["rows by state"] == {"sent": recipients},
        f"{figures['campaign status']}, {figures['rows by state']}",
    )
    check(
        "nobody lost",
        figures["_missing"] == 0 and figures["recipients who got it"] == recipients,
        f"{figures['recipients who got it']:,} of {recipients:,} received it"
        + (f"; rows of some missing: {figures['_missing_rows']}" if figures["_missing"] else ""),
    )
    recovered = figures["rows returned by recoveries"]
    check(
        "second copies only within the in-flight window",
        figures["second copies"] <= sum(recovered) and max(recovered, default=0) <= WINDOW,
        f"{figures['second copies']} second copies; recoveries returned {recovered} rows "
        f"(window {WINDOW} per worker)",
    )
    check(
        "a second copy is the same message (same Message-ID)",
        figures["_more_than_one_message_id"] == 0,
        f"{figures['_more_than_one_message_id']} recipients got two different Message-IDs",
    )
    check(
        "the killed worker's rows were recovered",
        len(recovered) >= 1,
        f"{len(recovered)} recovery(ies)",
    )
    check(
        "tracking events equal the hits answered",
        figures["tracking events written"]
        == figures["tracking hits answered"]
        == figures["tracking counter total"]
        and figures["tracking hits refused"] == 0,
        f"{figures['tracking hits answered']:,} hits, {figures['tracking events written']:,} "
        f"events, counters {figures['tracking counter total']:,}",
    )
    split = figures["hits per web process (pid: hits)"]
    check(
        "both web processes answered hits",
        len(split) >= 2 and min(split.values()) > 0,
        f"hits per process: {split}",
    )
    check(
        "the import ran alongside and finished",
        figures["_import_status"] == "finished"
        and figures["_import_created"] == args.import_rows
        and figures["import exit status"] == 0,
        figures["import status / created"],
    )
    check(
        "the retention sweep ran alongside and removed the expired records",
        figures["retention exit status"] == 0
        and figures["contacts left of the seeded enquirers"] == 0,
        f"{figures['contacts left of the seeded enquirers']} of {SEEDED_ENQUIRIES} expired "
        "enquirers left",
    )
    text = "\n".join(path.read_text(errors="replace") for path in cluster.log_files)
    deadlocks = len(re.findall(r"deadlock", text, re.IGNORECASE))
    tracebacks = text.count("Traceback (most recent call last)")
    check("no deadlock in any log", deadlocks == 0, f"{deadlocks} mentions")
    check("no traceback in any log", tracebacks == 0, f"{tracebacks} tracebacks")
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--hits", type=int, default=6_000, help="opens and clicks to fetch")
    parser.add_argument("--import-rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the campaign")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "")
        if os.environ.get("DATABASE_URL", "").startswith("postgres")
        else "postgres://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (the test makes and drops its own database beside it)",
    )
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
