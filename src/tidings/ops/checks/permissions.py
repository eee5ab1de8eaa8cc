"""Who else can read what tidings keeps on disk: the data directory (the SQLite database, the
secret key, DKIM keys, imports' files, the erasure journal), the database wherever it is, and the
backups.

tidings makes all of them its owner's only (0700 directories, 0600 files; the systemd units run
with ``UMask=0077``), but an installation made before that kept what it had: a database 0644 and
a data directory 0755, readable by every user of the machine, and backups as the umask of
whoever ran them made them.  Nothing tightens them on upgrade, so the doctor looks, and says the
command that does.  It does not change them itself: a check never changes anything.

Secrets given as ``NAME_FILE`` (``SECRET_KEY_FILE=/etc/tidings/secret_key`` and the like) are looked
at too, wherever they are: the README's set-up makes them ``0640 root:tidings`` so that the
service's group reads them, so only a secret every user of the machine can read is reported.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register

NAME = "permissions"
# Enough for any data directory (its files are a handful, plus one per import and DKIM key) and
# years of daily backups; a tree beyond it is checked that far and the summary says so.
MAX_ENTRIES = 20_000
SHOWN = 3
# Collected static files (CSS, scripts, the logo) are public: the web pages serve them.
PUBLIC = {"static"}


def _roots() -> list[Path]:
    """The folders and files to look at, each once (the first that contains another wins)."""
    candidates = [Path(settings.DATA_DIR)]
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and str(db["NAME"]) not in {"", ":memory:"}:
        name = Path(str(db["NAME"]))
        if not str(db["NAME"]).startswith("file:"):
            candidates += [name, Path(f"{name}-wal"), Path(f"{name}-shm")]
    candidates += [
        Path(getattr(settings, "TIDINGS_DKIM_DIR", "") or Path(settings.DATA_DIR) / "dkim"),
        Path(settings.TIDINGS_ERASURE_JOURNAL),
    ]
    backups = getattr(settings, "TIDINGS_BACKUP_DIR", "")
    if backups:
        candidates.append(Path(backups))
    roots: list[Path] = []
    for path in candidates:
        path = path.absolute()
        if not os.path.lexists(path) or any(path.is_relative_to(root) for root in roots):
            continue
        roots = [root for root in roots if not root.is_relative_to(path)] + [path]
    return roots


def _secret_files() -> list[Path]:
    """The files named by ``<name>_FILE`` variables that settings read a secret or setting from
    (``settings.env_str``), each once."""
    found: list[Path] = []
    for name, value in sorted(os.environ.items()):
        if not value or not name.endswith("_FILE"):
            continue
        if not (name.startswith("TIDINGS_") or name in {"SECRET_KEY_FILE", "DATABASE_URL_FILE"}):
            continue
        path = Path(value).absolute()
        if path not in found and path.is_file():
            found.append(path)
    return found


def _entries(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """``root`` and, for a folder, everything under it but public static files; symbolic links
    are not followed and sockets (the LMTP server's, meant for the mail server) are left out."""
    top = root.lstat()
    yield root, top
    if not stat.S_ISDIR(top.st_mode):
        return
    for folder, dirs, files in os.walk(root, onerror=lambda _error: None):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in PUBLIC]
        for name in [*dirs, *files]:
            path = Path(folder, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode) or stat.S_ISSOCK(info.st_mode):
                continue
            yield path, info


@register(NAME, order=61)
def check_permissions() -> Finding:
    roots = _roots()
    secrets = [path for path in _secret_files() if not any(path.is_relative_to(r) for r in roots)]
    if not roots and not secrets:
        return Finding(NAME, OK, "nothing on disk to check (no data directory yet)")
    seen = 0
    others: list[tuple[Path, int]] = []  # readable, writable or enterable by every user
    group: list[tuple[Path, int]] = []  # by the file's group only
    exposed_roots: list[Path] = []
    exposed_secrets: list[Path] = []
    for secret in secrets:
        seen += 1
        mode = stat.S_IMODE(secret.stat().st_mode)
        if mode & 0o007:  # its group reading it is the documented set-up (0640 root:tidings)
            others.append((secret, mode))
            exposed_secrets.append(secret)
    for root in roots:
        for path, info in _entries(root):
            if seen >= MAX_ENTRIES:
                break
            seen += 1
            mode = stat.S_IMODE(info.st_mode)
            if not mode & 0o077:
                continue
            (others if mode & 0o007 else group).append((path, mode))
            if root not in exposed_roots:
                exposed_roots.append(root)
    checked = f"{seen} entries" + (f" (stopped at {MAX_ENTRIES})" if seen >= MAX_ENTRIES else "")
    if not others and not group:
        where = ", ".join(str(root) for root in roots)
        if secrets:
            named = ", ".join(str(secret) for secret in secrets)
            where = f"{where}: owner only; {named}: not every user's" if roots else named
            return Finding(NAME, OK, f"{where} ({checked})")
        return Finding(NAME, OK, f"{where}: owner only ({checked})")
    exposed = others or group
    shown = ", ".join(f"{path} ({mode:04o})" for path, mode in exposed[:SHOWN])
    more = f" and {len(exposed) - SHOWN} more" if len(exposed) > SHOWN else ""
    who = "every user of this machine" if others else "the files' group"
    fixes = []
    if exposed_roots:
        fixes.append("chmod -R go-rwx " + " ".join(shlex.quote(str(r)) for r in exposed_roots))
    if exposed_secrets:  # not go-rwx: the service's group must still read them
        fixes.append("chmod o-rwx " + " ".join(shlex.quote(str(s)) for s in exposed_secrets))
    fix = "` and `".join(fixes)
    return Finding(
        NAME,
        FAIL if others else WARN,
        f"{shown}{more} can be read by {who} (made before tidings kept them owner-only?)",
        f"`{fix}` (as their owner or root); tidings makes new ones 0600/0700, the systemd "
        "units with UMask=0077",
    )
