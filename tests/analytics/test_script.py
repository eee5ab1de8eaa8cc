"""The statistics script is small and keeps nothing on the visitor's device."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import tidings.analytics

STATIC = Path(tidings.analytics.__file__).parent / "static" / "analytics"
SCRIPT = (STATIC / "a.js").read_text(encoding="utf-8")
BANNER = (STATIC / "banner.js").read_text(encoding="utf-8")


def test_the_statistics_script_is_under_2_kb_as_served():
    # Served as it is (comments included), so the file's own size is what visitors download.
    assert len(SCRIPT.encode("utf-8")) < 2048


def test_the_statistics_script_writes_no_cookie_and_uses_no_storage():
    assert not re.search(r"cookie\s*=", SCRIPT)  # reads the banner's answer, never writes one
    for word in ("localStorage", "sessionStorage", "indexedDB", "caches."):
        assert word not in SCRIPT


def test_the_statistics_script_sends_nothing_that_fingerprints_the_device():
    for word in (
        "screen",
        "devicePixelRatio",
        "plugins",
        "canvas",
        "userAgent",
        "language",
        "hardwareConcurrency",
        "getTimezoneOffset",
        "Intl",
    ):
        assert word not in SCRIPT
    assert re.search(r"JSON\.stringify\(\{ u: location\.href, r: d\.referrer, c: ", SCRIPT)


def test_the_script_honours_gpc_and_dnt_before_anything_else():
    assert "globalPrivacyControl" in SCRIPT
    assert 'doNotTrack == "1"' in SCRIPT


def test_the_banner_writes_only_its_own_cookie():
    writes = re.findall(r"d\.cookie\s*=\s*(\w+)", BANNER)
    assert writes == ["c"]
    assert "localStorage" not in BANNER


def test_the_scripts_are_served_as_static_files(client):
    for name in ("a.js", "banner.js", "banner.css"):
        response = client.get(f"/static/analytics/{name}")
        assert response.status_code == 200, name


NODE = shutil.which("node")
PRERENDER_HARNESS = """
const fs = require("fs");
const sent = [];
const listeners = {};
const document = {
  prerendering: true, referrer: "", cookie: "",
  currentScript: { src: "https://t.example/static/analytics/a.js",
                   getAttribute: (n) => (n === "data-consent" ? "none" : null) },
  addEventListener: (name, fn) => { (listeners[name] = listeners[name] || []).push(fn); },
};
const window = { tidings: null };
const navigator = { sendBeacon: (u, b) => { sent.push(b); return true; } };
const location = { href: "https://www.example.co.uk/pricing" };
new Function("document", "window", "navigator", "location", "URL",
             fs.readFileSync(process.argv[2], "utf8"))(document, window, navigator, location, URL);
const before = sent.length;
document.prerendering = false;
(listeners.prerenderingchange || []).forEach((fn) => fn());
console.log(JSON.stringify([before, sent.length]));
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_a_prerendered_page_is_counted_when_shown_not_when_loaded_ahead(tmp_path):
    harness = tmp_path / "harness.js"
    harness.write_text(PRERENDER_HARNESS, encoding="utf-8")
    result = subprocess.run(
        [NODE, str(harness), str(STATIC / "a.js")], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [0, 1]


def test_the_scripts_post_simple_requests_that_need_no_preflight():
    """Both scripts post a string body (text/plain) with sendBeacon, or fetch in no-cors mode,
    which cannot preflight: so `/a/collect` and `/a/consent` need grant no CORS preflight, and
    their OPTIONS answer grants none (tests/analytics/test_page_views.py)."""
    for script in (SCRIPT, BANNER):
        posts = re.findall(r"fetch\([^;]*method: \"POST\"[^;]*\)", script)
        assert posts and all('mode: "no-cors"' in post for post in posts), posts
        assert "sendBeacon" in script
        for word in ("Blob", "Content-Type", "headers:", "XMLHttpRequest"):
            assert word not in script
