from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tidings.campaigns.deliverability.dmarc import MAX_BYTES, do_record_dmarc_report


class Command(BaseCommand):
    help = "DMARC aggregate reports: read one from a file (.xml, .xml.gz, .zip, or a mail)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        process = actions.add_parser("process", help="read and store one report file")
        process.add_argument("--file", required=True, help="report.xml.gz, .zip, .xml or .eml")

    def handle(self, *args, action, **options):
        path = Path(options["file"])
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise CommandError(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MB")
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        report = do_record_dmarc_report(data, source="file")
        if report.status != report.Status.PROCESSED:
            raise CommandError(
                f"report #{report.pk} kept unprocessed: {report.reason}", returncode=1
            )
        self.stdout.write(
            f"report #{report.pk}: {report.org_name or 'unknown reporter'} about "
            f"{report.domain}: {report.reason}"
        )
