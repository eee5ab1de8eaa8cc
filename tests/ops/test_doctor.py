"""``tidings doctor``: each check finds what is wrong with a deployment and says how to fix it."""

from __future__ import annotations

import io
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.campaigns.delivery_helpers import free_port
from tests.ops.helpers import doctor
from tests.ops.smtp_servers import PASSWORD, USER, Server
from tidings.campaigns.models import DeliveryWorker
from tidings.ops import doctor as registry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _deployment(settings, tmp_path):
    """A deployment with one live delivery worker and a fresh backup, so each test breaks one
    thing.  The stamp file lives in the test's own directory."""
    settings.TIDINGS_BACKUP_STAMP = str(tmp_path / "last-backup")
    Path(settings.TIDINGS_BACKUP_STAMP).touch()
    settings.TIDINGS_REDIS_URL = ""
    DeliveryWorker.objects.create(id="w1", host="mail1", pid=1, last_seen=timezone.now())


def test_a_healthy_development_installation_passes_with_one_line_per_check(settings):
    out = io.StringIO()
    call_command("doctor", stdout=out)  # no SystemExit: exit status 0
    lines = out.getvalue().splitlines()
    assert any(line.startswith("ok    database ") for line in lines)
    assert any(line.startswith("ok    database.migrations") for line in lines)
    assert any(line.startswith("ok    workers.delivery") for line in lines)
    assert lines[-1].endswith("0 failure(s)")


def test_the_json_output_names_every_check_with_its_status():
    code, found = doctor()
    assert code == 0
    for name in ("settings.secret_key", "database", "policy", "smtp.default", "disk", "backups"):
        assert found[name]["status"] in {"ok", "warn"}, found[name]


def test_a_wildcard_in_allowed_hosts_fails_and_says_which_host_to_set(settings):
    settings.ALLOWED_HOSTS = ["*"]
    code, found = doctor("--only", "settings")
    assert code == 1
    assert found["settings.allowed_hosts"]["status"] == "fail"
    assert "TIDINGS_ALLOWED_HOSTS=127.0.0.1" in found["settings.allowed_hosts"]["fix"]


def test_a_base_url_host_missing_from_allowed_hosts_fails(settings):
    settings.TIDINGS_BASE_URL = "https://news.example.com"
    settings.ALLOWED_HOSTS = ["other.example.com"]
    code, found = doctor("--only", "settings")
    assert code == 1
    assert "news.example.com" in found["settings.allowed_hosts"]["fix"]
    assert found["settings.base_url"]["status"] == "ok"


def test_an_unset_base_url_is_not_reported_as_the_address_links_use(settings, monkeypatch):
    # `make demo PORT=8147` serves, and links, on 8147; `tidings doctor` in another shell said
    # "TIDINGS_BASE_URL is http://127.0.0.1:8000", which is only the default other commands use.
    monkeypatch.delenv("TIDINGS_BASE_URL", raising=False)
    settings.TIDINGS_BASE_URL = "http://127.0.0.1:8000"

    _, found = doctor("--only", "settings")

    summary = found["settings.base_url"]["summary"]
    assert found["settings.base_url"]["status"] == "ok"
    assert "not set" in summary and "the address it serves on" in summary
    assert "http://127.0.0.1:8000" in summary  # what the other commands use

    monkeypatch.setenv("TIDINGS_BASE_URL", "http://127.0.0.1:8000")
    _, found = doctor("--only", "settings")
    assert "not set" not in found["settings.base_url"]["summary"]


def test_an_unset_base_url_with_a_help_desk_warns_that_its_server_will_not_start(
    settings, monkeypatch
):
    # The LMTP server acknowledges support mail with links; without the setting it refuses to
    # start, and the doctor, run with the same environment, says so before the service fails.
    monkeypatch.delenv("TIDINGS_BASE_URL", raising=False)
    settings.TIDINGS_BASE_URL = "http://127.0.0.1:8000"
    settings.TIDINGS_SUPPORT_ADDRESS = "support@example.co.uk"

    code, found = doctor("--only", "settings")

    assert code == 0  # a warning: the web and the worker run
    assert found["settings.base_url"]["status"] == "warn"
    assert "tidings inbound serve" in found["settings.base_url"]["summary"]
    assert "TIDINGS_BASE_URL" in found["settings.base_url"]["fix"]

    monkeypatch.setenv("TIDINGS_BASE_URL", "http://127.0.0.1:8000")
    _, found = doctor("--only", "settings")
    assert found["settings.base_url"]["status"] == "ok"


def test_plain_http_fails_in_production_mode(settings):
    settings.PRODUCTION = True
    settings.TIDINGS_BASE_URL = "http://news.example.com"
    settings.ALLOWED_HOSTS = ["news.example.com"]
    _, found = doctor("--only", "settings")
    assert found["settings.base_url"]["status"] == "fail"
    assert "https://" in found["settings.base_url"]["fix"]


@pytest.fixture
def behind_the_readme_s_proxy(settings):
    """Production over https, TLS and the http:// redirect at the README's Caddy or nginx."""
    settings.PRODUCTION = True
    settings.TIDINGS_POLICY_IS_EXAMPLE = False
    settings.SECRET_KEY = "a-long-random-value-" * 3
    settings.TIDINGS_REQUIRE_2FA = "privileged"
    settings.TIDINGS_BASE_URL = "https://news.example.com"
    settings.ALLOWED_HOSTS = ["news.example.com"]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "security.W008"]
    settings.MAILERS = {  # production refuses the outbox (mail.E…)
        "default": {
            "BACKEND": "tidings.campaigns.transports.mailers.SmtpEmailBackend",
            "OPTIONS": {"host": "smtp.example.net", "port": 587, "use_tls": True},
        }
    }
    return settings


def test_hsts_for_this_host_only_is_not_a_warning(behind_the_readme_s_proxy):
    """HSTS without includeSubDomains and preload (both bind every host of the domain: the
    owner's choice, TIDINGS_HSTS_INCLUDE_SUBDOMAINS / _PRELOAD) warned security.W005 and W021
    on every installation, and the doctor warned about checks Django's settings silence."""
    _, found = doctor("--only", "settings")
    assert found["settings.django_checks"]["status"] == "ok", found["settings.django_checks"]
    assert found["settings.django_checks"]["summary"] == "Django's system checks pass"


def test_production_without_hsts_still_warns(behind_the_readme_s_proxy):
    behind_the_readme_s_proxy.SECURE_HSTS_SECONDS = 0
    _, found = doctor("--only", "settings")
    assert found["settings.django_checks"]["status"] == "warn"
    assert "security.W004" in found["settings.django_checks"]["summary"]


def test_a_short_secret_key_fails(settings):
    settings.SECRET_KEY = "short"
    code, found = doctor("--only", "settings")
    assert code == 1
    assert found["settings.secret_key"]["status"] == "fail"


def test_a_migration_not_applied_fails_and_says_to_migrate(django_db_blocker):
    from django.db import connection

    from tidings.ops.schema import schema_state

    assert schema_state().pending == []
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'ops' OR (app = 'web' AND name = "
            "(SELECT max(name) FROM django_migrations WHERE app = 'web'))"
        )
    code, found = doctor("--only", "database")
    assert code == 1
    assert found["database.migrations"]["status"] == "fail"
    assert "tidings migrate" in found["database.migrations"]["fix"]


def test_a_migration_the_code_does_not_know_means_the_database_is_newer(settings):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES "
            "('campaigns', '9999_from_the_future', %s)",
            [timezone.now()],
        )
    code, found = doctor("--only", "database")
    assert code == 1
    assert "campaigns.9999_from_the_future" in found["database.migrations"]["summary"]
    assert "upgrade" in found["database.migrations"]["fix"]


def test_a_broken_policy_file_fails_with_its_first_problem(settings, tmp_path):
    broken = tmp_path / "policy.toml"
    broken.write_text("[controller]\nname = 3\n")
    settings.TIDINGS_POLICY = broken
    code, found = doctor("--only", "policy")
    assert code == 1
    assert found["policy"]["status"] == "fail"
    assert str(broken) in found["policy"]["summary"]
    assert "tidings policy check" in found["policy"]["fix"]


# --- SMTP ---------------------------------------------------------------------------------------
def test_a_plain_relay_is_reached_and_greeted(settings):
    with Server() as server:
        settings.TIDINGS_SMTP_URL = server.url()
        code, found = doctor("--only", "smtp")
    assert code == 0
    assert found["smtp.default"]["status"] == "ok"
    assert "connected, EHLO" in found["smtp.default"]["summary"]


def test_starttls_and_auth_are_each_tried_and_reported(settings, tmp_path):
    with Server(tmp_path, tls=True, auth=True) as server:
        settings.TIDINGS_SMTP_URL = server.url(user=USER, password=PASSWORD, tls="starttls")
        code, found = doctor("--only", "smtp")
    assert code == 0, found
    summary = found["smtp.default"]["summary"]
    assert "EHLO, STARTTLS, AUTH" in summary
    assert PASSWORD not in summary and USER not in summary


def test_a_wrong_password_fails_at_auth_after_starttls(settings, tmp_path):
    with Server(tmp_path, tls=True, auth=True) as server:
        settings.TIDINGS_SMTP_URL = server.url(user=USER, password="wrong", tls="starttls")
        code, found = doctor("--only", "smtp")
    assert code == 1
    finding = found["smtp.default"]
    assert "auth failed after connected, EHLO, STARTTLS" in finding["summary"]
    assert "535" in finding["summary"]
    assert "password" in finding["fix"]
    assert "wrong" not in finding["summary"]


def test_a_server_without_starttls_fails_when_the_url_asks_for_it(settings):
    with Server() as server:
        settings.TIDINGS_SMTP_URL = server.url(tls="starttls")
        code, found = doctor("--only", "smtp")
    assert code == 1
    assert "starttls failed" in found["smtp.default"]["summary"]
    assert "does not offer STARTTLS" in found["smtp.default"]["summary"]


def test_auth_without_tls_works_but_warns_that_the_password_travels_in_clear(settings):
    with Server(auth=True) as server:
        settings.TIDINGS_SMTP_URL = server.url(user=USER, password=PASSWORD)
        code, found = doctor("--only", "smtp")
    assert code == 0  # warnings do not fail
    assert found["smtp.default"]["status"] == "warn"
    assert "without TLS" in found["smtp.default"]["summary"]


def test_a_closed_port_fails_at_connect_and_names_the_host_and_port(settings):
    port = free_port()
    settings.TIDINGS_SMTP_URL = f"smtp://127.0.0.1:{port}?tls=none"
    code, found = doctor("--only", "smtp")
    assert code == 1
    assert "connect failed" in found["smtp.default"]["summary"]
    assert f"127.0.0.1:{port}" in found["smtp.default"]["fix"]


def test_each_configured_transport_is_checked(settings, tmp_path):
    with Server() as good:
        settings.TIDINGS_TRANSPORTS = {
            "main": {"url": good.url()},
            "backup": {"url": f"smtp://127.0.0.1:{free_port()}?tls=none"},
        }
        code, found = doctor("--only", "smtp")
    assert code == 1
    assert found["smtp.main"]["status"] == "ok"
    assert found["smtp.backup"]["status"] == "fail"


# --- workers, disk, backups, redis -----------------------------------------------------------
def test_no_worker_heartbeat_within_the_lease_fails():
    DeliveryWorker.objects.update(last_seen=timezone.now() - timedelta(minutes=10))
    code, found = doctor("--only", "workers")
    assert code == 1
    assert "10 min ago" in found["workers.delivery"]["summary"]
    assert "tidings worker" in found["workers.delivery"]["fix"]


def test_a_stopped_worker_is_not_alive():
    DeliveryWorker.objects.update(stopped_at=timezone.now())
    _, found = doctor("--only", "workers")
    assert found["workers.delivery"]["status"] == "fail"


def test_a_worker_that_never_ran_fails():
    DeliveryWorker.objects.all().delete()
    _, found = doctor("--only", "workers")
    assert found["workers.delivery"]["summary"] == "no delivery worker has ever run"


def test_a_task_runner_s_heartbeat_is_no_delivery_worker():
    """``tidings worker --no-delivery`` keeps a heartbeat row so its tasks can be taken back:
    it must not make the check say mail is being sent."""
    DeliveryWorker.objects.all().delete()
    DeliveryWorker.objects.create(
        id="t1", host="app1", pid=2, last_seen=timezone.now(), sends_mail=False
    )
    _, found = doctor("--only", "workers")
    assert found["workers.delivery"]["summary"] == "no delivery worker has ever run"


def test_the_data_directory_must_be_writable(settings, tmp_path):
    if os.geteuid() == 0:
        settings.DATA_DIR = tmp_path / "missing"
        _, found = doctor("--only", "disk")
        assert found["disk"]["status"] == "fail"
        assert "does not exist" in found["disk"]["summary"]
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    settings.DATA_DIR = locked
    _, found = doctor("--only", "disk")
    assert found["disk"]["status"] == "fail"


def test_disk_space_of_the_data_directory_is_reported(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    _, found = doctor("--only", "disk")
    assert str(tmp_path) in found["disk"]["summary"]
    assert "free of" in found["disk"]["summary"]


def test_a_missing_or_old_backup_warns_without_failing(settings):
    stamp = Path(settings.TIDINGS_BACKUP_STAMP)
    code, found = doctor("--only", "backups")
    assert found["backups"]["status"] == "ok"
    old = time.time() - 26 * 3600
    os.utime(stamp, (old, old))
    code, found = doctor("--only", "backups")
    assert code == 0
    assert found["backups"]["status"] == "warn"
    assert "26 hours ago" in found["backups"]["summary"]
    stamp.unlink()
    code, found = doctor("--only", "backups")
    assert code == 0
    assert "no backup has been recorded" in found["backups"]["summary"]


def test_redis_is_checked_only_when_configured(settings):
    settings.TIDINGS_REDIS_URL = ""
    _, found = doctor()
    assert "redis" not in found
    settings.TIDINGS_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    code, found = doctor("--only", "redis")
    assert code == 1
    assert found["redis"]["status"] == "fail"
    assert "TIDINGS_REDIS_URL" in found["redis"]["fix"]


def test_a_reachable_redis_passes(redis_url):
    code, found = doctor("--only", "redis")
    assert code == 0
    assert found["redis"]["status"] == "ok"


# --- the registry -----------------------------------------------------------------------------
def test_a_module_can_register_its_own_check_and_a_broken_check_is_reported_not_raised():
    @registry.register("example.extension", order=999)
    def extension():
        return registry.Finding("example.extension", registry.WARN, "looked", "do this")

    @registry.register("example.broken", order=999)
    def broken():
        raise RuntimeError("boom")

    try:
        code, found = doctor("--only", "example.extension", "example.broken")
    finally:
        registry.unregister("example.extension")
        registry.unregister("example.broken")
    assert found["example.extension"]["fix"] == "do this"
    assert found["example.broken"]["status"] == "fail"
    assert "RuntimeError" in found["example.broken"]["summary"]
    assert code == 1


def test_the_command_to_trace_a_broken_check_can_be_pasted_even_with_a_space_in_its_name():
    @registry.register("example broken", order=999)
    def broken():
        raise RuntimeError("boom")

    try:
        _, found = doctor("--only", "example broken")
    finally:
        registry.unregister("example broken")
    assert found["example broken"]["fix"] == (
        "run `tidings doctor --only 'example broken' --traceback` to see where it broke"
    )


def test_an_unknown_check_name_is_refused_in_one_line():
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("doctor", "--only", "nonsense", stderr=err)
    assert exit_info.value.code == 2
    assert "no check named nonsense" in err.getvalue()


# --- sender domains' DNS (campaigns/deliverability), against a real DNS server ----------------
from tests.campaigns.test_deliverability import (  # noqa: E402 - fixtures of the DNS tests
    DOMAIN,
    dns_server,  # noqa: F401 - a fixture
    good_records,
    key,  # noqa: F401 - a fixture
    zone,
)


def test_sender_domains_are_reported_from_their_last_check_with_the_record_to_publish(
    dns_server,  # noqa: F811
    key,  # noqa: F811
):
    from tidings.campaigns.deliverability.senders import do_add_sender, do_check_sender

    code, found = doctor("--only", "sender-dns")
    assert code == 0 and found["sender-dns"]["status"] == "warn"  # no sender yet

    sender = do_add_sender("News", f"news@{DOMAIN}", actor=None)
    code, found = doctor("--only", "sender-dns")
    assert found[f"sender-dns:{DOMAIN}"]["status"] == "warn"
    assert f"tidings deliverability check {DOMAIN}" in found[f"sender-dns:{DOMAIN}"]["fix"]

    records = good_records(key)
    records["dmarc"] = ""
    dns_server.serve(zone(records))
    do_check_sender(sender)
    code, found = doctor("--only", "sender-dns")
    assert code == 1
    finding = found[f"sender-dns:{DOMAIN}"]
    assert finding["status"] == "fail" and "DMARC" in finding["summary"]
    assert "_dmarc" in finding["fix"]

    dns_server.serve(zone(good_records(key)))
    do_check_sender(sender)
    code, found = doctor("--only", "sender-dns")
    assert code == 0 and found[f"sender-dns:{DOMAIN}"]["status"] == "ok"


def test_an_open_list_of_a_topic_the_policy_dropped_is_a_warning(settings, tmp_path):
    # A company took "training" out of its policy's topics: the list stayed open with its
    # subscribers, took no sign-ups and could receive no campaign, and nothing said so.
    from tidings.audience.models import MailingList
    from tidings.policy.commands import EXAMPLE_POLICY

    MailingList.objects.create(name="Training", topic="training")
    MailingList.objects.create(name="News", topic="product news")
    _, found = doctor("--only", "policy.lists")
    assert found["policy.lists"]["status"] == "ok"

    policy = tmp_path / "policy.toml"
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    policy.write_text(text.replace(', "training"]', "]", 1), encoding="utf-8")
    settings.TIDINGS_POLICY = policy
    _, found = doctor("--only", "policy.lists")
    assert found["policy.lists"]["status"] == "warn"
    assert found["policy.lists"]["summary"] == (
        '1 open list(s) of a topic the policy no longer names: Training ("training")'
    )
    assert "Lists → Close" in found["policy.lists"]["fix"]


def test_contact_data_of_fields_no_purpose_collects_is_a_warning_until_pruned(settings, tmp_path):
    # A company took job titles out of its policy: what it had collected stayed on the contacts,
    # kept for no purpose, and nothing said so.
    from tidings.audience.models import Contact
    from tidings.lib.models import AuditEntry
    from tidings.policy.commands import EXAMPLE_POLICY

    ada = Contact.objects.create(
        email="ada@example.com", name="Ada", job_title="Engineer", attributes={"postcode": "LS1"}
    )
    bob = Contact.objects.create(
        email="bob@example.com", name="Bob", attributes={"order_reference": "SO-1"}
    )
    _, found = doctor("--only", "policy.fields")
    assert found["policy.fields"]["summary"] == (
        "contacts hold fields no purpose of the policy collects any more: postcode (1 contact(s))"
    )

    policy = tmp_path / "policy.toml"
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    text = text.replace('"name", "job_title"', '"name"').replace(', "job_title"', "")
    policy.write_text(text, encoding="utf-8")
    settings.TIDINGS_POLICY = policy
    _, found = doctor("--only", "policy.fields")
    assert found["policy.fields"]["status"] == "warn"
    assert "job_title (1 contact(s)), postcode (1 contact(s))" in found["policy.fields"]["summary"]
    assert "tidings audience prune-fields --yes" in found["policy.fields"]["fix"]

    out = io.StringIO()
    call_command("audience", "prune-fields", stdout=out)
    assert "Run again with --yes" in out.getvalue()
    assert Contact.objects.get(pk=ada.pk).job_title == "Engineer"  # a dry run by default

    call_command("audience", "prune-fields", "--yes", stdout=io.StringIO())
    ada.refresh_from_db()
    bob.refresh_from_db()
    assert (ada.job_title, ada.attributes, ada.name) == ("", {}, "Ada")
    assert bob.attributes == {"order_reference": "SO-1"}  # the order purpose collects it
    entry = AuditEntry.objects.get(action="contacts.fields_pruned")
    assert entry.details == {"fields": {"job_title": 1, "postcode": 1}}
    _, found = doctor("--only", "policy.fields")
    assert found["policy.fields"]["status"] == "ok"


def test_addresses_stored_with_a_local_part_over_64_octets_are_counted_never_printed():
    """Addresses imported before the RFC 5321 limit was checked stay stored: the doctor says how
    many (by octets: ``ö`` counts two), which ids, and what to do; the addresses never appear."""
    from tidings.audience.emails import email_key
    from tidings.audience.models import Contact

    addresses = {
        "umlauts": "ö" * 33 + "@example.com",  # 33 characters, 66 octets: over
        "long": "a" * 65 + "@example.com",  # over
        "at the limit": "b" * 64 + "@example.com",  # 64 octets: allowed
        "long domain": "c@" + "d" * 60 + ".example.com",  # a long address, a short local part
        "plain": "ada@example.com",
    }
    contacts = Contact.objects.bulk_create(  # as an old import wrote them: no validation
        Contact(email=a, email_key=email_key(a), name=n) for n, a in addresses.items()
    )
    ids = {c.name: c.pk for c in contacts}

    code, found = doctor("--only", "contacts.local-parts")

    assert code == 0  # a warning: mail to them may be refused, nothing is broken
    finding = found["contacts.local-parts"]
    assert finding["status"] == "warn"
    assert finding["summary"].startswith("2 contact(s) have an address with more than 64 octets")
    assert f"#{ids['umlauts']}, #{ids['long']}" in finding["summary"]
    assert "Edit" in finding["fix"] and "delete" in finding["fix"]
    out = io.StringIO()
    call_command("doctor", "--only", "contacts.local-parts", stdout=out)
    assert "WARN  contacts.local-parts" in out.getvalue()
    for text in (out.getvalue(), str(finding)):
        assert "example" not in text and "öö" not in text and "aaaa" not in text

    Contact.objects.filter(pk__in=[ids["umlauts"], ids["long"]]).delete()
    _, found = doctor("--only", "contacts.local-parts")
    assert found["contacts.local-parts"]["status"] == "ok"


def test_with_the_database_unreachable_the_command_still_runs_every_other_check(tmp_path):
    """`tidings doctor` as typed: the CLI adds --traceback to every command, so the first check
    that could not reach the database ended the doctor with one line, and nothing was said of
    the mail server, Redis or the disk, just when an administrator needs them."""
    import subprocess
    import sys

    from tests.ops.test_backup_restore import env_for

    url = f"postgres://tidings@127.0.0.1:{free_port()}/tidings"  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "tidings.cli", "doctor"],
        env=env_for(tmp_path / "var", DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL  database") for line in lines), result.stdout + result.stderr
    assert any(line.startswith("ok    disk") for line in lines), result.stdout
    assert any(line.startswith("ok    smtp.default") for line in lines), result.stdout
    # Each check that reads the database says why it did not run, pointing at the database
    # check: not "the check itself failed (OperationalError) — fix: run … --traceback", which
    # sent people looking for a bug in six checks.
    for name in ("policy.lists", "policy.fields", "contacts.addresses", "api tokens"):
        assert f"FAIL  {name}" in result.stdout, result.stdout
        line = next(line for line in lines if line.startswith(f"FAIL  {name}"))
        assert "not checked: the database cannot be read (see the database check)" in line
    assert "the check itself failed" not in result.stdout


# --- file modes (ops/checks/permissions.py) ------------------------------------------------------
@pytest.fixture
def older_install(settings, tmp_path):
    """A data directory and backups as an installation made before tidings kept them owner-only
    left them: a 0755 directory, a 0644 SQLite database, a backup readable by everyone."""
    data = tmp_path / "data"
    (data / "static").mkdir(parents=True)
    (data / "static" / "site.css").write_text("body {}")  # public: the pages serve it
    (data / "secret_key").write_text("k" * 50)
    (data / "tidings.sqlite3").write_bytes(b"")
    backups = tmp_path / "backups"
    (backups / "2026-01-01T030000").mkdir(parents=True)
    (backups / "2026-01-01T030000" / "tidings.sqlite3").write_bytes(b"")
    for path, mode in [
        (data, 0o755),
        (data / "static", 0o755),
        (data / "static" / "site.css", 0o644),
        (data / "secret_key", 0o600),
        (data / "tidings.sqlite3", 0o644),
        (backups, 0o700),
        (backups / "2026-01-01T030000", 0o755),
        (backups / "2026-01-01T030000" / "tidings.sqlite3", 0o600),
    ]:
        path.chmod(mode)
    settings.DATA_DIR = data
    settings.TIDINGS_DKIM_DIR = str(data / "dkim")
    settings.TIDINGS_ERASURE_JOURNAL = str(data / "erasure-journal.jsonl")
    settings.TIDINGS_BACKUP_DIR = str(backups)
    return data, backups


def test_a_database_and_backups_readable_by_every_user_fail_with_the_command_that_fixes_them(
    older_install,
):
    """Made before the 0600/0700 change, they stayed readable by every user of the machine:
    nothing tightens them on upgrade, and the doctor said nothing."""
    data, backups = older_install
    code, found = doctor("--only", "permissions")
    assert code == 1
    finding = found["permissions"]
    assert finding["status"] == "fail"
    assert f"{data} (0755)" in finding["summary"]
    assert f"{data / 'tidings.sqlite3'} (0644)" in finding["summary"]
    assert "static" not in finding["summary"]  # public files are not a problem
    assert f"`chmod -R go-rwx {data} {backups}`" in finding["fix"]

    # The command it gives is the fix: run it, and the check passes.
    result = subprocess.run(["chmod", "-R", "go-rwx", str(data), str(backups)], check=False)
    assert result.returncode == 0
    code, found = doctor("--only", "permissions")
    assert (code, found["permissions"]["status"]) == (0, "ok"), found


def test_a_file_its_group_can_read_is_a_warning(older_install):
    data, backups = older_install
    subprocess.run(["chmod", "-R", "go-rwx", str(data), str(backups)], check=True)
    (backups / "2026-01-01T030000").chmod(0o750)
    code, found = doctor("--only", "permissions")
    assert code == 0
    assert found["permissions"]["status"] == "warn"
    assert "(0750) can be read by the files' group" in found["permissions"]["summary"]
    assert f"`chmod -R go-rwx {backups}`" in found["permissions"]["fix"]


def test_a_database_outside_the_data_directory_is_checked_too(
    older_install, settings, tmp_path, monkeypatch
):
    data, backups = older_install
    subprocess.run(["chmod", "-R", "go-rwx", str(data), str(backups)], check=True)
    elsewhere = tmp_path / "elsewhere.sqlite3"
    elsewhere.write_bytes(b"")
    elsewhere.chmod(0o644)
    database = {**settings.DATABASES["default"], "ENGINE": "django.db.backends.sqlite3"}
    database["NAME"] = str(elsewhere)
    # Not the settings fixture: Django warns that overriding DATABASES breaks connections.
    from tidings.ops.checks import permissions

    monkeypatch.setattr(permissions.settings, "DATABASES", {"default": database})
    code, found = doctor("--only", "permissions")
    monkeypatch.undo()
    assert code == 1
    assert f"{elsewhere} (0644)" in found["permissions"]["summary"]
    assert f"`chmod -R go-rwx {elsewhere}`" in found["permissions"]["fix"]


def test_a_secret_file_every_user_can_read_fails_but_its_group_may_read_it(
    older_install, tmp_path, monkeypatch
):
    """Secrets given as ``NAME_FILE`` live outside the data directory (the README puts them in
    /etc/tidings, 0640 root:tidings): the doctor looked only at the data directory, so a secret key
    every user of the machine could read passed."""
    data, backups = older_install
    subprocess.run(["chmod", "-R", "go-rwx", str(data), str(backups)], check=True)
    etc = tmp_path / "etc"
    etc.mkdir()
    secret, suppression = etc / "secret_key", etc / "suppression_key"
    for path in (secret, suppression):
        path.write_text("s" * 50)
    secret.chmod(0o644)
    suppression.chmod(0o640)  # the documented set-up: the service's group reads it
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("TIDINGS_SUPPRESSION_KEY_FILE", str(suppression))
    code, found = doctor("--only", "permissions")
    assert code == 1
    finding = found["permissions"]
    assert finding["status"] == "fail"
    assert f"{secret} (0644) can be read by every user" in finding["summary"]
    assert str(suppression) not in finding["summary"]
    # Not go-rwx: that would lock the service's group out of its own secret.
    assert finding["fix"].startswith(f"`chmod o-rwx {secret}`")

    secret.chmod(0o640)
    code, found = doctor("--only", "permissions")
    assert (code, found["permissions"]["status"]) == (0, "ok"), found
    assert f"{secret}, {suppression}: not every user's" in found["permissions"]["summary"]
