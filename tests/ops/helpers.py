from __future__ import annotations

import io
import json

from django.core.management import call_command


def doctor(*args: str) -> tuple[int, dict[str, dict]]:
    """Run ``tidings doctor --json``; (exit status, findings by name)."""
    out = io.StringIO()
    code = 0
    try:
        call_command("doctor", "--json", *args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    data = json.loads(out.getvalue())
    assert data["ok"] == (code == 0)
    return code, {f["name"]: f for f in data["checks"]}
