"""Settings come from the environment, with safe defaults; production refuses unsafe ones."""

import os
import sqlite3
import subprocess
import sys

import pytest


def tidings(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIDINGS_", "DJANGO_"))}
    base.pop("DATABASE_URL", None)
    base.pop("SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path):
    result = tidings("check", env={"TIDINGS_ENV": "production"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "tidings: SECRET_KEY: production mode refuses to start with the default secret key; "
        "set SECRET_KEY (or SECRET_KEY_FILE) to a long random value"
    ]
    result = tidings(
        "check", env={"TIDINGS_ENV": "production", "SECRET_KEY": "change-me"}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "refuses to start with the default secret key" in result.stderr


def test_production_with_a_secret_from_a_file_and_an_explicit_policy_starts(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x" * 60)
    from tidings.policy.commands import EXAMPLE_POLICY

    result = tidings(
        "check",
        env={
            "TIDINGS_ENV": "production",
            "SECRET_KEY_FILE": str(secret),
            "TIDINGS_POLICY": str(EXAMPLE_POLICY),
            "TIDINGS_BASE_URL": "https://news.example.co.uk",
            "TIDINGS_DATA_DIR": str(tmp_path / "data"),
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_production_needs_the_installation_s_own_policy(tmp_path):
    result = tidings(
        "check", env={"TIDINGS_ENV": "production", "SECRET_KEY": "y" * 60}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "TIDINGS_POLICY: production mode needs the path of your policy.toml" in result.stderr


def test_debug_is_off_unless_asked_and_never_in_production(tmp_path, settings):
    assert settings.DEBUG is False
    result = tidings("check", env={"TIDINGS_ENV": "production", "TIDINGS_DEBUG": "1"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "debug mode cannot be used with TIDINGS_ENV=production" in result.stderr


def test_a_misspelt_setting_is_one_clear_line(tmp_path):
    result = tidings("check", env={"TIDINGS_DEBUG": "perhaps"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tidings: TIDINGS_DEBUG: expected a yes/no value (1/0, true/false), got 'perhaps'"
    )


def test_a_broken_policy_stops_start_up_naming_the_key(tmp_path):
    from tidings.policy.commands import EXAMPLE_POLICY

    policy = tmp_path / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace('lawful_basis = "contract"', 'lawful_basis = "whim"', 1)
    )
    result = tidings("check", env={"TIDINGS_POLICY": str(policy)}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"tidings: {policy}: purposes.order.lawful_basis: ")
    assert "Traceback" not in result.stderr


def test_the_embedded_database_is_sqlite_in_wal_mode_with_a_kept_secret(tmp_path):
    data = tmp_path / "data"
    result = tidings("migrate", "--no-input", env={"TIDINGS_DATA_DIR": str(data)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(data / "tidings.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    key_file = data / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(key_file.read_text()) >= 50


@pytest.mark.django_db
def test_sqlite_connections_use_immediate_transactions(settings):
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite only")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
