"""``tidings backup PATH``: a consistent copy of the SQLite database, with its manifest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tidings.ops.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Back up the SQLite database (while tidings runs) into the new directory PATH, with a "
        "manifest: schema version, policy hash, rows per table.  PostgreSQL: see the README."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a new (or empty) directory")

    def handle(self, *args, path: Path, **options):
        try:
            manifest = backup(path)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        counts = manifest.counts
        self.stdout.write(
            f"Backed up to {path}: {manifest.data['database']['bytes'] / 1e6:.1f} MB, "
            f"{counts.get('audience_contact', 0):,} contacts, "
            f"{counts.get('campaigns_delivery', 0):,} deliveries, "
            f"{len(manifest.migrations)} migrations"
        )
