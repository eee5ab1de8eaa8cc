"""deploy/: the systemd units, the proxy sites and the backup script are correct as shipped."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())


def _installed_copies(tmp_path: Path) -> list[Path]:
    """The units as installed under /opt/tidings, pointed at this checkout instead."""
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        text = text.replace("/opt/tidings", str(ROOT))
        text = text.replace("/etc/tidings/tidings.env", str(DEPLOY / "tidings.env.example"))
        copy = tmp_path / unit.name
        copy.write_text(text)
        copies.append(copy)
    return copies


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    copies = _installed_copies(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on some problems and only prints them: any line about our units fails.
    ours = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not ours, result.stderr


def test_each_units_command_line_is_one_tidings_accepts():
    from django.core.management import load_command_class

    for unit in UNITS:
        for line in unit.read_text().splitlines():
            if not line.startswith("ExecStart=/opt/tidings/.venv/bin/tidings "):
                continue
            args = shlex.split(line.removeprefix("ExecStart=/opt/tidings/.venv/bin/tidings "))
            command = load_command_class(
                {"serve": "tidings.web", "worker": "tidings.web", "inbound": "tidings.crm"}[
                    args[0]
                ],
                args[0],
            )
            parser = command.create_parser("tidings", args[0])
            parser.parse_args(args[1:])  # raises on an option tidings does not have


def test_the_worker_unit_gives_a_stopping_worker_time_to_finish_its_batch():
    worker = (DEPLOY / "systemd" / "tidings-worker.service").read_text()
    assert "KillSignal=SIGTERM" in worker
    seconds = int(re.search(r"TimeoutStopSec=(\d+)", worker).group(1))
    assert seconds >= 120  # the engine waits up to 120 s for messages on the wire


@pytest.mark.parametrize("site", ["caddy/Caddyfile", "nginx/tidings.conf"])
def test_the_proxy_sites_send_the_headers_tidings_reads(site, settings):
    text = (DEPLOY / site).read_text()
    # settings: TIDINGS_BEHIND_PROXY trusts X-Forwarded-Proto; client_ip() takes the last
    # X-Forwarded-For entry, so the proxy must put the address it saw there, last.
    assert settings.SECURE_PROXY_SSL_HEADER if settings.TIDINGS_BEHIND_PROXY else True
    if site.startswith("caddy"):
        assert "header_up X-Forwarded-Proto {scheme}" in text
        assert "header_up X-Forwarded-For {remote_host}" in text
        assert "reverse_proxy 127.0.0.1:8000" in text
    else:
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
        assert "proxy_pass http://tidings;" in text and "server 127.0.0.1:8000;" in text
    assert "/metrics" in text  # kept off the internet


def test_behind_the_proxy_tidings_sees_https_and_the_client_address(client, settings, db):
    """What the sites send, as Django then reads it (with TIDINGS_BEHIND_PROXY=1)."""
    from django.test import RequestFactory

    from tidings.lib.client_ip import client_ip

    settings.TIDINGS_BEHIND_PROXY = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = RequestFactory().get(
        "/", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert request.is_secure()
    assert client_ip(request) == "203.0.113.9"


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_the_nginx_site_is_valid_for_nginx(tmp_path):
    from tests.ops.smtp_servers import self_signed

    self_signed(tmp_path)
    site = (DEPLOY / "nginx" / "tidings.conf").read_text()
    site = site.replace(
        "/etc/letsencrypt/live/news.example.com/fullchain.pem", str(tmp_path / "cert.pem")
    )
    site = site.replace(
        "/etc/letsencrypt/live/news.example.com/privkey.pem", str(tmp_path / "key.pem")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; {site} }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy is not installed")
def test_the_caddyfile_is_valid_for_caddy(tmp_path):
    result = subprocess.run(
        [
            "caddy",
            "adapt",
            "--config",
            str(DEPLOY / "caddy" / "Caddyfile"),
            "--adapter",
            "caddyfile",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert "news.example.com" in json.dumps(config)


def test_the_backup_script_makes_a_dated_sqlite_backup_and_keeps_the_stamp(
    tmp_path, fresh_installation
):
    from tests.ops.test_backup_restore import env_for

    data_dir = fresh_installation  # migrated
    env = env_for(data_dir)
    env.update(
        TIDINGS_BACKUP_DIR=str(tmp_path / "backups"),
        TIDINGS=str(Path(sys.executable).with_name("tidings")),
    )
    result = subprocess.run(
        [str(DEPLOY / "tidings-backup")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (made,) = (tmp_path / "backups").iterdir()
    assert json.loads((made / "manifest.json").read_text())["kind"] == "tidings-backup"
    assert (data_dir / "last-backup").exists()


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres") or not shutil.which("pg_dump"),
    reason="needs PostgreSQL (DATABASE_URL) and pg_dump",
)
def test_the_backup_script_dumps_postgresql_and_the_readme_recipe_restores_it(tmp_path):
    """deploy/tidings-backup on PostgreSQL, then the README's restore steps, as written, into an
    empty database: the people are back, someone erased after the dump stays erased, and the
    recipe's `erasures reapply --journal "$dir/erasure-journal.jsonl"` works although nobody had
    been erased when the dump was made (no journal yet)."""
    import time
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from tests.ops.test_backup_restore import env_for

    server = urlsplit(os.environ["DATABASE_URL"])
    admin = urlunsplit(server._replace(path="/postgres"))
    names = [f"backup_{part}_{os.getpid()}_{int(time.time())}" for part in ("live", "restored")]
    live, restored = (urlunsplit(server._replace(path=f"/{name}")) for name in names)
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    data_dir = tmp_path / "var"
    backups = tmp_path / "backups"
    tidings_bin = str(Path(sys.executable).with_name("tidings"))

    def run(args, url, **extra):
        result = subprocess.run(
            args,
            env=env_for(data_dir, DATABASE_URL=url, **extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{args}: {result.stdout[-1500:]}{result.stderr[-3000:]}"
        return result

    def fixture(url, *args):
        out = run(
            [sys.executable, "-m", "tests.ops.backup_fixture", *args],
            url,
            DJANGO_SETTINGS_MODULE="tidings.settings",
        ).stdout
        return json.loads(out)

    people = ["ada@example.org", "bob@example.org"]
    try:
        run([tidings_bin, "migrate", "--no-input", "--verbosity", "0"], live)
        fixture(live, "people", *people)
        run(
            [str(DEPLOY / "tidings-backup")],
            live,
            TIDINGS_BACKUP_DIR=str(backups),
            TIDINGS=tidings_bin,
        )
        (dump_dir,) = backups.iterdir()
        assert (data_dir / "last-backup").exists()
        fixture(live, "erase", "bob@example.org")  # after the dump: the data dir's journal has it

        # The README's steps ("Backups and restore", PostgreSQL), into the empty database.
        run(_readme_pg_restore(dump_dir / "tidings.dump", restored), restored)
        run([tidings_bin, "doctor", "--only", "database"], restored)
        run([tidings_bin, "migrate"], restored)
        run(
            [
                tidings_bin,
                "erasures",
                "reapply",
                "--journal",
                str(dump_dir / "erasure-journal.jsonl"),
            ],
            restored,
        )
        report = fixture(restored, "report", *people)
        assert report["held"] == ["ada@example.org"]
        assert report["suppressed"] == ["bob@example.org"]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _systemd_environment_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, surrounding quotes)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def test_the_env_file_reads_the_same_in_systemd_and_in_the_shell_the_readme_sources_it_in():
    """README step 2: `set -a; . /etc/tidings/tidings.env; set +a`, then `tidings migrate`; the
    units read the same file with EnvironmentFile=.  A value with a space or a < must be quoted
    or the shell stops at it (and runs the rest of the line as a command)."""
    example = DEPLOY / "tidings.env.example"
    readme = (ROOT / "README.md").read_text()
    assert "set -a; . /etc/tidings/tidings.env; set +a" in readme
    expected = _systemd_environment_file(example.read_text())
    script = f'set -euo pipefail; set -a; . "{example}"; set +a; env -0'
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    shell = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    assert {k: shell.get(k) for k in expected} == expected


def _bytes(number: str, unit: str) -> int:
    return (
        int(number)
        * {
            "k": 1024,
            "m": 1024**2,
            "g": 1024**3,
            "kib": 1024,
            "mib": 1024**2,
            "gib": 1024**3,
            "kb": 1000,
            "mb": 1000**2,
            "gb": 1000**3,
        }[unit.lower()]
    )


def test_the_proxies_let_through_every_upload_tidings_itself_accepts(settings):
    """An import tidings would take (TIDINGS_MAX_IMPORT_BYTES) must reach it: a proxy's own 413
    page says nothing of `tidings import contacts`, which tidings' refusal points to."""
    limit = settings.TIDINGS_MAX_IMPORT_BYTES
    nginx = re.search(
        r"client_max_body_size (\d+)([kmg])\b", (DEPLOY / "nginx/tidings.conf").read_text()
    )
    caddy = re.search(r"max_size (\d+)([KMG]i?B)\b", (DEPLOY / "caddy/Caddyfile").read_text())
    assert _bytes(*nginx.groups()) > limit
    assert _bytes(*caddy.groups()) > limit
    assert "TIDINGS_MAX_IMPORT_BYTES" in (ROOT / "README.md").read_text()


def test_the_import_size_limit_is_a_setting_an_administrator_can_change(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.pop("DATABASE_URL", None)
    env.update(
        TIDINGS_DATA_DIR=str(tmp_path),
        TIDINGS_MAX_IMPORT_BYTES="5000000",
        DJANGO_SETTINGS_MODULE="tidings.settings",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.TIDINGS_MAX_IMPORT_BYTES)",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "5000000", result.stderr[-2000:]


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_the_nginx_access_log_holds_no_token_search_or_address(tmp_path):
    """nginx's default log ("combined") wrote every /u/<token> and /rights/download/<token>
    (keys to a person's subscription and data), an operator's ?q= search for an address, the
    Referer and the client's address.  Run for real: nginx with the site, in front of a stub."""
    import http.server
    import socket
    import ssl
    import threading
    import time
    import urllib.request

    from tests.campaigns.delivery_helpers import free_port
    from tests.ops.smtp_servers import self_signed

    class Stub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    self_signed(tmp_path)
    plain, tls = free_port(), free_port()
    site = (DEPLOY / "nginx" / "tidings.conf").read_text()
    for old, new in [
        ("/etc/letsencrypt/live/news.example.com/fullchain.pem", str(tmp_path / "cert.pem")),
        ("/etc/letsencrypt/live/news.example.com/privkey.pem", str(tmp_path / "key.pem")),
        ("/var/log/nginx/tidings.access.log", str(tmp_path / "access.log")),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream.server_address[1]};"),
        ("listen 80;", f"listen 127.0.0.1:{plain};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl;"),
        ("listen [::]:443 ssl http2;", ""),
    ]:
        assert old in site, old
        site = site.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; daemon off;\n"
        f"events {{}}\nhttp {{ {site} }}\n"
    )
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and nginx.poll() is None
                time.sleep(0.1)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        token = "eyJjIjoxMjN9:1vNx8Q:Zm9vYmFyYmF6cXV4cXV1eA"
        paths = [
            f"/u/{token}",
            f"/rights/download/{token}",
            f"/demo/feed/{token}.ics",
            "/search/?q=ada.lovelace%40example.net",
            "/campaigns/12/",
        ]
        for path in paths:
            request = urllib.request.Request(
                f"https://127.0.0.1:{tls}{path}",
                headers={"Host": "news.example.com", "Referer": f"https://x.example/p/{token}"},
            )
            urllib.request.urlopen(request, context=insecure, timeout=10).read()
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
    log = (tmp_path / "access.log").read_text()
    assert len(log.splitlines()) == len(paths)
    assert token not in log and "1vNx8Q" not in log
    assert "ada.lovelace" not in log and "example.net" not in log
    assert "127.0.0.1" not in log and "x.example" not in log
    assert '"GET /u/[token]"' in log and '"GET /rights/download/[token]"' in log
    assert '"GET /campaigns/12/"' in log and '"GET /search/"' in log


def test_a_postgresql_dump_that_fails_half_way_leaves_no_backup_directory(tmp_path):
    """pg_dump stopped half-way (a full disk, the server restarted): the script left a dated
    directory with a truncated tidings.dump — the newest "backup" an administrator would restore
    — and an erasure journal beside it. Now the directory goes and the stamp is not touched."""
    from tests.ops.test_backup_restore import env_for

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --file=*) printf PGDMP-half > "${a#--file=}";; esac; done\n'
        "echo 'pg_dump: error: could not write to output file: No space left on device' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    env = env_for(data_dir, DATABASE_URL="postgres://tidings@127.0.0.1:5432/tidings")
    env.update(
        TIDINGS_BACKUP_DIR=str(tmp_path / "backups"),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    result = subprocess.run(
        [str(DEPLOY / "tidings-backup")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "No space left" in result.stderr
    assert list((tmp_path / "backups").iterdir()) == []
    assert not (data_dir / "last-backup").exists()


def _readme_pg_restore(dump: Path, url: str) -> list[str]:
    """The `pg_restore` line of the README's PostgreSQL restore steps, as an operator runs it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [ln for ln in readme.splitlines() if ln.startswith("pg_restore ")]
    line = line.replace('"$dir/tidings.dump"', shlex.quote(str(dump)))
    return shlex.split(line.replace('"$DATABASE_URL"', shlex.quote(url)))


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres") or not shutil.which("pg_dump"),
    reason="needs PostgreSQL (DATABASE_URL) and pg_dump",
)
def test_the_readme_restore_of_a_damaged_dump_fails_and_leaves_the_database_as_it_was(tmp_path):
    """A dump damaged after its table of contents (a bad disk, a copy cut short and patched):
    pg_restore --clean had dropped and emptied every table before the damaged one when it
    stopped, so following the README's recipe destroyed the database it was meant to repair."""
    import time
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    from tests.ops.test_backup_restore import env_for

    server = urlsplit(os.environ["DATABASE_URL"])
    admin = urlunsplit(server._replace(path="/postgres"))
    name = f"damaged_dump_{os.getpid()}_{int(time.time())}"
    url = urlunsplit(server._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def counts() -> dict[str, int]:
        with psycopg.connect(url) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            ]
            return {
                t: conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                ).fetchone()[0]
                for t in tables
            }

    try:
        env = env_for(tmp_path / "var", DATABASE_URL=url)
        tidings_bin = str(Path(sys.executable).with_name("tidings"))
        subprocess.run([tidings_bin, "migrate", "--verbosity", "0"], env=env, check=True)
        subprocess.run(
            [sys.executable, "-m", "tests.ops.backup_fixture", "people", "ada@example.org"],
            env={**env, "DJANGO_SETTINGS_MODULE": "tidings.settings"},
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        dump, schema = tmp_path / "tidings.dump", tmp_path / "schema.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", url], check=True)
        subprocess.run(
            ["pg_dump", "--format=custom", "--schema-only", f"--file={schema}", url], check=True
        )
        # Damage the data past the table of contents (a little larger than the schema dump).
        original = dump.read_bytes()
        for fraction in (0.5, 0.6, 0.7, 0.8, 0.9):
            data = bytearray(original)
            at = schema.stat().st_size + int(fraction * (len(data) - schema.stat().st_size))
            for i in range(at - 256, at + 256):
                data[i] ^= 0x5A
            dump.write_bytes(bytes(data))
            listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True)
            if listed.returncode == 0:
                break
        else:
            pytest.fail("every damaged copy of the dump had a damaged table of contents")
        before = counts()
        assert before["django_migrations"] > 0 and before["audience_contact"] == 1

        result = subprocess.run(_readme_pg_restore(dump, url), capture_output=True, text=True)

        assert result.returncode != 0
        assert "pg_restore: error:" in result.stderr
        assert counts() == before
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres") or not shutil.which("pg_dump"),
    reason="needs PostgreSQL (DATABASE_URL) and pg_dump",
)
def test_the_readme_backup_recipe_writes_a_dump_only_its_owner_can_read(tmp_path):
    """The README's pg_dump lines, run as written in a shell with the usual umask (022): the dump
    of everyone's personal data was readable by every user of the machine (0644)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.S) if "pg_dump " in b]
    backups, data_dir = tmp_path / "backups", tmp_path / "var"
    data_dir.mkdir()
    script = "umask 022\n" + block.replace("/var/backups/tidings", str(backups))
    env = {
        **os.environ,
        "TIDINGS_DATA_DIR": str(data_dir),
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }

    result = subprocess.run(
        ["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr
    (dump_dir,) = backups.iterdir()
    for path in (dump_dir, *dump_dir.iterdir()):
        assert path.stat().st_mode & 0o077 == 0, f"{path}: {oct(path.stat().st_mode)}"
    assert (data_dir / "last-backup").exists()


def test_each_long_running_unit_keeps_the_files_it_makes_to_itself():
    """The SQLite database (everyone's data), DKIM keys and exports were made 0644: readable by
    every user of the machine."""
    for name in ("tidings-web", "tidings-worker", "tidings-lmtp"):
        unit = (DEPLOY / "systemd" / f"{name}.service").read_text()
        assert "\nUMask=0077\n" in unit, name


def test_the_readme_makes_the_first_owner_on_a_server_without_a_terminal(
    tmp_path, fresh_installation
):
    """Without a terminal, the README's `tidings createsuperuser` printed "Superuser creation
    skipped" and exited 0: no operator, and nothing said so.  Its non-interactive recipe, run
    as written (sudo and the checkout aside) with no terminal, makes the owner."""
    import sqlite3

    readme = (ROOT / "README.md").read_text()
    (block,) = [
        b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "createsuperuser --noinput" in b
    ]
    password_file = tmp_path / "owner-password"
    password_file.write_text("a-long-owner-password-42\n")
    script = block.replace("sudo -E -u tidings .venv/bin/tidings", shlex.join(TIDINGS_CMD))
    script = script.replace("/root/tidings-owner-password", str(password_file))
    result = subprocess.run(
        ["bash", "-euc", script],
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TIDINGS_", "DJANGO_", "DATABASE_URL", "SECRET_KEY"))
            },
            "TIDINGS_DATA_DIR": str(fresh_installation),  # a copy of a migrated installation
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stdout + result.stderr
    with sqlite3.connect(fresh_installation / "tidings.sqlite3") as db:
        rows = db.execute("SELECT username, email, is_superuser, password FROM auth_user")
        ((username, email, superuser, password),) = rows.fetchall()
    assert (username, email, superuser) == ("admin", "you@example.com", 1)
    assert not password.startswith("!")  # a usable password: the one from the file


TIDINGS_CMD = [sys.executable, "-m", "tidings"]


# --- the production install: no development tools ------------------------------------------------
# The dev group's packages (pyproject.toml) by the name they are imported as.
DEV_MODULES = {
    "pytest": "pytest",
    "pytest-django": "pytest_django",
    "pytest-xdist": "xdist",
    "filelock": "filelock",
    "time-machine": "time_machine",
    "hypothesis": "hypothesis",
    "ruff": "ruff",
    "playwright": "playwright",
    "faker": "faker",
    "schemathesis": "schemathesis",
    "aiohttp": "aiohttp",
    "import-linter": "importlinter",
    "dnslib": "dnslib",
    "mypy": "mypy",
    "django-stubs[compatible-mypy]": "django_stubs_ext",
    "types-python-dateutil": "",  # type stubs only: never imported
    "types-regex": "",
    "scikit-learn": "sklearn",
}


def test_the_readme_installs_production_without_the_development_tools():
    """README step 1 and the upgrade ran `make .venv/.synced`, which is `uv sync` with uv's
    default groups: pytest, faker, Playwright, mypy... on every production server."""
    import tomllib

    readme = (ROOT / "README.md").read_text()
    production = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    assert ".venv/.synced" not in production
    assert "cd /opt/tidings && make install" in production
    assert "git pull && make install" in production
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ninstall:", 1)[1].split("\n\n", 1)[0]
    assert "sync --frozen --no-dev" in recipe
    # Every package of the dev group is known here, so the scan below misses none.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = {
        re.split(r"[<>=!~ ]", item, maxsplit=1)[0] for item in pyproject["dependency-groups"]["dev"]
    }
    assert dev == set(DEV_MODULES)


def test_nothing_tidings_runs_imports_a_development_tool():
    """The demo's fictional people included: `make install` leaves faker out."""
    import ast

    forbidden = {name for name in DEV_MODULES.values() if name}
    found = []
    for path in (ROOT / "src" / "tidings").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in forbidden
            ]
    assert found == []
