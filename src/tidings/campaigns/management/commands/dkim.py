from django.core.management.base import BaseCommand, CommandError

from tidings.campaigns import dkim


class Command(BaseCommand):
    help = "DKIM keys: make one for a sending domain, or show the DNS record of one."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        keygen = actions.add_parser("keygen", help="make a key and print its DNS record")
        keygen.add_argument("domain", help="the domain of your From addresses")
        keygen.add_argument("--selector", default="", help="default: TIDINGS_DKIM_SELECTOR")
        keygen.add_argument("--bits", type=int, default=2048, choices=[1024, 2048, 4096])
        keygen.add_argument("--force", action="store_true", help="replace an existing key")
        show = actions.add_parser("show", help="print the DNS record of an existing key")
        show.add_argument("domain")
        show.add_argument("--selector", default="")

    def handle(self, *args, action, domain, selector, **options):
        try:
            if action == "keygen":
                path, name, value = dkim.generate_key(
                    domain, selector or None, bits=options["bits"], force=options["force"]
                )
                self.stdout.write(f"Private key written to {path} (keep it secret).")
            else:
                path = dkim.key_path(domain, selector or None)
                if not path.exists():
                    raise CommandError(f"no key at {path}: make one with `tidings dkim keygen`")
                name, value = dkim.dns_record(domain, selector or None, path.read_bytes())
        except dkim.DkimError as exc:
            raise CommandError(str(exc)) from None
        chosen = (selector or dkim.default_selector()).lower()
        if chosen == dkim.default_selector():
            when = "Messages from that domain are signed with this key from now on."
        else:
            when = (
                f"Once it is published, set TIDINGS_DKIM_SELECTOR={chosen} to sign with this key "
                f"(now: {dkim.default_selector()})."
            )
        self.stdout.write(
            "Publish this TXT record in your DNS:\n\n"
            f"{name}. IN TXT {_quoted(value)}\n\n"
            f"Name:  {name}\nValue: {value}\n\n{when}"
        )


def _quoted(value: str) -> str:
    """The value as DNS zone-file strings of at most 255 characters each."""
    chunks = [value[i : i + 250] for i in range(0, len(value), 250)]
    return "( " + " ".join(f'"{chunk}"' for chunk in chunks) + " )"
