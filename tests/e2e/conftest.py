"""End-to-end tests: Debian's chromium, driven by Playwright's sync API, against a live server.

Every test under tests/e2e is marked ``e2e`` here, so ``pytest -m e2e`` runs only these and
``pytest -m "not e2e"`` skips them.  The browser is never downloaded: it is Debian's chromium
(``$TIDINGS_CHROMIUM``, else /usr/bin/chromium); ``scripts/ensure-chromium`` installs it.

Tests get a ``page`` in a fresh browser context (no cookies shared between tests) whose base URL is
pytest-django's ``live_server``, so ``page.goto("/login/")`` works.  A test that fails leaves a
full-page screenshot in ``test-results/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.e2e.helpers import DEFAULT_TIMEOUT_MS

E2E_DIR = Path(__file__).resolve().parent
CHROMIUM_DEFAULTS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")  # as scripts/ensure-chromium
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)  # `expect(...)` waits as long as the pages do

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this folder's: mark ours by path.  It runs
    # before pytest's own -m filtering (tryfirst), so `-m e2e` selects exactly these tests.
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # Keep each phase's report on the item: the page fixture checks at teardown if the call failed.
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The chromium executable; a clear failure (never a silent skip) when there is none."""
    configured = os.environ.get("TIDINGS_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(
                f"TIDINGS_CHROMIUM={configured} is not an executable file: point it at chromium "
                "or unset it and run scripts/ensure-chromium",
                pytrace=False,
            )
        return configured
    for candidate in CHROMIUM_DEFAULTS:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "The end-to-end tests need Debian's chromium, and none was found at "
        f"{' or '.join(CHROMIUM_DEFAULTS)}. Run scripts/ensure-chromium to install it "
        "(or set TIDINGS_CHROMIUM to a chromium executable).",
        pytrace=False,
    )


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright for the tests in this folder, stopped when they are done.

    Playwright's sync API keeps an asyncio event loop marked as running in the main thread for as
    long as it is started.  Django refuses synchronous database calls while a loop is running
    (SynchronousOnlyOperation), and the test code here makes them in that thread (creating users,
    flushing the database after each test), so DJANGO_ALLOW_ASYNC_UNSAFE is set while Playwright
    runs.  It is test-only and deliberately confined: the fixture is package-scoped, not
    session-scoped, so the loop is stopped and the variable restored as soon as the last e2e test
    has run.  A session-scoped Playwright would leave the loop "running" for every later test in
    the session (pytest-django runs the transactional e2e tests before the plain ones), hiding real
    async-safety bugs and breaking any test that calls asyncio.run() or async_to_sync().
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        manager = sync_playwright().start()
        try:
            yield manager
        finally:
            manager.stop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield browser
    finally:
        browser.close()


def save_screenshot(page: Page, config: pytest.Config, name: str) -> Path:
    """Save a full-page PNG of ``page`` as test-results/<name>.png and return its path."""
    results = config.rootpath / "test-results"
    results.mkdir(exist_ok=True)
    path = results / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.png"
    page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def screening_built() -> None:
    """Screening's engine built before the browser waits on a page, as a running server has it
    (each web process starts building it at start, tidings/wsgi.py): building it takes seconds,
    a minute on a loaded machine, and a form sent meanwhile would wait that long."""
    from tidings.policy.screening import load_engine

    load_engine()


@pytest.fixture
def page(browser: Browser, live_server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a new browser context aimed at the live server; screenshotted if the test fails."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-GB",
        timezone_id="Europe/London",
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = request.node.stash.get(_reports, {}).get("call")
        if report is not None and report.failed:
            try:
                path = save_screenshot(page, request.config, request.node.nodeid)
                report.sections.append(("screenshot", str(path)))
            except Exception as exc:  # the test's own failure matters more than a missing PNG
                report.sections.append(("screenshot", f"could not be saved: {exc}"))
        context.close()


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Take a named screenshot on demand: ``screenshot("dashboard")``."""
    return lambda name: save_screenshot(page, request.config, name)


# --- the README's screenshots -------------------------------------------------------------------
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def readme_screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """Take a screenshot for the README: into docs/screenshots with ``make screenshots``
    (TIDINGS_SCREENSHOTS=1), else into the test's temporary folder, so that an ordinary test run
    leaves the checkout as it was."""
    folder = README_SCREENSHOTS if os.environ.get("TIDINGS_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=path)
    return path
