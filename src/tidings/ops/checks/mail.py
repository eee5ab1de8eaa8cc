"""Mail transports: is each SMTP server reachable, does STARTTLS work, is the password right."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tidings.ops.doctor import FAIL, OK, SKIP, WARN, Finding, register

PROBE_TIMEOUT = 10.0  # seconds per server


@register("smtp", order=40)
def check_transports() -> list[Finding]:
    from tidings.campaigns.transports.config import transport_configs

    try:
        configs = transport_configs()
    except ImproperlyConfigured as exc:
        return [
            Finding(
                "smtp",
                FAIL,
                str(exc),
                "correct TIDINGS_TRANSPORTS or TIDINGS_SMTP_URL",
            )
        ]
    return [_check(config) for config in configs]


def _check(config) -> Finding:
    name = f"smtp.{config.name}"
    if config.kind == "outbox":
        return Finding(
            name,
            FAIL if settings.PRODUCTION else OK,
            "outbox://: messages are kept in the database and shown under Outbox, never sent",
            "set TIDINGS_SMTP_URL=smtp://user:password@your-relay:587"
            if settings.PRODUCTION
            else "",
        )
    if config.kind != "smtp":
        return Finding(
            name,
            SKIP,
            f"{config.describe()}: a Django email backend; the doctor cannot test it without "
            "sending mail",
            "send a test from a campaign's Test page",
        )
    from tidings.campaigns.transports.smtp import parse_smtp_url
    from tidings.ops.smtp_probe import probe

    try:
        options = parse_smtp_url(config.url)
    except ValueError as exc:
        return Finding(name, FAIL, f"{config.describe()}: {exc}", "correct the transport's url")
    password_file = config.options.get("password_file")
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as fp:  # noqa: PTH123
                options["password"] = fp.read().strip()
        except OSError as exc:
            return Finding(
                name,
                FAIL,
                f"{config.describe()}: cannot read password_file: {exc.strerror}",
                "make the file readable by the user tidings runs as",
            )
    where = f"{options['hostname']}:{options['port']}"
    result = probe(options, timeout=min(PROBE_TIMEOUT, config.timeout))
    if not result.ok:
        fixes = {
            "connect": f"check the host and port, that {where} accepts connections from this "
            "machine (firewall, provider blocking port 25), and for smtps:// that the port "
            "speaks TLS (usually 465)",
            "ehlo": "the server refused our greeting: check it is an SMTP server and that this "
            "machine's name is accepted (?local_hostname=)",
            "starttls": "the server's STARTTLS failed: check its certificate (or add ?verify=no "
            "for a relay on this machine), or use ?tls=none for a local relay without TLS",
            "auth": "the user name or password was refused: check them (password_file or the "
            "URL; %-encode special characters in a URL)",
        }
        done = ", ".join(result.steps) or "nothing"
        return Finding(
            name,
            FAIL,
            f"{config.describe()}: {result.failed_step} failed after {done}: {result.error}",
            fixes.get(result.failed_step, ""),
        )
    summary = f"{config.describe()}: " + ", ".join(result.steps)
    if result.warnings:
        return Finding(
            name,
            WARN,
            summary + "; " + "; ".join(result.warnings),
            "use port 587 with STARTTLS (smtp://...:587) or smtps://...:465",
        )
    return Finding(name, OK, summary)
