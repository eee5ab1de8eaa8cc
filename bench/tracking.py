"""Benchmark: the open pixel and the click redirect under load, on the production server.

    .venv/bin/python -m bench.tracking [--seconds 5] [--workers 2] [--concurrency 64]

A fresh PostgreSQL database ``tidings_bench_tracking_<pid>`` is made beside ``--database-url``
(default: postgres on 127.0.0.1) and dropped at the end; a sent campaign of ``--deliveries``
messages with five links is put in it.  ``tidings.wsgi`` is served by granian (what ``tidings
serve`` runs: WSGI, ``--workers`` processes, 4 blocking threads each) on 127.0.0.1, with the
bench's site (``bench.tracking_site``: tidings' URLs plus a baseline "hello" view, same middleware).

An async client (aiohttp, keep-alive, ``--concurrency`` requests in flight, in this process)
requests for ``--seconds`` each, after a one-second warm-up:
- the baseline ``/bench/hello``,
- the pixel ``/t/o/<token>`` (rotating over every delivery's token),
- the click redirect ``/t/c/<token>`` (rotating over deliveries and links),
and prints requests/s, median and 99th-percentile latency, and each endpoint's ratio to the
baseline.  Every answer's status is checked (200, 200, 302).  Client and server share the two
cores, so these are lower bounds for the server alone.

At the end the server is stopped with SIGINT (a graceful shutdown: the ingest buffers are
flushed) and the events in the database are counted against the tracking requests made: none
may be lost.  Then the CPU time per request of each, in this process without a server (little
affected by other load on the machine).  Figures are printed, not asserted; the target is
≥ 3,000 requests/s for each tracking endpoint.

Measured on the 2-core machine (shared): baseline 2,584 req/s; pixel 3,403 and click 3,407
req/s (ratio 1.32 — the client is then the limit); 20,201 of 20,201 events written after the
graceful stop; CPU per request 244 µs hello (Django), 26 µs pixel, 40 µs click (the fast path of
``campaigns/tracking_wsgi.py``).  Those figures were with one browser user agent; with the mix
of ``AGENTS`` (``make bench`` quick scale, 2026-12-06, 1 s each, load average 9.0): baseline 2,923
req/s, pixel 5,770, click 5,335 (1.82×); 46% of the events classified as machine; CPU per request
8 µs pixel, 6 µs pixel from Apple's proxy, 8 µs click, 13 µs click from a headless scanner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

from bench._report import report
from bench.common import ROOT, Database, free_port

LINKS = 5

# Who asks for a pixel or follows a link in real mail, in rough proportion (20 slots): people's
# browsers and mail apps, Apple Mail Privacy Protection's proxy (the bare "Mozilla/5.0"), Gmail's
# and Yahoo's image proxies, and link scanners of mail gateways.  The last seven are machines
# (``tracking.is_machine_request``), so the classification path runs on a third of the requests.
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
] * 2 + [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1",
    "Mozilla/5.0",  # Apple MPP
    "Mozilla/5.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (compatible; Barracuda Sentinel; +https://barracuda.com)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
]
MACHINE_AGENTS = sum(
    1 for a in AGENTS if a == "Mozilla/5.0" or re.search(r"Proxy|Barracuda|Headless", a)
)
# Of every 10 messages clicked, one is clicked on all its links in a row by a scanner (rule 5).
BURST_EVERY = 10


def seed(deliveries: int) -> tuple[list[str], list[str], int]:
    """A sent campaign: its pixel tokens, click tokens, and its id."""
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.models import Campaign, Delivery, TrackedLink
    from tidings.campaigns.tracking import TokenSigner

    campaign = Campaign.objects.create(
        name="Bench", subject="Bench", topic="product news", status="finished"
    )
    sent_at = timezone.now() - timedelta(hours=1)
    Delivery.objects.bulk_create(
        [
            Delivery(campaign=campaign, status=Delivery.Status.SENT, sent_at=sent_at)
            for _ in range(deliveries)
        ],
        batch_size=5000,
    )
    for i in range(LINKS):
        TrackedLink.objects.create(campaign=campaign, index=i, url=f"https://example.net/{i}")
    signer = TokenSigner(campaign.pk)
    ids = list(Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True))
    pixels = [signer.token(pk) for pk in ids]
    clicks = []
    for i, pk in enumerate(ids):
        if i % BURST_EVERY == 0:  # a scanner follows every link of this message at once
            clicks.extend(signer.token(pk, link) for link in range(LINKS))
        else:
            clicks.append(signer.token(pk, i % LINKS))
    return pixels, clicks, campaign.pk


def start_server(db: Database, port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            "4",
            "--no-access-log",
            "--log-level",
            "warning",
            "tidings.wsgi:application",
        ],
        env=db.env(),
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /bench/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer within a minute")


async def load(
    base: str, paths: list[str], seconds: float, concurrency: int, status: int
) -> tuple[int, int, list[float]]:
    """Requests answered with ``status``, other answers, and latencies (s) of a sample."""
    import aiohttp

    done = 0
    wrong = 0
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    agents = [{"User-Agent": agent} for agent in AGENTS]
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector) as session:

        async def client(offset: int) -> None:
            nonlocal done, wrong
            i = offset
            while time.monotonic() < stop:
                path = paths[i % len(paths)]
                i += concurrency
                started = time.perf_counter()
                headers = agents[i % len(agents)]
                async with session.get(path, allow_redirects=False, headers=headers) as response:
                    await response.read()
                    if response.status == status:
                        done += 1
                    else:
                        wrong += 1
                if i % 16 == 0:
                    latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client(n) for n in range(concurrency)))
    return done, wrong, latencies


def run(base: str, name: str, paths: list[str], args, status: int) -> tuple[float, int]:
    """Requests/s over ``--seconds`` after a warm-up; and every answer given, warm-up included."""
    warm, _, _ = asyncio.run(load(base, paths, 1.0, args.concurrency, status))
    started = time.perf_counter()
    done, wrong, latencies = asyncio.run(load(base, paths, args.seconds, args.concurrency, status))
    elapsed = time.perf_counter() - started
    rate = done / elapsed
    latencies.sort()
    p50 = statistics.median(latencies) * 1000 if latencies else 0
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0
    print(
        f"  {name:<22} {rate:>8,.0f} req/s   p50 {p50:5.1f} ms   p99 {p99:5.1f} ms"
        f"   ({done:,} answers{f', {wrong} WRONG' if wrong else ''})"
    )
    return rate, warm + done


def cpu_per_request(paths: dict[str, tuple[str, str]], requests: int = 3000) -> dict[str, float]:
    """CPU seconds per request through ``tidings.wsgi.application`` in this process, no network
    or server: the best of three runs (``time.process_time``, so other load on the machine
    matters little).  The pixel and click go through the fast path; "hello" through Django."""
    import io

    from tidings.lib import ingest
    from tidings.wsgi import application

    def environ(path: str, agent: str) -> dict:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_USER_AGENT": agent,
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
        }

    def start_response(status, headers):
        pass

    result = {}
    for name, (path, agent) in paths.items():
        for _ in range(100):
            b"".join(application(environ(path, agent), start_response))
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for _ in range(requests):
                b"".join(application(environ(path, agent), start_response))
            best = min(best, (time.process_time() - started) / requests)
        result[name] = best
    ingest.flush()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1",
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2 s each, 5,000 deliveries")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.deliveries = 2.0, 5_000

    db = Database(
        "tracking",
        args.database_url,
        settings="bench.tracking_site",
        allowed_hosts="127.0.0.1,localhost",
    )
    db.create()
    server = None
    try:
        pixels, clicks, campaign_id = seed(args.deliveries)
        port = free_port()
        server = start_server(db, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        print(
            f"granian WSGI, {args.workers} workers x 4 threads; aiohttp client, "
            f"{args.concurrency} in flight; {args.seconds:g} s each; {os.cpu_count()} cores shared"
            f"; load average {os.getloadavg()[0]:.1f}"
        )
        hello, _ = run(base, "baseline /bench/hello", ["/bench/hello"], args, 200)
        pixel, pixels_answered = run(
            base, "open pixel /t/o/…", [f"/t/o/{t}" for t in pixels], args, 200
        )
        click, clicks_answered = run(
            base, "click /t/c/… (302)", [f"/t/c/{t}" for t in clicks], args, 302
        )
        print(f"  ratio to baseline: pixel {pixel / hello:.2f}, click {click / hello:.2f}")
        print(
            f"  target ≥ 3,000 req/s: pixel {'met' if pixel >= 3000 else 'NOT met'}, "
            f"click {'met' if click >= 3000 else 'NOT met'}"
        )
        slower, name = min((pixel, "open pixel"), (click, "click redirect"))
        report(
            "tracking",
            f"{name} (the slower), mixed user agents",
            slower,
            "req/s",
            baseline=hello,
            baseline_label="a bare Django view",
            target=3000,
            higher_is_better=True,
            scale=f"{args.workers} granian workers, {args.seconds:g} s",
        )
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        server = None
        from tidings.campaigns.models import Event, EventCounter

        events = Event.objects.filter(campaign_id=campaign_id).count()
        machine = Event.objects.filter(campaign_id=campaign_id, machine=True).count()
        counted = sum(
            EventCounter.objects.filter(campaign_id=campaign_id, link=-1, bucket=0).values_list(
                "total", flat=True
            )
        )
        made = pixels_answered + clicks_answered
        print(
            f"  events written after a graceful stop: {events:,} of {made:,} tracking answers"
            f" (counters: {counted:,}){'' if events == made else '  MISMATCH'}"
        )
        print(
            f"  classified as machine: {machine:,} ({machine / max(events, 1):.0%}; "
            f"{MACHINE_AGENTS} of {len(AGENTS)} user agents are proxies or scanners, and one "
            f"clicked message in {BURST_EVERY} is a burst on every link)"
        )
        Event.objects.filter(campaign_id=campaign_id).delete()
        person, proxy, scanner = AGENTS[0], "Mozilla/5.0", AGENTS[-1]
        cpu = cpu_per_request(
            {
                "hello": ("/bench/hello", person),
                "pixel": (f"/t/o/{pixels[0]}", person),
                "pixel, Apple MPP proxy": (f"/t/o/{pixels[0]}", proxy),
                "click": (f"/t/c/{clicks[1]}", person),
                "click, headless scanner": (f"/t/c/{clicks[1]}", scanner),
            }
        )
        print("CPU per request in-process (no server, no network; best of 3 x 3,000):")
        for name, seconds in cpu.items():
            print(
                f"  {name:<24} {seconds * 1e6:6.0f} µs  = {1 / seconds:>8,.0f} req/s per core"
                f"   ratio to hello {cpu['hello'] / seconds:5.2f}"
            )
    finally:
        if server is not None:
            server.kill()
            server.wait()
        db.drop()


if __name__ == "__main__":
    main()
