"""Settings come from the environment, with safe defaults; production refuses unsafe ones."""

import io
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidings.policy.commands import EXAMPLE_POLICY

# Each start-up below is a fresh process (settings are read once per process), and starting
# tidings costs seconds on a busy machine: the module starts them all at once, each in a folder
# of its own, and the tests read what each printed.  One xdist group, so they start once a run.
pytestmark = pytest.mark.xdist_group("start-up")

PRODUCTION = {"TIDINGS_ENV": "production"}
GOOD_SECRET = {"SECRET_KEY": "y" * 60}


def _broken_policy(folder: Path) -> dict[str, str]:
    policy = folder / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace('lawful_basis = "contract"', 'lawful_basis = "whim"', 1)
    )
    return {"TIDINGS_POLICY": str(policy)}


def _secret_from_a_file(folder: Path) -> dict[str, str]:
    secret = folder / "secret"
    secret.write_text("x" * 60)
    return {
        **PRODUCTION,
        "SECRET_KEY_FILE": str(secret),
        "TIDINGS_POLICY": str(EXAMPLE_POLICY),
        "TIDINGS_BASE_URL": "https://news.example.co.uk",
        "TIDINGS_DATA_DIR": str(folder / "data"),
    }


def _the_readme_s_production_setup(folder: Path, **changes: str) -> dict[str, str]:
    """deploy/tidings.env.example as the README installs it (TLS at the Caddy or nginx proxy),
    with its files in ``folder`` and SQLite (the settings checks need no database)."""
    env = {}
    for line in (
        (Path(__file__).parents[1] / "deploy" / "tidings.env.example").read_text().split("\n")
    ):
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value.strip('"')
    for name in ("SECRET_KEY_FILE", "TIDINGS_SUPPRESSION_KEY_FILE", "TIDINGS_METRICS_TOKEN_FILE"):
        env[name] = str(folder / name.lower())
        Path(env[name]).write_text(name * 5)
    del env["DATABASE_URL"], env["TIDINGS_REDIS_URL"]
    return {
        **env,
        "TIDINGS_DATA_DIR": str(folder / "data"),
        "TIDINGS_POLICY": str(EXAMPLE_POLICY),  # a path of one's own: not refused (E004)
        **changes,
    }


def _data_dir_under_a_file(folder: Path) -> dict[str, str]:
    (folder / "not-a-folder").write_text("x")
    return {"TIDINGS_DATA_DIR": str(folder / "not-a-folder" / "var")}


TIDINGS = [sys.executable, "-m", "tidings"]
# name: (command line, environment or a function of the process's folder returning it)
START_UPS = {
    "production without a secret": ([*TIDINGS, "check"], PRODUCTION),
    "production with a placeholder secret": (
        [*TIDINGS, "check"],
        {**PRODUCTION, "SECRET_KEY": "change-me"},
    ),
    "production worker in debug": (
        [*TIDINGS, "worker", "--batch"],
        {**PRODUCTION, **GOOD_SECRET, "TIDINGS_DEBUG": "1"},
    ),
    "production wsgi in debug": (
        [sys.executable, "-c", "import tidings.wsgi"],
        {**PRODUCTION, **GOOD_SECRET, "TIDINGS_DEBUG": "1"},
    ),
    "production with a secret file and a policy": ([*TIDINGS, "check"], _secret_from_a_file),
    "production without its own policy": ([*TIDINGS, "check"], {**PRODUCTION, **GOOD_SECRET}),
    "production in debug": ([*TIDINGS, "check"], {**PRODUCTION, "TIDINGS_DEBUG": "1"}),
    "production without its own policy, silenced from the environment": (
        [*TIDINGS, "check"],
        {**PRODUCTION, **GOOD_SECRET, "TIDINGS_SILENCED_CHECKS": " tidings.E004 ,"},
    ),
    "a misspelt silenced check": (
        [*TIDINGS, "check"],
        {"TIDINGS_SILENCED_CHECKS": "tidings.E004,E04"},
    ),
    "a misspelt setting": ([*TIDINGS, "check"], {"TIDINGS_DEBUG": "perhaps"}),
    "a misspelt limit": ([*TIDINGS, "check"], {"TIDINGS_BOOKING_LIMIT": "5 per minute"}),
    "limits from the environment": (
        [
            *TIDINGS,
            "shell",
            "-c",
            "from tidings.lib.ratelimit import setting_limit as s;"
            "import sys; sys.stderr.write(repr((s('TIDINGS_BOOKING_LIMIT', (5, 600)),"
            " s('TIDINGS_ENQUIRY_LIMIT', (5, 600)), s('TIDINGS_RIGHTS_LIMIT', (5, 600)))))",
        ],
        {"TIDINGS_BOOKING_LIMIT": "2/60", "TIDINGS_ENQUIRY_LIMIT": " 100/3600 "},
    ),
    "a broken policy": ([*TIDINGS, "check"], _broken_policy),
    "a Redis URL that is not one": (
        [*TIDINGS, "worker"],
        {"TIDINGS_REDIS_URL": "http://:s3cret-pw@127.0.0.1:6379/0"},
    ),
    "a data directory that cannot be made": ([*TIDINGS, "doctor"], _data_dir_under_a_file),
    "an unreadable secret key file": (
        [*TIDINGS, "check"],
        lambda folder: {**PRODUCTION, "SECRET_KEY_FILE": str(folder / "missing")},
    ),
    "an empty secret key file": (
        [*TIDINGS, "check"],
        lambda folder: {
            **PRODUCTION,
            "SECRET_KEY_FILE": str(folder / "empty"),
            "TIDINGS_POLICY": str(EXAMPLE_POLICY),
            "X": (folder / "empty").write_text("\n") and "",
        },
    ),
    "the README's production setup": (
        [*TIDINGS, "doctor", "--json", "--only", "settings"],
        _the_readme_s_production_setup,
    ),
    "the README's setup with an http base URL": (
        [*TIDINGS, "doctor", "--json", "--only", "settings"],
        lambda folder: _the_readme_s_production_setup(
            folder, TIDINGS_BASE_URL="http://news.example.com"
        ),
    ),
    "the README's setup with HSTS for the whole domain": (
        [
            *TIDINGS,
            "shell",
            "-c",
            "from django.conf import settings as s; import sys; sys.stderr.write(repr(("
            "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)))",
        ],
        lambda folder: _the_readme_s_production_setup(
            folder, TIDINGS_HSTS_INCLUDE_SUBDOMAINS="1", TIDINGS_HSTS_PRELOAD="1"
        ),
    ),
}


@dataclass(frozen=True)
class Started:
    folder: Path
    returncode: int
    stderr: str
    stdout: str


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> dict[str, Started]:
    """Every start-up in START_UPS, run at the same time; what each process left behind."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIDINGS_", "DJANGO_"))}
    base.pop("DATABASE_URL", None)
    base.pop("SECRET_KEY", None)
    running = {}
    for name, (command, env) in START_UPS.items():
        folder = tmp_path_factory.mktemp("start-up")
        if callable(env):
            env = env(folder)
        process = subprocess.Popen(
            command,
            env={**base, **env},
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running[name] = (folder, process)
    done = {}
    for name, (folder, process) in running.items():
        stdout, stderr = process.communicate(timeout=300)
        done[name] = Started(folder, process.returncode, stderr, stdout)
    return done


def test_production_refuses_to_start_without_a_real_secret_key(started):
    result = started["production without a secret"]
    assert result.returncode == 1
    # One line per error, with its fix: not Django's six-line report ("SystemCheckError: System
    # check identified some issues:", "ERRORS:", "?: (…)", "\tHINT: …").
    assert result.stderr.splitlines() == [
        "tidings: (tidings.E001) SECRET_KEY: not set; production mode refuses to start without "
        "a secret key. — fix: Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, the same "
        "on every machine: python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
        "tidings: (tidings.E004) TIDINGS_POLICY: production mode needs the path of your "
        f"policy.toml. — fix: Copy the example policy ({EXAMPLE_POLICY}), describe your "
        "organisation in it, check it with `tidings policy check FILE`, and set TIDINGS_POLICY "
        "to its path.",
    ]
    assert not (result.folder / "var" / "secret_key").exists()  # production never makes one up
    result = started["production with a placeholder secret"]
    assert result.returncode == 1
    # It said "the default secret key" for all three cases, a key never set among them.
    assert "(tidings.E001) SECRET_KEY: production mode refuses to start with a placeholder " in (
        result.stderr
    )
    assert "change-me. —" not in result.stderr.replace("(change-me", "")  # the value: not shown
    empty = started["an empty secret key file"]
    assert empty.returncode == 1
    assert (
        f"(tidings.E001) SECRET_KEY_FILE: {empty.folder / 'empty'} is empty; production mode "
        "needs a secret key." in empty.stderr
    )
    assert not (result.folder / "var" / "secret_key").exists()


def test_the_worker_and_the_wsgi_entry_point_refuse_what_check_refuses(started):
    result = started["production worker in debug"]
    assert result.returncode == 1
    assert "(tidings.E003)" in result.stderr and "(tidings.E004)" in result.stderr
    assert len(result.stderr.splitlines()) == 2  # one line each
    loaded = started["production wsgi in debug"]
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: (tidings.E003) TIDINGS_DEBUG" in loaded.stderr


def test_production_with_a_secret_from_a_file_and_an_explicit_policy_starts(started):
    result = started["production with a secret file and a policy"]
    assert result.returncode == 0, result.stderr


def test_production_needs_the_installation_s_own_policy(started):
    result = started["production without its own policy"]
    assert result.returncode == 1
    assert (
        "(tidings.E004) TIDINGS_POLICY: production mode needs the path of your policy.toml"
        in result.stderr
    )


def test_debug_is_off_unless_asked_and_never_in_production(started, settings):
    assert settings.DEBUG is False
    result = started["production in debug"]
    assert result.returncode == 1
    assert (
        "(tidings.E003) TIDINGS_DEBUG: debug mode cannot be used with TIDINGS_ENV=production"
        in result.stderr
    )


def test_a_misspelt_setting_is_one_clear_line(started):
    result = started["a misspelt setting"]
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tidings: TIDINGS_DEBUG: expected a yes/no value (1/0, true/false), got 'perhaps'"
    )


def test_the_public_forms_limits_are_read_from_the_environment(started):
    """The README named TIDINGS_BOOKING_LIMIT, _ENQUIRY_LIMIT and _RIGHTS_LIMIT, but nothing
    read them: setting one changed nothing."""
    result = started["limits from the environment"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("((2, 60), (100, 3600), (5, 600))")
    misspelt = started["a misspelt limit"]
    assert misspelt.returncode == 1
    assert misspelt.stderr.strip() == (
        "tidings: TIDINGS_BOOKING_LIMIT: expected COUNT/SECONDS such as 5/600 (five in ten "
        "minutes), got '5 per minute'"
    )


def test_a_redis_url_of_another_kind_stops_start_up_in_one_line_without_its_password(started):
    """An http:// (or misspelt) TIDINGS_REDIS_URL started the worker, which then logged a
    ValueError traceback every second, and every public form answered 500."""
    result = started["a Redis URL that is not one"]
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tidings: TIDINGS_REDIS_URL: expected redis://[:password@]host[:port][/db], rediss://... "
        "(TLS) or unix:///path/to/redis.sock"
    )


def test_a_broken_policy_stops_start_up_naming_the_key(started):
    result = started["a broken policy"]
    policy = result.folder / "policy.toml"
    assert result.returncode == 1
    assert result.stderr.startswith(f"tidings: {policy}: purposes.order.lawful_basis: ")
    assert "Traceback" not in result.stderr


def test_the_embedded_database_is_sqlite_in_wal_mode_with_a_kept_secret(migrated_installation):
    # `tidings migrate` run once, with nothing but TIDINGS_DATA_DIR set (tests/conftest.py).
    data = migrated_installation
    with sqlite3.connect(f"file:{data / 'tidings.sqlite3'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    key_file = data / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(key_file.read_text()) >= 50
    # Everyone's personal data: not readable by the machine's other users (it was 0644, made
    # with the umask of whoever ran `tidings migrate`), nor is the folder it is in.
    assert os.umask(os.umask(0o022)) & 0o044 == 0  # the test's own umask lets others read
    assert oct((data / "tidings.sqlite3").stat().st_mode & 0o777) == "0o600"
    assert oct(data.stat().st_mode & 0o777) == "0o700"


@pytest.mark.django_db
def test_sqlite_connections_use_immediate_transactions(settings):
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite only")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


# --- the system checks, one by one (web/checks.py; the README lists them) ------------------------
def errors(tag: str = "tidings", **kwargs) -> dict[str, str]:
    from django.core.checks import run_checks

    return {m.id: m.msg for m in run_checks(tags=[tag], **kwargs)}


def test_a_development_installation_passes_every_check(settings):
    assert errors() == {}
    assert errors("security", include_deployment_checks=True).get("tidings.W201") is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("change-me", "tidings.E001"),
        ("django-insecure-" + "x" * 40, "tidings.E001"),
        ("short-but-random-31-characters!", "tidings.E002"),
    ],
)
def test_production_refuses_a_missing_placeholder_or_short_secret_key(settings, key, expected):
    settings.PRODUCTION = True
    settings.TIDINGS_POLICY_IS_EXAMPLE = False
    settings.SECRET_KEY = key
    assert list(errors()) == [expected]
    settings.SECRET_KEY = "k" * 32
    assert errors() == {}


def test_production_refuses_debug_and_the_example_policy(settings):
    settings.PRODUCTION = True
    settings.SECRET_KEY = "k" * 50
    settings.DEBUG = True
    settings.TIDINGS_POLICY_IS_EXAMPLE = True
    assert set(errors()) == {"tidings.E003", "tidings.E004"}
    settings.PRODUCTION = False  # the same settings on one machine are allowed
    assert errors() == {}


def test_sign_ups_cannot_be_purged_before_their_confirmation_link_expires(settings):
    settings.TIDINGS_CONFIRM_DAYS = 7
    settings.TIDINGS_PENDING_DAYS = 3
    assert errors() == {
        "tidings.E005": "TIDINGS_PENDING_DAYS: must be at least TIDINGS_CONFIRM_DAYS (3 < 7)."
    }


def test_two_factor_takes_one_of_three_values_and_none_is_flagged_in_production(settings):
    settings.TIDINGS_REQUIRE_2FA = "sometimes"
    assert list(errors()) == ["tidings.E006"]
    settings.TIDINGS_REQUIRE_2FA = "none"
    assert errors() == {}
    settings.PRODUCTION = True
    settings.SECRET_KEY = "k" * 50
    settings.TIDINGS_POLICY_IS_EXAMPLE = False
    deploy = errors("security", include_deployment_checks=True)
    assert "tidings.W201" in deploy


def test_delivery_settings_out_of_range_are_named(settings):
    settings.TIDINGS_DELIVERY_WINDOW = 0
    settings.TIDINGS_BREAKER_THRESHOLD = 1.5
    settings.TIDINGS_BOUNCE_VERP = True
    settings.TIDINGS_BOUNCE_ADDRESS = ""
    from django.core.checks import run_checks

    found = sorted(m.msg for m in run_checks(tags=["tidings"]) if m.id == "tidings.E010")
    assert found == [
        "TIDINGS_BOUNCE_VERP: needs TIDINGS_BOUNCE_ADDRESS (ignored without).",
        "TIDINGS_BREAKER_THRESHOLD: must be a fraction from 0 to 1.",
        "TIDINGS_DELIVERY_WINDOW: must be at least 1.",
    ]
    settings.TIDINGS_DELIVERY_WINDOW = "many"
    assert list(errors()) == ["tidings.E010"]
    assert errors()["tidings.E010"] == "TIDINGS_DELIVERY_WINDOW: expected a number, got 'many'"


def test_the_delivery_defaults_live_in_one_place(settings):
    from tidings.campaigns.config import DeliveryConfig

    # settings.py leaves what the environment does not set as None; the config fills it in.
    assert settings.TIDINGS_DELIVERY_WINDOW is None
    config = DeliveryConfig.from_settings()
    assert (config.window, config.chunk, config.flush_ms, config.lease_seconds) == (
        200,
        100,
        50,
        30,
    )
    settings.TIDINGS_DELIVERY_WINDOW = 40
    assert DeliveryConfig.from_settings().chunk == 40  # a claim never exceeds the window
    assert DeliveryConfig.from_settings(window=10).window == 10


def test_a_data_directory_that_cannot_be_made_is_one_clear_line(started):
    result = started["a data directory that cannot be made"]
    assert result.returncode == 1
    data_dir = result.folder / "not-a-folder" / "var"
    assert result.stderr.strip() == (
        f"tidings: TIDINGS_DATA_DIR: cannot create {data_dir}: Not a directory"
    )


def test_an_unreadable_secret_key_file_is_one_line_naming_it_once(started):
    result = started["an unreadable secret key file"]
    path = result.folder / "missing"
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"tidings: SECRET_KEY_FILE: cannot read {path}: No such file or directory"
    )


def _doctor_findings(result: Started) -> dict[str, dict]:
    import json

    return {f["name"]: f for f in json.loads(result.stdout)["checks"]}


def test_the_readme_s_production_setup_passes_the_doctor_s_settings_checks(started):
    """Installed as the README says (TLS and the http:// redirect at the proxy), `tidings
    doctor` warned security.W005, W008 and W021, which no tidings setting could clear, while
    the README showed "ok"."""
    result = started["the README's production setup"]
    assert result.returncode == 0, result.stdout + result.stderr
    found = _doctor_findings(result)
    assert {name: f["status"] for name, f in found.items()} == {
        "settings.secret_key": "ok",
        "settings.base_url": "ok",
        "settings.allowed_hosts": "ok",
        "settings.django_checks": "ok",
    }
    assert found["settings.django_checks"]["summary"] == "Django's system checks pass"


def test_a_setup_without_tls_still_gets_the_warnings(started):
    result = started["the README's setup with an http base URL"]
    assert result.returncode == 1
    found = _doctor_findings(result)
    assert found["settings.base_url"]["status"] == "fail"
    django = found["settings.django_checks"]
    assert django["status"] == "warn"
    # No HSTS, no redirect, cookies not Secure: each a real warning here.
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in django["summary"]


def test_hsts_for_the_whole_domain_and_preloading_are_the_admin_s_choice(started):
    result = started["the README's setup with HSTS for the whole domain"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("(True, True)")


def test_an_error_the_operator_silenced_does_not_stop_the_wsgi_entry_point(settings):
    """`tidings check` and `tidings serve` leave out the checks in SILENCED_SYSTEM_CHECKS; the
    WSGI/ASGI entry points' refusal (``refuse_unsafe_start``) ignored it and would not start."""
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command

    from tidings.web.checks import refuse_unsafe_start

    settings.TIDINGS_CONFIRM_DAYS = 7
    settings.TIDINGS_PENDING_DAYS = 3
    with pytest.raises(ImproperlyConfigured, match=r"tidings\.E005"):
        refuse_unsafe_start()

    settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "tidings.E005"]
    call_command("check", "--tag", "tidings", fail_level="ERROR", stdout=io.StringIO())
    refuse_unsafe_start()  # as `tidings check` above: no error


def test_a_check_is_silenced_from_the_environment_and_a_misspelt_id_is_refused(started):
    """Silencing a check took a settings module of one's own; a container or a systemd unit has
    only its environment."""
    assert started["production without its own policy"].returncode == 1
    result = started["production without its own policy, silenced from the environment"]
    assert result.returncode == 0, result.stderr
    assert "tidings.E004" not in result.stderr
    result = started["a misspelt silenced check"]
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "TIDINGS_SILENCED_CHECKS: 'E04' is not a check id (like tidings.E005 or security.W008)"
    ), result.stderr
