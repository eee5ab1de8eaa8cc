import shlex

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tidings.web.demo import follow_demo_from, follow_serving_address, load_demo


class Command(BaseCommand):
    help = "Migrate the database and load the demo: an operator, lists and fictional contacts."

    def add_arguments(self, parser):
        listen = "where `tidings serve` will listen"
        parser.add_argument("--host", default="127.0.0.1", help=listen)
        parser.add_argument("--port", type=int, default=8000, help=listen)

    def handle(self, *args, host, port, **options):
        base_url = follow_serving_address(host, port)
        sender = follow_demo_from()
        call_command("migrate", interactive=False, verbosity=0)
        result = load_demo()
        self.stdout.write(
            f"Demo loaded: {result.lists} lists, {result.contacts} fictional contacts, the "
            f"policy of {settings.TIDINGS_POLICY.name}.\n"
            f"Open {base_url}/ and sign in as\n"
            f"    username: {result.username}\n"
            f"    password: {result.password}\n"
            "(a new password is set each time the demo is loaded)\n"
            f"Its mail comes from {sender}. To serve it by hand as `make demo` does:\n"
            f"    TIDINGS_FROM_EMAIL={shlex.quote(sender)} tidings serve --host {host} "
            f"--port {port} --with-worker"
        )
        if settings.TIDINGS_REQUIRE_2FA != "none":
            self.stdout.write(
                "The operator is an owner: at the first sign-in you set up two-factor sign-in "
                "with an authenticator app (TIDINGS_REQUIRE_2FA=none skips it for a local demo)."
            )
