"""`make demo PORT=…`: the demo prints and mails links to the port it serves on.

Run for real, as the Makefile runs it: `tidings demo --port P`, then `tidings serve --port P
--with-worker` in separate processes with their own SQLite data directory and no
TIDINGS_BASE_URL; a visitor signs up on the served page and the worker mails the confirmation.
"""

from __future__ import annotations

import email
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.campaigns.delivery_helpers import free_port
from tidings.web.demo import follow_serving_address, serving_base_url


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "TIDINGS_"))
    }
    env["TIDINGS_DATA_DIR"] = str(data_dir)
    env["TIDINGS_REQUIRE_2FA"] = "none"
    return env


def wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def confirmation_mails(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT message FROM campaigns_outboxmessage").fetchall()
    return [bytes(row[0]) for row in rows]


@contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    """`tidings serve --port P --with-worker`, as `make demo` runs it, until the block ends;
    ``finished["output"]`` is what it printed, once it has stopped."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port), "--with-worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the web and mail workers end with it
    )
    finished: dict[str, str] = {}
    try:
        wait_for(f"http://127.0.0.1:{port}/privacy")
        yield server, finished
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            finished["output"], _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            finished["output"], _ = server.communicate()


def sign_up(base: str, address: str, name: str) -> None:
    """Sign up on the demo's newsletter form for every list it offers."""
    page = urllib.request.urlopen(f"{base}/f/newsletter", timeout=10).read().decode()
    boxes = re.findall(r'name="(list_\d+)"', page)
    assert boxes, "the demo's sign-up form shows its lists"
    data = {"email": address, "name": name, **dict.fromkeys(boxes, "on")}
    request = urllib.request.Request(
        f"{base}/f/newsletter", data=urllib.parse.urlencode(data).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).read()


def test_the_demo_on_another_port_prints_and_mails_links_to_that_port(tmp_path):
    port = free_port()
    env = clean_env(tmp_path)
    tidings = [sys.executable, "-m", "tidings"]

    demo = subprocess.run(
        [*tidings, "demo", "--port", str(port)], env=env, capture_output=True, text=True, check=True
    )
    assert f"Open http://127.0.0.1:{port}/ and sign in" in demo.stdout

    base = f"http://127.0.0.1:{port}"
    with serving(env, port) as (server, finished):
        sign_up(base, "ada@example.net", "Ada")
        deadline = time.monotonic() + 90
        while not (mails := confirmation_mails(tmp_path / "tidings.sqlite3")):
            assert time.monotonic() < deadline, "the worker sent no confirmation"
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
    output = finished["output"]

    assert f"links in pages and mail use {base}/" in output
    message = email.message_from_bytes(mails[-1], policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    links = re.findall(r"https?://\S+", text)
    assert any(link.startswith(f"{base}/c/") for link in links), links
    assert not [link for link in links if ":8000" in link]


def test_an_explicit_base_url_is_left_alone(monkeypatch, settings):
    monkeypatch.setenv("TIDINGS_BASE_URL", "https://news.example.com")
    settings.TIDINGS_BASE_URL = "https://news.example.com"
    assert follow_serving_address("0.0.0.0", 8123) == "https://news.example.com"  # noqa: S104
    assert settings.TIDINGS_BASE_URL == "https://news.example.com"


def test_without_a_base_url_links_follow_the_serving_address(monkeypatch, settings):
    monkeypatch.setenv("TIDINGS_BASE_URL", "")  # recorded, so the variable is restored after
    monkeypatch.delenv("TIDINGS_BASE_URL")
    # Through the fixture, so that what follow_serving_address changes is undone after.
    settings.TIDINGS_BASE_URL = settings.TIDINGS_BASE_URL
    settings.ALLOWED_HOSTS = list(settings.ALLOWED_HOSTS)
    settings.CSRF_TRUSTED_ORIGINS = list(settings.CSRF_TRUSTED_ORIGINS)
    assert follow_serving_address("192.0.2.10", 8123) == "http://192.0.2.10:8123"
    assert settings.TIDINGS_BASE_URL == "http://192.0.2.10:8123"
    assert os.environ["TIDINGS_BASE_URL"] == "http://192.0.2.10:8123"
    assert "192.0.2.10" in settings.ALLOWED_HOSTS


def test_an_unspecified_bind_address_links_to_this_machine():
    assert serving_base_url("0.0.0.0", 8123) == "http://127.0.0.1:8123"  # noqa: S104
    assert serving_base_url("::1", 9000) == "http://[::1]:9000"


def test_make_demo_gives_the_help_desk_a_support_address():
    """Without one the demo's enquiries show no reply form ("a support address is needed"):
    the first thing a tester of the help desk met.  An address of the tester's own wins."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    dry = subprocess.run(
        ["make", "-n", "demo", "PORT=8123"], cwd=root, env=env, capture_output=True, text=True
    )
    line = next(line for line in dry.stdout.replace("\\\n", " ").splitlines() if " serve " in line)
    assert "--port 8123" in line
    # The recipe's line as the shell runs it, with the server swapped for printing what it gets.
    printing = re.sub(r"\S*/bin/tidings serve .*$", "printenv TIDINGS_SUPPORT_ADDRESS", line)
    for given, expected in [
        (None, "Example Support <support@example.co.uk>"),
        ("help@mine.example", "help@mine.example"),
    ]:
        mine = {} if given is None else {"TIDINGS_SUPPORT_ADDRESS": given}
        printed = subprocess.run(
            ["bash", "-c", printing], env={**env, **mine}, capture_output=True, text=True
        )
        assert printed.stdout.strip() == expected


def test_make_demo_mails_from_an_example_address_not_localhost():
    """The demo's confirmations and notices came from newsletter@localhost (the production
    default, for an installation that has not said its address): `make demo` gives the demo
    command and the server (whose worker sends) newsletter@example.co.uk; a tester's own wins."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    dry = subprocess.run(
        ["make", "-n", "demo", "PORT=8123"], cwd=root, env=env, capture_output=True, text=True
    )
    lines = [
        line
        for line in dry.stdout.replace("\\\n", " ").splitlines()
        if re.search(r"/bin/tidings (demo|serve) ", line)
    ]
    assert len(lines) == 2
    for line in lines:
        printing = re.sub(r"\S*/bin/tidings (demo|serve) .*$", "printenv TIDINGS_FROM_EMAIL", line)
        for given, expected in [
            (None, "newsletter@example.co.uk"),
            ("news@mine.example", "news@mine.example"),
        ]:
            mine = {} if given is None else {"TIDINGS_FROM_EMAIL": given}
            printed = subprocess.run(
                ["bash", "-c", printing], env={**env, **mine}, capture_output=True, text=True
            )
            assert printed.stdout.strip() == expected, line


def test_a_killed_background_worker_is_started_again_and_mail_goes_out(tmp_path):
    """`serve --with-worker` (make demo): a worker killed by a tester (or the OOM killer) left
    pages working and mail silently stopped; now the serving process starts a new one."""
    port = free_port()
    env = clean_env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "tidings", "demo", "--port", str(port)],
        env=env,
        capture_output=True,
        check=True,
    )
    base = f"http://127.0.0.1:{port}"
    with serving(env, port) as (server, finished):

        def workers() -> list[int]:
            in_session, found = set(), []
            for proc in Path("/proc").iterdir():
                try:
                    cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                    stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[3]) == server.pid:
                    in_session.add(int(proc.name))
                elif cmdline[-3:] == [b"tidings", b"worker", b""]:
                    found.append((int(proc.name), int(stat[1])))
            # `python -m tidings worker` in a session of its own, a child of serve's keeper
            return [pid for pid, parent in found if parent in in_session]

        deadline = time.monotonic() + 60
        while not (first := workers()):
            assert time.monotonic() < deadline, "serve --with-worker started no worker"
            time.sleep(0.2)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (second := [pid for pid in workers() if pid != first[0]]):
            assert time.monotonic() < deadline, "the killed worker was not started again"
            assert server.poll() is None
            time.sleep(0.2)
        sign_up(base, "grace@example.net", "Grace")
        deadline = time.monotonic() + 90
        while not confirmation_mails(tmp_path / "tidings.sqlite3"):
            assert time.monotonic() < deadline, "the new worker sent no confirmation"
            time.sleep(0.5)
    assert "the background worker stopped (exit code -9): starting it again" in finished["output"]
    assert not [pid for pid in second if Path(f"/proc/{pid}").exists()], "worker left running"
