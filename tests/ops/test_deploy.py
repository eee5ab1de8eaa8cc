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
                {"serve": "tidings.web", "worker": "tidings.web"}[args[0]], args[0]
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
