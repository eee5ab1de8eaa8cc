"""``tidings restore PATH``: put a backup made by ``tidings backup`` back in the data directory."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tidings.ops.backup import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore a backup directory into the configured SQLite database, refuse a backup made "
        "by a newer tidings, then erase again the people erased since (erasure journal)."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a directory made by `tidings backup`")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="move an existing database aside (to <name>.before-restore-<time>) first",
        )
        parser.add_argument(
            "--erasure-journal",
            type=Path,
            action="append",
            default=[],
            metavar="FILE",
            help="another copy of the erasure journal to apply (repeatable), e.g. the newest "
            "backup's when the data directory was lost",
        )

    def handle(self, *args, path: Path, replace: bool, erasure_journal: list[Path], **options):
        try:
            result = restore(path, replace=replace, journals=erasure_journal)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        manifest = result.manifest
        lines = [
            f"Restored {path} (taken {manifest.data['created_at']}) into {result.target}: "
            f"row counts match the manifest ({sum(manifest.counts.values()):,} rows)."
        ]
        if result.moved_aside:
            lines.append(f"The previous database was moved to {result.moved_aside}.")
        if result.migrated:
            lines.append(f"Applied {len(result.migrated)} migration(s) the backup was behind by.")
        if result.policy_changed:
            lines.append(
                "Note: the backup was taken under a different policy file than the one "
                "configured now; retention runs under the current one."
            )
        erasures = result.erasures
        lines.append(
            f"Erasure journal: {erasures.entries} people erased; {erasures.erased} of them were in "
            f"the backup and were erased again; {erasures.suppressed} address hashes added to the "
            "suppression list"
            + (
                f"; {erasures.kept_new_signups} signed up again after their erasure and were kept"
                if erasures.kept_new_signups
                else ""
            )
            + "."
        )
        if erasures.retention_still_held:
            lines.append(
                f"{erasures.retention_still_held} people erased by retention are held again: "
                "their records are not expired under the current policy; review them."
            )
        if erasures.bad_lines:
            lines.append(f"{erasures.bad_lines} unreadable journal line(s) were skipped.")
        self.stdout.write("\n".join(lines))
