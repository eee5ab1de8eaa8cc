"""Benchmark: sending a personalised campaign through ``tidings worker`` to loopback SMTP sinks.

    .venv/bin/python -m bench.delivery                       # 100,000 recipients, both sinks
    .venv/bin/python -m bench.delivery --recipients 20000 --workers 1 --sinks smtp-sink
    .venv/bin/python -m bench.delivery --flat 1000000        # + memory with a 10k and a 1M queue

A fresh PostgreSQL database ``bench_delivery_<pid>`` is made beside the one named by
``--database-url`` (default: postgres on 127.0.0.1) and dropped at the end.  Contacts and their
subscriptions are generated in SQL (``generate_series``); the campaign's queue is made by
``delivery.populate_deliveries`` (timed).  The campaign is personalised (name, company, an
attribute) with a body of about 10 KB, rendered through the real template engine.

For each sink (aiosmtpd in its own process; Postfix's ``smtp-sink``, extracted from the Debian
package into ``var/bench/postfix`` on first use):
- the practical limit: a bare aiosmtplib loop sending pre-built 10 KB messages to the same sink on
  10 connections (what the engine would do with no database, rendering or MIME work at all);
- the engine: the same campaign sent by 1 and then 2 ``tidings worker --delivery-only``
  processes (real subprocesses), timed from the first to the last message recorded as sent
  (``sent_at``), with each worker's peak RSS (VmHWM).
Then the cost of DKIM signing a message (dkimpy) and a short run with DKIM on, and with
``--flat``, the worker's RSS while sending from queues of 10,000 and of ``--flat`` rows.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Database, free_port, wait_for_port

POSTFIX_DIR = ROOT / "var" / "bench" / "postfix"

BODY = (
    "# News for {{ contact.first_name | default('you') }}\n\n"
    "Hello {{ contact.name }}, here is what changed at {{ contact.company }} this month, and "
    "what your {{ contact.attributes.plan | default('free') }} plan gets you.\n\n"
    + "\n\n".join(
        f"## Part {n}\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
        "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, "
        "quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
        "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat."
        for n in range(1, 9)
    )
)


# --- sinks -----------------------------------------------------------------------------------
def serve_aiosmtpd(port: int) -> None:
    """The aiosmtpd sink (run in its own process): accepts and forgets every message."""
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def start_aiosmtpd() -> tuple[subprocess.Popen, int]:
    port = free_port()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.delivery", "--serve-aiosmtpd", str(port)], cwd=ROOT
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    wait_for_port(port)
    return process, port


def postfix_smtp_sink() -> Path | None:
    """The extracted smtp-sink binary, extracting the Debian package on first use."""
    binary = POSTFIX_DIR / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        fetched = subprocess.run(
            ["apt-get", "download", "postfix"], cwd=tmp, capture_output=True, check=False
        )
        debs = list(Path(tmp).glob("postfix_*.deb"))
        if fetched.returncode != 0 or not debs:
            return None
        POSTFIX_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(POSTFIX_DIR)], check=True)
    return binary if binary.exists() else None


def start_smtp_sink(binary: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "LD_LIBRARY_PATH": str(POSTFIX_DIR / "usr" / "lib" / "postfix")}
    command = [str(binary)]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    process = subprocess.Popen(
        [*command, "-c", f"127.0.0.1:{port}", "1000"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process, port


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


# --- the practical limit ---------------------------------------------------------------------
def bare_loop(port: int, messages: int, connections: int = 10) -> float:
    """Messages/s of aiosmtplib alone sending pre-built 10 KB messages on ``connections``."""
    import aiosmtplib

    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n") * 140
    prebuilt = [
        (
            f"From: news@example.co.uk\r\nTo: reader{i}@example.org\r\nSubject: News\r\n"
            f"Message-ID: <bare{i}@example.co.uk>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
        ).encode()
        for i in range(messages)
    ]

    async def run() -> float:
        todo = list(range(messages))

        async def connection() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await client.connect()
            while todo:
                i = todo.pop()
                await client.sendmail("news@example.co.uk", [f"reader{i}@example.org"], prebuilt[i])
            await client.quit()

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        return messages / (time.perf_counter() - started)

    return asyncio.run(run())


# --- the database ----------------------------------------------------------------------------
class Bench(Database):
    def __init__(self, args) -> None:
        super().__init__("delivery", args.database_url, TIDINGS_FROM_EMAIL="news@example.co.uk")
        self.args = args

    def sql(self, statement: str, params=()) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    def generate(self, contacts: int, lists: dict[str, int]) -> dict[str, int]:
        """``contacts`` people (one in five with a non-ASCII name) and a list per entry of
        ``lists`` (name → how many of the first contacts subscribe); returns list ids."""
        from tidings.audience.models import MailingList

        started = time.perf_counter()
        self.sql(
            "INSERT INTO audience_contact (email, name, phone, company, job_title, work_address,"
            " attributes, created_at, updated_at) "
            "SELECT 'reader' || g || '@example.org', "
            "CASE WHEN g %% 5 = 0 THEN 'Zoë Müller ' || g ELSE 'Reader Number' || g END, "
            "'', 'Company ' || (g %% 500), '', '', "
            "CASE WHEN g %% 3 = 0 THEN '{\"plan\": \"pro\"}'::jsonb ELSE '{}'::jsonb END, "
            "now(), now() FROM generate_series(1, %s) AS g",
            [contacts],
        )
        ids = {}
        for name, size in lists.items():
            mailing_list = MailingList.objects.create(name=name, topic="product news")
            ids[name] = mailing_list.pk
            self.sql(
                "INSERT INTO audience_subscription (contact_id, mailing_list_id, status, "
                "created_at, confirmed_at, updated_at) "
                "SELECT id, %s, 'confirmed', now(), now(), now() FROM audience_contact "
                "ORDER BY id LIMIT %s",
                [mailing_list.pk, size],
            )
        self.sql("VACUUM ANALYZE")
        print(
            f"  generated {contacts:,} contacts and {sum(lists.values()):,} subscriptions "
            f"in {time.perf_counter() - started:.1f} s"
        )
        return ids

    def campaign(self, list_id: int, name: str) -> int:
        from tidings.campaigns.models import Campaign, Sender
        from tidings.campaigns.queue import populate_deliveries
        from tidings.campaigns.rendering import ensure_default_layout
        from tidings.campaigns.targeting import audience_for

        sender, _ = Sender.objects.get_or_create(
            email="news@example.co.uk", defaults={"name": "Example News", "verified": True}
        )
        campaign = Campaign.objects.create(
            name=name,
            subject="{{ contact.first_name }}, your news from Example",
            body=BODY,
            topic="product news",
            sender=sender,
            layout=ensure_default_layout(),
            status=Campaign.Status.PAUSED,
        )
        campaign.lists.set([list_id])
        started = time.perf_counter()
        queued = populate_deliveries(campaign, audience_for(campaign))
        elapsed = time.perf_counter() - started
        self.sql("VACUUM ANALYZE campaigns_delivery")
        print(
            f"  queued {queued:,} deliveries with populate_deliveries in {elapsed:.1f} s "
            f"({queued / elapsed:,.0f} rows/s)"
        )
        return campaign.pk

    def reset(self, campaign_id: int) -> None:
        """Every row queued again; the campaign sending."""
        self.sql(
            "UPDATE campaigns_delivery SET status = 'queued', attempts = 0, sent_at = NULL, "
            "leased_by = '', leased_until = NULL, next_attempt_at = NULL, error = '' "
            "WHERE campaign_id = %s",
            [campaign_id],
        )
        self.sql("VACUUM ANALYZE campaigns_delivery")
        self.sql("UPDATE campaigns_campaign SET status = 'sending' WHERE id = %s", [campaign_id])

    def pause(self, campaign_id: int) -> None:
        self.sql("UPDATE campaigns_campaign SET status = 'paused' WHERE id = %s", [campaign_id])

    def progress(self, campaign_id: int) -> tuple[int, int, float]:
        """(rows sent, rows not final, seconds between the first and last send)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE status = 'sent'), "
                "count(*) FILTER (WHERE status IN ('queued', 'sending')), "
                "EXTRACT(EPOCH FROM max(sent_at) - min(sent_at)) "
                "FROM campaigns_delivery WHERE campaign_id = %s",
                [campaign_id],
            )
            sent, left, seconds = cursor.fetchone()
        return sent, left, float(seconds or 0)

    # -- workers --
    def run_workers(
        self, campaign_id: int, port: int, count: int, *, limit_seconds: float = 600, **env: str
    ) -> dict:
        """Send the campaign with ``count`` worker processes; returns figures."""
        self.reset(campaign_id)
        environment = self.env(TIDINGS_SMTP_URL=f"smtp://127.0.0.1:{port}?tls=none", **env)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tidings.cli", "worker", "--delivery-only"],
                env=environment,
                cwd=ROOT,
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + limit_seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(0.5)
                sent, left, _ = self.progress(campaign_id)
                if left == 0:
                    break
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError("a worker exited")
            rss = [peak_rss(w.pid) for w in workers]
        finally:
            self.pause(campaign_id)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
        sent, left, seconds = self.progress(campaign_id)
        return {
            "sent": sent,
            "rate": sent / seconds if seconds else 0.0,
            "rss": rss,
            "complete": left == 0,
        }


def peak_rss(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dkim_cost(messages: int = 200) -> tuple[float, float]:
    """Microseconds to sign one 10 KB campaign message (RSA 2048), as tidings does it and with
    dkimpy's pure-Python RSA step."""
    from tidings.campaigns.dkim import DkimSigner, _generate_rsa_pem
    from tidings.campaigns.messages import MessageFactory

    signer = DkimSigner("example.co.uk", "bench", _generate_rsa_pem(2048))
    factory = MessageFactory(
        from_header="Example News <news@example.co.uk>",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    data = factory.build(
        to="reader@example.org",
        subject="News",
        text="Lorem ipsum dolor sit amet.\n" * 200,
        html="<p>Lorem ipsum dolor sit amet.</p>\n" * 200,
        message_id="<x@example.co.uk>",
        headers={"List-Unsubscribe": "<https://example.co.uk/u/x>"},
    )
    for _ in range(5):  # the first signature imports and parses
        signer.sign(data)
    started = time.perf_counter()
    for _ in range(messages):
        signer.sign(data)
    signing = (time.perf_counter() - started) / messages * 1e6
    pure = dkimpy_rsa_cost()
    return signing, pure


def dkimpy_rsa_cost(messages: int = 20) -> float:
    """Microseconds of dkimpy's own pure-Python RSA step (what tidings hands to OpenSSL)."""
    import hashlib

    import dkim as dkimpy
    from dkim.crypto import parse_pem_private_key

    from tidings.campaigns.dkim import _generate_rsa_pem, _pure_python_sign

    key = parse_pem_private_key(_generate_rsa_pem(2048))
    digest = dkimpy.HashThrough(hashlib.sha256(b"headers"))
    started = time.perf_counter()
    for _ in range(messages):
        _pure_python_sign(digest, key)
    return (time.perf_counter() - started) / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1"
    )
    parser.add_argument("--sinks", default="aiosmtpd,smtp-sink")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--bare-messages", type=int, default=20_000)
    parser.add_argument("--dkim-seconds", type=float, default=15, help="0: skip the DKIM run")
    parser.add_argument(
        "--flat", type=int, default=0, help="also measure RSS with a queue this big"
    )
    parser.add_argument("--serve-aiosmtpd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_aiosmtpd:
        serve_aiosmtpd(args.serve_aiosmtpd)
        return
    if not args.database_url.startswith("postgres"):
        parser.error("the delivery benchmark needs PostgreSQL (--database-url postgres://...)")

    bench = Bench(args)
    print(f"database {bench.name}; {os.cpu_count()} CPUs")
    bench.create()
    try:
        run(bench, args)
    finally:
        bench.drop()


def run(bench: Bench, args) -> None:
    lists = {"main": args.recipients}
    if args.flat:
        lists |= {"small": 10_000, "huge": args.flat}
    ids = bench.generate(max(lists.values()), lists)
    campaign = bench.campaign(ids["main"], "Benchmark")
    worker_counts = [int(n) for n in args.workers.split(",") if n]

    for sink in [s.strip() for s in args.sinks.split(",") if s.strip()]:
        if sink == "smtp-sink":
            binary = postfix_smtp_sink()
            if binary is None:
                print("\nsmtp-sink: skipped (could not fetch Postfix with apt-get download)")
                continue
            process, port = start_smtp_sink(binary)
        else:
            process, port = start_aiosmtpd()
        try:
            print(f"\n{sink} on port {port}")
            limit = bare_loop(port, args.bare_messages)
            print(f"  bare aiosmtplib loop, 10 connections, pre-built 10 KB: {limit:,.0f} msg/s")
            for count in worker_counts:
                result = bench.run_workers(campaign, port, count)
                rss = ", ".join(f"{r:.0f}" for r in result["rss"])
                print(
                    f"  {count} worker{'s' if count > 1 else ''}: {result['sent']:,} messages, "
                    f"{result['rate']:,.0f} msg/s ({result['rate'] / limit:.0%} of the bare loop)"
                    f", peak RSS {rss} MB" + ("" if result["complete"] else " (incomplete)")
                )
        finally:
            stop(process)

    if args.dkim_seconds:
        signing, pure = dkim_cost()
        print(
            f"\nDKIM (RSA 2048): {signing:,.0f} µs to sign one message (dkimpy, RSA by OpenSSL);"
            f" dkimpy's own pure-Python RSA step alone: {pure:,.0f} µs"
        )
        from tidings.campaigns.dkim import generate_key

        os.environ["TIDINGS_DATA_DIR"] = str(bench.data_dir)
        from django.conf import settings

        settings.DATA_DIR = bench.data_dir
        generate_key("example.co.uk", force=True)
        binary = postfix_smtp_sink()
        process, port = start_smtp_sink(binary) if binary else start_aiosmtpd()
        try:
            result = bench.run_workers(campaign, port, 1, limit_seconds=args.dkim_seconds)
            sink = "smtp-sink" if binary else "aiosmtpd"
            print(f"  1 worker signing every message ({sink}): {result['rate']:,.0f} msg/s")
        finally:
            stop(process)
            shutil.rmtree(bench.data_dir / "dkim", ignore_errors=True)

    if args.flat:
        print("\nworker memory and queue size (aiosmtpd, 20 s of sending each)")
        process, port = start_aiosmtpd()
        try:
            for name in ("small", "huge"):
                queue = bench.campaign(ids[name], f"Queue of {name}")
                result = bench.run_workers(queue, port, 1, limit_seconds=20)
                print(
                    f"  queue of {lists[name]:,}: {result['sent']:,} sent, peak RSS "
                    f"{result['rss'][0]:.0f} MB"
                )
        finally:
            stop(process)


if __name__ == "__main__":
    main()
