"""Imports run one way (issue 18.1, 18.2): the apps' layers (policy → lib → audience → media →
campaigns → crm/booking/analytics/rights → api → web → ops), no app importing another's views,
and inside campaigns models → rendering → queue → mail → lifecycle → engine.  import-linter
checks every import, direct or through other modules, including imports inside functions; the
contracts are in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_campaigns_layers_import_only_downwards():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
