from django.core.management.base import BaseCommand, CommandError

from tidings.campaigns.deliverability.checks import check_domain
from tidings.campaigns.deliverability.dns import DnsSettings
from tidings.campaigns.dkim import DkimError
from tidings.campaigns.dkim import check_domain as check_domain_name

_MARKS = {
    "pass": "PASS ",
    "warn": "WARN ",
    "fail": "FAIL ",
    "unknown": "?    ",
    "info": "NOTE ",
    "na": "-    ",
}


class Command(BaseCommand):
    help = "Sender domain health: SPF, DKIM, DMARC, reverse DNS, MTA-STS, TLS-RPT, BIMI."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser(
            "check", help="check a From domain; exit 1 when a required check fails"
        )
        check.add_argument("domain")
        check.add_argument(
            "--selector", default="", help="DKIM selector (default: tidings' own key)"
        )
        check.add_argument(
            "--envelope-domain", default="", help="MAIL FROM domain (default: the domain)"
        )

    def handle(self, *args, action, **options):
        try:
            dns_settings = DnsSettings.from_settings()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            envelope = options["envelope_domain"]
            health = check_domain(
                options["domain"],
                selector=options["selector"],
                envelope_domain=check_domain_name(envelope) if envelope else "",
                dns_settings=dns_settings,
            )
        except DkimError as exc:
            raise CommandError(str(exc)) from None
        for check in health.checks:
            required = "" if check.required else " (recommended)" if check.key != "bimi" else ""
            self.stdout.write(f"{_MARKS.get(check.status, check.status)}{check.label}{required}")
            self.stdout.write(f"      {check.detail}")
            if check.fix:
                self.stdout.write(f"      To fix: {check.fix}")
        failed = health.failed
        if failed:
            raise CommandError(
                f"{health.domain}: {len(failed)} required check(s) failed: "
                + ", ".join(c.label for c in failed),
                returncode=1,
            )
        unknown = [c.label for c in health.unknown if c.required]
        if unknown:
            self.stdout.write(
                f"{health.domain}: could not check {', '.join(unknown)} (DNS time-out); "
                "nothing failed"
            )
        else:
            self.stdout.write(f"{health.domain}: every required check passed")
