"""Settings: the secret key, the public address, allowed hosts, and Django's own system checks."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register


@register("settings", order=10)
def check_settings() -> list[Finding]:
    return [_secret_key(), _base_url(), _allowed_hosts(), _proxy()]


def _secret_key() -> Finding:
    key = settings.SECRET_KEY
    generated = (settings.DATA_DIR / "secret_key").exists() and not _key_from_environment()
    if len(key) < 32 or key.lower() in getattr(settings, "INSECURE_SECRET_KEYS", ()):
        return Finding(
            "settings.secret_key",
            FAIL,
            "SECRET_KEY is short or a known placeholder",
            "set SECRET_KEY_FILE to a file holding `python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'`",
        )
    if key in settings.SECRET_KEY_FALLBACKS:
        return Finding(
            "settings.secret_key",
            FAIL,
            "SECRET_KEY is also listed in TIDINGS_SECRET_KEY_FALLBACKS",
            "keep only old keys in the fallbacks",
        )
    if generated and settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return Finding(
            "settings.secret_key",
            WARN,
            f"SECRET_KEY was generated into {settings.DATA_DIR / 'secret_key'} on this machine, "
            "but the database is shared (PostgreSQL)",
            "every web and worker machine must use the same key: copy that file to each "
            "and point SECRET_KEY_FILE at it",
        )
    if not getattr(settings, "TIDINGS_SUPPRESSION_KEY", "").startswith("suppression:"):
        return Finding("settings.secret_key", OK, "SECRET_KEY and TIDINGS_SUPPRESSION_KEY are set")
    return Finding(
        "settings.secret_key",
        OK if not settings.PRODUCTION else WARN,
        "SECRET_KEY is set; the suppression list's hashes are keyed with it",
        ""
        if not settings.PRODUCTION
        else "set TIDINGS_SUPPRESSION_KEY (any long random value) before you ever rotate "
        "SECRET_KEY, or the suppression list and the erasure journal stop matching",
    )


def _key_from_environment() -> bool:
    import os

    return bool(os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE"))


def _base_url_from_environment() -> bool:
    import os

    return bool(os.environ.get("TIDINGS_BASE_URL"))


def _base_url() -> Finding:
    url = settings.TIDINGS_BASE_URL
    parts = urlsplit(url)
    if parts.scheme == "https":
        return Finding("settings.base_url", OK, f"TIDINGS_BASE_URL is {url}")
    local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if local and not settings.PRODUCTION:
        if not _base_url_from_environment():
            if settings.TIDINGS_SUPPORT_ADDRESS:
                # The help desk's LMTP server acknowledges mail on its own: no serving address.
                return Finding(
                    "settings.base_url",
                    WARN,
                    "TIDINGS_BASE_URL is not set: acknowledgements of support mail would link "
                    f"to {url}, so `tidings inbound serve` and `tidings worker --lmtp` refuse "
                    "to start",
                    "set TIDINGS_BASE_URL to the address people reach tidings at",
                )
            # `tidings serve` links to where it serves (web/demo.py, follow_serving_address):
            # the default is what the other commands, run on their own, put in links.
            return Finding(
                "settings.base_url",
                OK,
                "TIDINGS_BASE_URL is not set: `tidings serve` links to the address it serves on "
                f"(this machine only); other commands run on their own use {url}",
            )
        return Finding("settings.base_url", OK, f"TIDINGS_BASE_URL is {url} (this machine only)")
    return Finding(
        "settings.base_url",
        FAIL if settings.PRODUCTION else WARN,
        f"TIDINGS_BASE_URL is {url}: links in emails and session cookies are not protected by TLS",
        "set TIDINGS_BASE_URL=https://your.host and serve it behind a TLS proxy (deploy/)",
    )


def _allowed_hosts() -> Finding:
    hosts = list(dict.fromkeys(settings.ALLOWED_HOSTS))
    base_host = urlsplit(settings.TIDINGS_BASE_URL).hostname or ""
    if "*" in hosts:
        return Finding(
            "settings.allowed_hosts",
            FAIL,
            "ALLOWED_HOSTS contains '*': any Host header is accepted (poisoned links in emails)",
            f"set TIDINGS_ALLOWED_HOSTS={base_host}",
        )
    from django.http.request import validate_host

    if not validate_host(base_host, hosts):
        return Finding(
            "settings.allowed_hosts",
            FAIL,
            f"the base URL's host {base_host} is not in TIDINGS_ALLOWED_HOSTS ({', '.join(hosts)})",
            f"add {base_host} to TIDINGS_ALLOWED_HOSTS",
        )
    return Finding("settings.allowed_hosts", OK, f"allowed hosts: {', '.join(hosts)}")


def _proxy() -> Finding:
    """Django's deployment checks, and whether HTTPS is known behind a proxy."""
    from django.core import checks

    # Not the silenced ones, as `tidings check` leaves them out (settings.py says which and why).
    messages = [
        m
        for m in checks.run_checks(include_deployment_checks=settings.PRODUCTION)
        if not m.is_silenced()
    ]
    errors = [m for m in messages if m.level >= checks.ERROR]
    warnings = [m for m in messages if checks.WARNING <= m.level < checks.ERROR]
    if errors:
        first = errors[0]
        return Finding(
            "settings.django_checks",
            FAIL,
            f"{len(errors)} error(s) from Django's system checks, first: {first.id}: {first.msg}",
            first.hint or "run `tidings check --deploy` for all of them",
        )
    if warnings:
        ids = ", ".join(sorted({m.id or "?" for m in warnings}))
        return Finding(
            "settings.django_checks",
            WARN,
            f"{len(warnings)} warning(s) from Django's system checks: {ids}",
            "run `tidings check --deploy` to read them",
        )
    return Finding("settings.django_checks", OK, "Django's system checks pass")
