"""Settings, read from the environment.

Every setting has a safe embedded default (SQLite in ``TIDINGS_DATA_DIR``, the example policy, the
outbox transport), so ``tidings demo`` works on a fresh machine.  ``TIDINGS_ENV=production`` turns
the defaults that are only fit for one machine into errors at start-up: Django system checks with
ids (``tidings.E001``…, ``web/checks.py``, listed in the README), which ``tidings serve``,
``tidings worker``, ``tidings check`` and the WSGI/ASGI entry points run before they start.  A
value that cannot even be read (``TIDINGS_DEBUG=perhaps``) stops start-up here, in one line.
Secrets may be given as ``NAME_FILE`` (a path whose contents are the value), for container
secrets.

Subsystems read their settings once into a frozen object (the delivery engine:
``campaigns.config.DeliveryConfig``), which holds their defaults: a variable left unset here is
None, and the object fills in its default.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or the contents of the file named by ``<name>_FILE``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            # exc names the file already ("[Errno 2] No such file or directory: '/etc/...'").
            raise ImproperlyConfigured(
                f"{name}_FILE: cannot read {file_path}: {exc.strerror or exc}"
            ) from None
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}: expected a yes/no value (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    value = env_opt_int(name)
    return default if value is None else value


def env_opt_int(name: str) -> int | None:
    """The whole number in ``name``, or None when it is unset or blank."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {raw!r}") from None


def env_limit(name: str) -> tuple[int, int] | None:
    """A rate limit written "COUNT/SECONDS" ("5/600": five in ten minutes), or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    count, slash, seconds = raw.partition("/")
    try:
        limit = (int(count), int(seconds))
    except ValueError:
        limit = (0, 0)
    if not slash or limit[0] < 1 or limit[1] < 1:
        raise ImproperlyConfigured(
            f"{name}: expected COUNT/SECONDS such as 5/600 (five in ten minutes), got {raw!r}"
        )
    return limit


def env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {raw!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- mode ------------------------------------------------------------------------------------
TIDINGS_ENV = os.environ.get("TIDINGS_ENV", "development").strip().lower()
if TIDINGS_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"TIDINGS_ENV: expected development or production, got {TIDINGS_ENV!r}"
    )
PRODUCTION = TIDINGS_ENV == "production"
DEBUG = env_bool("TIDINGS_DEBUG", default=False)  # production refuses it: tidings.E003

DATA_DIR = Path(os.environ.get("TIDINGS_DATA_DIR", Path.cwd() / "var")).resolve()


def make_dir(path: Path, setting: str = "TIDINGS_DATA_DIR") -> None:
    """Create ``path`` (a folder tidings writes to); one clear line when that is impossible."""
    try:
        # Owner only, as the files in it: the database, the secret key, DKIM keys, exports.
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{setting}: cannot create {path}: {exc.strerror or exc}"
        ) from None


# --- secret key ------------------------------------------------------------------------------
# Without SECRET_KEY, a single machine generates one and keeps it in the data directory (0600), so
# signed links survive restarts.  Production (several processes on several machines) must share an
# explicit key: starting without one, or with a known placeholder, is refused (tidings.E001), and
# so is a short one (tidings.E002).
INSECURE_SECRET_KEYS = frozenset({"", "change-me", "changeme", "secret", "insecure"})
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and not PRODUCTION:  # production never generates one: machines must share it
    _key_file = DATA_DIR / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text(encoding="utf-8").strip()
    else:
        make_dir(DATA_DIR)
        SECRET_KEY = secrets.token_urlsafe(50)
        try:
            _key_file.touch(mode=0o600)
            _key_file.write_text(SECRET_KEY, encoding="utf-8")
        except OSError as exc:
            raise ImproperlyConfigured(
                f"TIDINGS_DATA_DIR: cannot write {_key_file}: {exc.strerror or exc}"
            ) from None
# Rotating the key: put the old one in TIDINGS_SECRET_KEY_FALLBACKS (comma-separated) for a grace
# period, so links already mailed (confirmation, preferences, rights verification) keep working.
SECRET_KEY_FALLBACKS = env_list("TIDINGS_SECRET_KEY_FALLBACKS") or env_list("SECRET_KEY_FALLBACKS")

# --- URLs and hosts --------------------------------------------------------------------------
TIDINGS_BASE_URL = os.environ.get("TIDINGS_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
_base = urlsplit(TIDINGS_BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ImproperlyConfigured(
        f"TIDINGS_BASE_URL: expected an absolute http(s) URL, got {TIDINGS_BASE_URL!r}"
    )
ALLOWED_HOSTS = env_list(
    "TIDINGS_ALLOWED_HOSTS",
    [_base.hostname] if PRODUCTION else [_base.hostname, "127.0.0.1", "localhost", "[::1]"],
)
CSRF_TRUSTED_ORIGINS = env_list(
    "TIDINGS_CSRF_TRUSTED_ORIGINS", [f"{_base.scheme}://{_base.netloc}"]
)
USE_TLS = _base.scheme == "https"
SESSION_COOKIE_SECURE = USE_TLS
CSRF_COOKIE_SECURE = USE_TLS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Proto, and rate limits use the
# last hop of X-Forwarded-For instead of the proxy's own address.
TIDINGS_BEHIND_PROXY = env_bool("TIDINGS_BEHIND_PROXY", default=False)
if TIDINGS_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# TIDINGS_HTTPS: served over TLS even if TIDINGS_BASE_URL says http (rare; the scheme decides).
USE_TLS = USE_TLS or env_bool("TIDINGS_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = USE_TLS
if USE_TLS:
    SECURE_HSTS_SECONDS = env_int("TIDINGS_HSTS_SECONDS", 31536000)
    # Off by default: both bind every other host of the domain (and, once preloaded, for months
    # after it is switched off) to HTTPS, which only the domain's owner can decide.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("TIDINGS_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env_bool("TIDINGS_HSTS_PRELOAD", default=False)
    # Off by default: behind a TLS proxy without TIDINGS_BEHIND_PROXY it would loop forever.
    SECURE_SSL_REDIRECT = env_bool("TIDINGS_SSL_REDIRECT", default=False)
# Django's deployment checks that the README's setup already answers, so `tidings check --deploy`
# and `tidings doctor` do not warn about them on every correct installation:
# - security.W005 / W021 (HSTS without includeSubDomains / preload): an informed choice, off by
#   default for the reason above; TIDINGS_HSTS_INCLUDE_SUBDOMAINS / _PRELOAD turn them on.
# - security.W008 (no SSL redirect) only with an https:// base URL behind the proxy: the README's
#   Caddy and nginx sites terminate TLS and redirect http:// themselves, and tidings only ever
#   sees the proxy.  Served any other way (an http:// base URL, no proxy) the warning stays.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
if _base.scheme == "https" and TIDINGS_BEHIND_PROXY:
    SILENCED_SYSTEM_CHECKS.append("security.W008")
# The operator's own, by id (a container or systemd unit has only its environment); a misspelt
# id would silence nothing without a word, so each must look like one ("tidings.E005").
for _check_id in env_list("TIDINGS_SILENCED_CHECKS"):
    if not re.fullmatch(r"[A-Za-z_][\w.]*\.[CEWID]\d{3}", _check_id):
        raise ImproperlyConfigured(
            f"TIDINGS_SILENCED_CHECKS: {_check_id!r} is not a check id (like tidings.E005 or "
            "security.W008)"
        )
    SILENCED_SYSTEM_CHECKS.append(_check_id)
# Operators' sessions end after 12 hours, or when the browser closes.
SESSION_COOKIE_AGE = env_int("TIDINGS_SESSION_HOURS", 12) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- the policy ------------------------------------------------------------------------------
# The example company's policy is the embedded default, so the demo runs with no configuration.
# A real installation points TIDINGS_POLICY at its own file; production refuses to run without one.
_default_policy = BASE_DIR / "policy" / "example.toml"  # = policy.commands.EXAMPLE_POLICY
TIDINGS_POLICY = Path(os.environ.get("TIDINGS_POLICY", "") or _default_policy)
# Production refuses the example policy (tidings.E004).
TIDINGS_POLICY_IS_EXAMPLE = not os.environ.get("TIDINGS_POLICY")

# --- mail ------------------------------------------------------------------------------------
# "outbox://" keeps messages in the database (the demo and tests); smtp://user:pass@host:587 or
# smtps://... sends through a real server.
TIDINGS_SMTP_URL = env_str("TIDINGS_SMTP_URL", "outbox://")


def _mailer(url: str) -> dict:
    """Django's MAILERS entry for TIDINGS_SMTP_URL."""
    parts = urlsplit(url)
    if parts.scheme == "outbox":
        return {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ImproperlyConfigured(
            "TIDINGS_SMTP_URL: expected outbox://, smtp://[user:pass@]host[:port] or smtps://..."
        )
    from urllib.parse import parse_qs, unquote

    query = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 587)
    starttls = not implicit_tls and (
        query.get("tls", ["starttls" if port == 587 else "none"])[0] == "starttls"
    )
    return {
        # Django's, giving a message without a Message-ID one at its From domain.
        "BACKEND": "tidings.campaigns.transports.mailers.SmtpEmailBackend",
        "OPTIONS": {
            "host": parts.hostname,
            "port": port,
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_ssl": implicit_tls,
            "use_tls": starttls,
            "timeout": 30,
        },
    }


MAILERS = {"default": _mailer(TIDINGS_SMTP_URL)}

# --- sending (campaigns/queue/, campaigns/engine/, campaigns/transports/) ---------------------
# Without TIDINGS_TRANSPORTS there is one transport, "default", from TIDINGS_SMTP_URL;
# TIDINGS_TRANSPORTS is the path of a TOML file, one table per transport
# (see campaigns/transports/config.py).
TIDINGS_TRANSPORTS = env_str("TIDINGS_TRANSPORTS") or None
TIDINGS_SMTP_RATE = env_str("TIDINGS_SMTP_RATE")  # "50/s", "20000/h", "50/s, 20000/h"; blank: none
TIDINGS_SMTP_CONCURRENCY = env_int("TIDINGS_SMTP_CONCURRENCY", 10)  # connections per worker
TIDINGS_SYSTEM_TRANSPORT = env_str("TIDINGS_SYSTEM_TRANSPORT")  # confirmations...; blank: any
TIDINGS_BOUNCE_ADDRESS = env_str("TIDINGS_BOUNCE_ADDRESS")  # envelope sender; blank: the From
# The queue and the engine (read once by campaigns.config.DeliveryConfig, which holds the defaults
# and says what each does; None here means "the default"): the in-flight window (the most a crash
# can send twice), rows per claim, how often results are written, the lease, retries, the circuit
# breaker, and the processes that build and sign messages.
TIDINGS_DELIVERY_WINDOW = env_opt_int("TIDINGS_DELIVERY_WINDOW")
TIDINGS_DELIVERY_CHUNK = env_opt_int("TIDINGS_DELIVERY_CHUNK")
TIDINGS_DELIVERY_FLUSH_MS = env_float("TIDINGS_DELIVERY_FLUSH_MS", None)
TIDINGS_DELIVERY_LEASE_SECONDS = env_float("TIDINGS_DELIVERY_LEASE_SECONDS", None)
TIDINGS_DELIVERY_MAX_ATTEMPTS = env_opt_int("TIDINGS_DELIVERY_MAX_ATTEMPTS")
TIDINGS_DELIVERY_IDLE_SECONDS = env_float("TIDINGS_DELIVERY_IDLE_SECONDS", None)
TIDINGS_DELIVERY_BUILDERS = env_str("TIDINGS_DELIVERY_BUILDERS") or None  # a number, or "auto"
TIDINGS_RETRY_BASE_SECONDS = env_float("TIDINGS_RETRY_BASE_SECONDS", None)
TIDINGS_DOMAIN_BACKOFF_SECONDS = env_float("TIDINGS_DOMAIN_BACKOFF_SECONDS", None)
TIDINGS_DOMAIN_BACKOFF_MAX_SECONDS = env_float("TIDINGS_DOMAIN_BACKOFF_MAX_SECONDS", None)
TIDINGS_BREAKER_THRESHOLD = env_float("TIDINGS_BREAKER_THRESHOLD", None)
TIDINGS_BREAKER_WINDOW = env_opt_int("TIDINGS_BREAKER_WINDOW")
TIDINGS_BREAKER_MIN = env_opt_int("TIDINGS_BREAKER_MIN")
TIDINGS_UNREACHABLE_PAUSE_SECONDS = env_float("TIDINGS_UNREACHABLE_PAUSE_SECONDS", None)
TIDINGS_OUTGOING_KEEP_DAYS = env_opt_int("TIDINGS_OUTGOING_KEEP_DAYS")
# Automatic protection while sending (campaigns.config.DeliveryConfig holds the defaults): a
# campaign pauses itself when complaints pass 0.3% after 1,000 deliveries, or hard bounces 5%.
TIDINGS_COMPLAINT_PAUSE_RATE = env_float("TIDINGS_COMPLAINT_PAUSE_RATE", None)
TIDINGS_COMPLAINT_PAUSE_MIN = env_opt_int("TIDINGS_COMPLAINT_PAUSE_MIN")
TIDINGS_BOUNCE_PAUSE_RATE = env_float("TIDINGS_BOUNCE_PAUSE_RATE", None)
TIDINGS_BOUNCE_PAUSE_MIN = env_opt_int("TIDINGS_BOUNCE_PAUSE_MIN")
# DKIM keys made by `tidings dkim keygen DOMAIN`: <dir>/<domain>/<selector>.pem
TIDINGS_DKIM_DIR = env_str("TIDINGS_DKIM_DIR") or str(DATA_DIR / "dkim")
TIDINGS_DKIM_SELECTOR = env_str("TIDINGS_DKIM_SELECTOR", "tidings")
# Sender domain health (campaigns/deliverability/): the DNS resolver to ask ("127.0.0.1:5353",
# several separated by commas; blank: the system's), how long a look-up may take, and the
# addresses mail leaves from when the SMTP relay's own address is not the one (blank: resolved
# from the SMTP transports' host names).
TIDINGS_DNS_RESOLVER = env_str("TIDINGS_DNS_RESOLVER")
TIDINGS_DNS_TIMEOUT = env_float("TIDINGS_DNS_TIMEOUT", 3.0)
TIDINGS_SENDING_IPS = env_str("TIDINGS_SENDING_IPS")
# Four eyes: the operator who created or last edited a campaign cannot also send it.
TIDINGS_SEND_NEEDS_SECOND_OPERATOR = env_bool("TIDINGS_SEND_NEEDS_SECOND_OPERATOR", default=False)
DEFAULT_FROM_EMAIL = os.environ.get("TIDINGS_FROM_EMAIL", "newsletter@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- bounces and complaints (campaigns/bounces/) ---------------------------------------------
# VERP: with TIDINGS_BOUNCE_ADDRESS set, each message's envelope sender names its queue row
# (bounces+d123.<mac>@example.com), so a bounce leads back to it even without a Message-ID.
TIDINGS_BOUNCE_VERP = env_bool("TIDINGS_BOUNCE_VERP", default=False)
# The bounce mailbox `tidings bounces fetch` reads: imaps://user:pass@host/INBOX, pop3s://...
TIDINGS_BOUNCE_MAILBOX_URL = env_str("TIDINGS_BOUNCE_MAILBOX_URL")
TIDINGS_BOUNCE_FETCH_MINUTES = env_int("TIDINGS_BOUNCE_FETCH_MINUTES", 5)
# The N-th soft bounce within M days suppresses the address like a hard bounce.
TIDINGS_SOFT_BOUNCE_LIMIT = env_int("TIDINGS_SOFT_BOUNCE_LIMIT", 3)
TIDINGS_SOFT_BOUNCE_DAYS = env_int("TIDINGS_SOFT_BOUNCE_DAYS", 14)
TIDINGS_BOUNCE_KEEP_DAYS = env_int("TIDINGS_BOUNCE_KEEP_DAYS", 30)  # unmatched reports' messages
# A larger bounce/complaint mail is kept as an unprocessed report without its message.
TIDINGS_BOUNCE_MAX_BYTES = env_int("TIDINGS_BOUNCE_MAX_BYTES", 10 * 1024**2)
# ESP webhooks (django-anymail, under /webhooks/anymail/<esp>/tracking/): the basic-auth
# "user:password" the ESP is told to use, and the signing keys of those that sign their posts.
# Empty values are left out: anymail would accept unauthenticated posts without a secret (our
# webhook URLs answer 404 until the ESP's secret or key is set; campaigns/bounces/webhooks.py).
ANYMAIL = {
    key: value
    for key, value in {
        "WEBHOOK_SECRET": env_str("TIDINGS_ANYMAIL_WEBHOOK_SECRET"),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env_str("TIDINGS_MAILGUN_WEBHOOK_SIGNING_KEY"),
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env_str(
            "TIDINGS_SENDGRID_WEBHOOK_VERIFICATION_KEY"
        ),
    }.items()
    if value
}

# --- applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "django_htmx",
    "django_tasks_db",
    "anymail",
    "tidings.policy",
    "tidings.lib",
    "tidings.audience",
    "tidings.campaigns",
    "tidings.crm",
    "tidings.rights",
    "tidings.booking",
    "tidings.journeys",
    "tidings.web",
    "ninja",  # serves the API docs' Swagger UI from its own static files, not a CDN
    "tidings.api",
    "tidings.analytics",
    "tidings.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tidings.lib.request_size.limit_anonymous_bodies",  # no file of any size from strangers
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "tidings.urls"
WSGI_APPLICATION = "tidings.wsgi.application"
ASGI_APPLICATION = "tidings.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tidings.web.context_processors.tidings",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------------
_default_db_url = f"sqlite:///{DATA_DIR / 'tidings.sqlite3'}"
DATABASE_URL = env_str("DATABASE_URL", _default_db_url)
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASE_URL == _default_db_url:
        make_dir(DATA_DIR)
        # The database holds everyone's personal data: made readable by its owner only (SQLite
        # gives its -wal and -shm files the database's mode).  SQLite itself made it 0644 (the
        # umask of whoever ran `tidings migrate` first): readable by every user of the machine.
        _db_file = DATA_DIR / "tidings.sqlite3"
        if not _db_file.exists():
            try:
                _db_file.touch(mode=0o600)
            except OSError as exc:
                raise ImproperlyConfigured(
                    f"TIDINGS_DATA_DIR: cannot write {_db_file}: {exc.strerror or exc}"
                ) from None
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers work while the worker writes; IMMEDIATE transactions take the write
        # lock up front so concurrent writers queue on busy_timeout instead of failing mid-way.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ---------------------------------------------------------------------------------
# Rate limits and short-lived counters.  One process: local memory.  Several web processes must
# share counters: set TIDINGS_REDIS_URL (redis://127.0.0.1:6379/0).
TIDINGS_REDIS_URL = env_str("TIDINGS_REDIS_URL").strip()
if TIDINGS_REDIS_URL and urlsplit(TIDINGS_REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    # Otherwise every use of Redis raised ValueError at run time: a traceback a second in the
    # worker's log and a 500 for every public form.  The URL may hold a password: not shown.
    raise ImproperlyConfigured(
        "TIDINGS_REDIS_URL: expected redis://[:password@]host[:port][/db], rediss://... (TLS) "
        "or unix:///path/to/redis.sock"
    )


def cache_settings(redis_url: str) -> dict[str, dict[str, str]]:
    """CACHES for ``TIDINGS_REDIS_URL``: Django's RedisCache, answering from this process's
    memory while Redis is unreachable (``lib/cache.py``), or local memory without Redis."""
    if redis_url:
        return {
            "default": {
                "BACKEND": "tidings.lib.cache.RedisCacheWithFallback",
                "LOCATION": redis_url,
            }
        }
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


CACHES = cache_settings(TIDINGS_REDIS_URL)

# Buffered ingest (tracking pixels, clicks, analytics; lib/ingest.py): rows wait in the web
# process and are written every TIDINGS_INGEST_FLUSH_SECONDS or TIDINGS_INGEST_BATCH rows (a
# crash loses at most the last interval); with TIDINGS_REDIS_URL they wait in Redis and
# `tidings worker` writes them.  0 seconds: no timer (written when a batch is full or at exit).
try:
    TIDINGS_INGEST_FLUSH_SECONDS = float(env_str("TIDINGS_INGEST_FLUSH_SECONDS", "1"))
except ValueError:
    raise ImproperlyConfigured(
        "TIDINGS_INGEST_FLUSH_SECONDS: expected seconds like 1 or 0.5"
    ) from None
TIDINGS_INGEST_BATCH = env_int("TIDINGS_INGEST_BATCH", 1000)
TIDINGS_INGEST_MAX_ROWS = env_int("TIDINGS_INGEST_MAX_ROWS", 100_000)

# --- background tasks ------------------------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- auth ------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "login"
# django-axes counts failed sign-ins first, then Django checks the password.
AUTHENTICATION_BACKENDS = [
    "tidings.web.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_RESET_TIMEOUT = env_int("TIDINGS_PASSWORD_RESET_HOURS", 2) * 3600
TIDINGS_INVITATION_DAYS = env_int("TIDINGS_INVITATION_DAYS", 7)  # operator invitations expire

# Two-factor sign-in (django-otp, TOTP + recovery codes; lib/two_factor.py).  "privileged" (the
# default) requires it of the roles that can export personal data (owner, privacy officer);
# "all" of every operator (TIDINGS_REQUIRE_2FA_FOR_ALL=1 says the same); "none" leaves it to each
# operator.  An operator who has enrolled always signs in with a code.
TIDINGS_REQUIRE_2FA = env_str("TIDINGS_REQUIRE_2FA", "privileged").strip().lower()
if env_bool("TIDINGS_REQUIRE_2FA_FOR_ALL", default=False):
    TIDINGS_REQUIRE_2FA = "all"
# Anything but privileged, all or none is refused (tidings.E006).
OTP_TOTP_ISSUER = env_str("TIDINGS_2FA_ISSUER", "tidings")

# Lockout after repeated failed sign-ins (django-axes): TIDINGS_LOCKOUT_FAILURES wrong passwords
# for one username from one address lock that pair out for TIDINGS_LOCKOUT_MINUTES.  Attempts live
# in the database (axes' tables); `python -m django axes_reset` lifts every lockout.
AXES_FAILURE_LIMIT = env_int("TIDINGS_LOCKOUT_FAILURES", 5)
AXES_COOLOFF_TIME = env_int("TIDINGS_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked_out.html"
AXES_VERBOSE = False  # axes would log usernames and addresses; the audit log records lockouts
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit log, without addresses
AXES_ENABLE_ACCESS_FAILURE_LOG = False
# The visitor as the rate limits see them (the proxy's last X-Forwarded-For entry behind
# TIDINGS_BEHIND_PROXY; an IPv6 visitor's /64).  django-ipware is not installed, so without this
# axes counted REMOTE_ADDR: behind a proxy, everyone's failures as one address's.
AXES_CLIENT_IP_CALLABLE = "tidings.lib.ratelimit.lockout_address"

# Content security policy (django-csp): scripts only from our own static files, never inline.
# Inline styles stay allowed: email previews (sandboxed srcdoc frames, which inherit this policy)
# carry the inlined CSS every email needs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- i18n ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIDINGS_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

# --- static files ----------------------------------------------------------------------------
STATIC_URL = "/static/"
# Uploads: request bodies above 10 MB (other than file uploads, which stream to disk above 2.5 MB)
# are refused with a 413 page; imports have their own limit (TIDINGS_MAX_IMPORT_BYTES).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TIDINGS_MAX_FORM_BYTES", 10 * 1024**2)
# The largest CSV file an import upload (page or API) takes; larger: `tidings import contacts`.
# The proxies in deploy/ let a little more than the default through: raise theirs with it.
TIDINGS_MAX_IMPORT_BYTES = env_int("TIDINGS_MAX_IMPORT_BYTES", 1024**3)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
STATIC_ROOT = DATA_DIR / "static"
make_dir(DATA_DIR)  # first, so that it is made owner-only, not as STATIC_ROOT's parent
make_dir(STATIC_ROOT)  # whitenoise warns on every request without it
# Served by whitenoise straight from the apps' static folders: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- logging ---------------------------------------------------------------------------------
# Log lines name records by internal id only: personal data never goes into logs.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "redact_tokens": {"()": "tidings.web.log_filters.RedactTokens"},
        # Refused requests (oversized bodies, foreign Host headers): a WARNING, no traceback.
        "refused_requests": {"()": "tidings.web.log_filters.RefusedRequestLines"},
        # Each periodic job's "state=RUNNING/SUCCESSFUL" pair only with TIDINGS_LOG_LEVEL=DEBUG;
        # failed tasks (ERROR) always.
        "routine_tasks": {
            "()": "tidings.web.log_filters.RoutineTaskLines",
            "show_below": logging.DEBUG
            if os.environ.get("TIDINGS_LOG_LEVEL", "INFO").upper() == "DEBUG"
            else logging.WARNING,
        },
        # A task a second stop signal interrupted is queued again, not failed: no ERROR line.
        "interrupted_tasks": {"()": "tidings.web.log_filters.InterruptedTaskLines"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": [
                "refused_requests",
                "redact_tokens",
                "routine_tasks",
                "interrupted_tasks",
            ],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("TIDINGS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a line per sign-in; the audit log has them
        # At DEBUG these dump whole template contexts and SQL parameters: personal data.  They stay
        # quiet even with TIDINGS_LOG_LEVEL=DEBUG (tests/web/test_no_personal_data_in_logs.py).
        "django.template": {"level": "INFO"},
        # parsedmarc logs each mail's From at INFO ("Parsing mail from ..."): a person's address
        # when someone's mail with a .zip reaches the bounce mailbox.
        "parsedmarc": {"level": "WARNING"},
        # A "Loaded recognizer: ..." line per category each time screening's engine is built
        # (every `tidings inbound process`, every process's first screened form).
        "presidio-analyzer": {"level": "WARNING"},
        # "Created vocabulary", "Finished initializing nlp object": the same, from spaCy.
        "spacy": {"level": "WARNING"},
        # At DEBUG, a dozen "entering paragraph: StateBlock(…)" lines for every Markdown text
        # rendered: every message of a campaign (tens of thousands of lines a minute).
        "markdown_it": {"level": "INFO"},
        # aiosmtpd (`tidings inbound serve`, the LMTP server) logs each envelope's sender and
        # recipients at INFO, and at DEBUG every line of every message.
        "mail.log": {"level": "WARNING"},
        # tnefparse (winmail.dat in help-desk mail) logs every attribute it does not handle, with
        # its value (the message's subject, its sender), at DEBUG, and a line per file at INFO.
        "tnefparse": {"level": "WARNING"},
    },
}

# --- audience --------------------------------------------------------------------------------
# Key for the HMAC of suppressed addresses.  Derived from SECRET_KEY unless set: set it explicitly
# before rotating SECRET_KEY, or suppression entries would stop matching.
TIDINGS_SUPPRESSION_KEY = env_str("TIDINGS_SUPPRESSION_KEY") or f"suppression:{SECRET_KEY}"

# Sign-ups, confirmation, preference and unsubscribe links.
TIDINGS_CONFIRM_DAYS = env_int("TIDINGS_CONFIRM_DAYS", 7)  # confirmation links expire after
TIDINGS_PENDING_DAYS = env_int("TIDINGS_PENDING_DAYS", 7)  # unconfirmed sign-ups purged after
TIDINGS_PREFERENCES_DAYS = env_int("TIDINGS_PREFERENCES_DAYS", 365)  # preference links expire
# The List-Unsubscribe mailto address; blank: unsubscribe@ the domain of each message's From
# (a campaign's sender), and no mailto at all when that domain is not a real one (localhost).
TIDINGS_UNSUBSCRIBE_MAILTO = env_str("TIDINGS_UNSUBSCRIBE_MAILTO")
# TIDINGS_PENDING_DAYS shorter than TIDINGS_CONFIRM_DAYS is refused (tidings.E005).

# Data-subject requests (rights/): how long the emailed links work.
TIDINGS_RIGHTS_LINK_DAYS = env_int("TIDINGS_RIGHTS_LINK_DAYS", 7)  # verification links
TIDINGS_RIGHTS_DOWNLOAD_DAYS = env_int("TIDINGS_RIGHTS_DOWNLOAD_DAYS", 7)  # access packages

# --- REST API and webhooks (tidings/api) ------------------------------------------------------
TIDINGS_API_RATE_LIMIT = env_int("TIDINGS_API_RATE_LIMIT", 600)  # requests per token per window
TIDINGS_API_RATE_WINDOW = env_int("TIDINGS_API_RATE_WINDOW", 60)  # seconds; limit 0: no limit

# The public forms' limits, "COUNT/SECONDS"; unset: each view's default (5/600 per IP address for
# the forms, 3/3600 per address for the mails they send).  Read where they are used, through
# tidings.lib.ratelimit.setting_limit.
for _limit_name in (
    "TIDINGS_SIGNUP_LIMIT",  # sign-up forms, per IP address
    "TIDINGS_LINK_REQUEST_LIMIT",  # "send me my preference link", per IP address
    "TIDINGS_ENQUIRY_LIMIT",  # /contact, per IP address
    "TIDINGS_BOOKING_LIMIT",  # /demo/, per IP address
    "TIDINGS_RIGHTS_LIMIT",  # /rights/, per IP address
    "TIDINGS_ANALYTICS_LIMIT",  # page views counted per visitor (a day's hash), 60/60
    "TIDINGS_CONSENT_LIMIT",  # cookie-banner answers kept per IP address (IPv6: /64), 60/60
    "TIDINGS_CONFIRMATIONS_PER_ADDRESS",  # confirmation mails to one address
    "TIDINGS_PREFERENCE_LINKS_PER_ADDRESS",  # preference-link mails to one address
    "TIDINGS_RIGHTS_VERIFICATIONS_PER_ADDRESS",  # rights-request verification mails
    "TIDINGS_PASSWORD_RESET_LIMIT",  # operators' "forgot your password?", per IP address
    "TIDINGS_PASSWORD_RESETS_PER_ADDRESS",  # password-reset mails to one address
):
    if (_limit := env_limit(_limit_name)) is not None:
        globals()[_limit_name] = _limit
TIDINGS_WEBHOOK_MAX_ATTEMPTS = env_int("TIDINGS_WEBHOOK_MAX_ATTEMPTS", 8)
TIDINGS_WEBHOOK_RETRY_SECONDS = env_int("TIDINGS_WEBHOOK_RETRY_SECONDS", 30)  # x2 per attempt
TIDINGS_WEBHOOK_DISABLE_AFTER = env_int("TIDINGS_WEBHOOK_DISABLE_AFTER", 15)  # failures in a row
TIDINGS_WEBHOOK_TIMEOUT_SECONDS = env_int("TIDINGS_WEBHOOK_TIMEOUT_SECONDS", 10)
# How many endpoints one run of the sender posts to at once (each in its own order).
TIDINGS_WEBHOOK_CONCURRENCY = env_int("TIDINGS_WEBHOOK_CONCURRENCY", 8)
# Webhook endpoints on private-network and loopback addresses (refused by default: SSRF).
TIDINGS_WEBHOOKS_ALLOW_PRIVATE = env_bool("TIDINGS_WEBHOOKS_ALLOW_PRIVATE", default=False)
# --- website analytics -----------------------------------------------------------------------
# Host names whose pages are counted (comma-separated); blank: the policy's controller website.
# tidings' own host is always counted (its public pages may carry the snippet).
TIDINGS_ANALYTICS_SITES = env_list("TIDINGS_ANALYTICS_SITES")

# --- CRM: conversations, inbound mail, notifications (crm/) ----------------------------------
# The support address: replies to enquiries and support requests go from it, each with a reply
# address of its own (support+e12.<signature>@...), which must reach `tidings inbound serve`
# (LMTP), `tidings inbound process` (a pipe) or the mailbox below.  Blank: no email
# conversations (acknowledgements go from the From).
TIDINGS_SUPPORT_ADDRESS = env_str("TIDINGS_SUPPORT_ADDRESS")
# The support mailbox the worker reads: imaps://user:pass@host/INBOX, pop3s://...
TIDINGS_INBOUND_MAILBOX_URL = env_str("TIDINGS_INBOUND_MAILBOX_URL")
TIDINGS_INBOUND_FETCH_MINUTES = env_int("TIDINGS_INBOUND_FETCH_MINUTES", 2)
TIDINGS_INBOUND_MAX_BYTES = env_int("TIDINGS_INBOUND_MAX_BYTES", 10 * 1024**2)
TIDINGS_INBOUND_KEEP_DAYS = env_int("TIDINGS_INBOUND_KEEP_DAYS", 30)  # unprocessed mail's bytes
TIDINGS_ACKNOWLEDGEMENTS_PER_DAY = env_int("TIDINGS_ACKNOWLEDGEMENTS_PER_DAY", 3)  # per person
# Business hours for first-response targets, in TIDINGS_TIME_ZONE: "mon-fri 09:00-17:30";
# TIDINGS_SUPPORT_CLOSED: dates the office is shut (2026-12-25, 2026-12-26, ...).
TIDINGS_SUPPORT_HOURS = env_str("TIDINGS_SUPPORT_HOURS", "mon-fri 09:00-17:30")
TIDINGS_SUPPORT_CLOSED = env_list("TIDINGS_SUPPORT_CLOSED")
TIDINGS_RESPONSE_WARNING_MINUTES = env_int("TIDINGS_RESPONSE_WARNING_MINUTES", 60)
TIDINGS_DIGEST_HOUR = env_int("TIDINGS_DIGEST_HOUR", 8)  # operators' daily digest, local time
# --- operations (tidings/ops: doctor, health and metrics, backups) --------------------------
# /metrics answers only requests bearing this token (Authorization: Bearer ...); blank: 404.
TIDINGS_METRICS_TOKEN = env_str("TIDINGS_METRICS_TOKEN")
TIDINGS_METRICS_CACHE_SECONDS = env_int("TIDINGS_METRICS_CACHE_SECONDS", 10)
# The file whose age says when the last backup ran: `tidings backup` and the PostgreSQL recipe
# touch it; the doctor warns when it is older than TIDINGS_BACKUP_MAX_AGE_HOURS.
TIDINGS_BACKUP_STAMP = env_str("TIDINGS_BACKUP_STAMP") or str(DATA_DIR / "last-backup")
TIDINGS_BACKUP_MAX_AGE_HOURS = env_int("TIDINGS_BACKUP_MAX_AGE_HOURS", 24)
# Where deploy/tidings-backup writes its dated backups; the doctor checks that only their owner
# can read them (blank: the doctor does not know where backups go).
TIDINGS_BACKUP_DIR = env_str("TIDINGS_BACKUP_DIR")
# Append-only list of erased people (keyed hashes only), kept outside the database so that a
# restored backup can be cleaned of the people erased after it was taken (tidings/ops/journal.py).
TIDINGS_ERASURE_JOURNAL = env_str("TIDINGS_ERASURE_JOURNAL") or str(
    DATA_DIR / "erasure-journal.jsonl"
)
# TIDINGS_LOG_FORMAT=json: one JSON object per log line (the token-redacting filter still runs).
TIDINGS_LOG_FORMAT = env_str("TIDINGS_LOG_FORMAT", "plain").strip().lower()
if TIDINGS_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(
        f"TIDINGS_LOG_FORMAT: expected plain or json, got {TIDINGS_LOG_FORMAT!r}"
    )
if TIDINGS_LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "tidings.ops.logs.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
# --- media library, block editor, branding (tidings/media, campaigns/blocks, web) -------------
INSTALLED_APPS.append("tidings.media")
# Journeys: how long a worker's claim on due enrolments holds before another worker may take
# them (a worker that died mid-step: its step rolled back, so it runs again once).
TIDINGS_JOURNEY_LEASE_SECONDS = env_int("TIDINGS_JOURNEY_LEASE_SECONDS", 60)
# The step after a "wait until 09:00" still runs when at most this late (the worker was down);
# later, it waits for the next 09:00 (journeys.schedule).
TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS = env_float("TIDINGS_JOURNEY_MISSED_TIME_GRACE_HOURS", 6)
# A running import renews its heartbeat every batch; one not heard of for this long (or whose
# process is gone from this host) shows as interrupted, with the command that resumes it.
TIDINGS_IMPORT_LEASE_SECONDS = env_int("TIDINGS_IMPORT_LEASE_SECONDS", 120)
TIDINGS_MEDIA_MAX_BYTES = env_int("TIDINGS_MEDIA_MAX_BYTES", 5 * 1024 * 1024)  # per upload
TIDINGS_MEDIA_MAX_PIXELS = env_int("TIDINGS_MEDIA_MAX_PIXELS", 40_000_000)  # decoded size
TIDINGS_MEDIA_MAX_WIDTH = env_int("TIDINGS_MEDIA_MAX_WIDTH", 1200)  # scaled down beyond
