"""Real browser tests: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from pytest_django.fixtures import Settings

CHROMIUM = os.environ.get("CHROMIUM_PATH", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make around it are
    # ordinary synchronous calls, so Django's async-safety guard does not apply to them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (see README).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class _InFlight:
    """Requests the live server is still answering. A page's htmx panels may still be loading when a test
    ends; closing the browser does not stop the server's thread, whose transaction would then race the
    test's flush (PostgreSQL: a deadlock between TRUNCATE and the request's audit row)."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def started(self, **_: Any) -> None:
        with self.changed:
            self.count += 1

    def finished(self, **_: Any) -> None:
        with self.changed:
            self.count -= 1
            self.changed.notify_all()

    def wait_until_idle(self, timeout_s: float = 30) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count <= 0, timeout=timeout_s), (
                f"{self.count} request(s) still running on the live server"
            )


@pytest.fixture(scope="session")
def in_flight() -> Iterator[_InFlight]:
    requests = _InFlight()
    request_started.connect(requests.started)
    request_finished.connect(requests.finished)
    yield requests
    request_started.disconnect(requests.started)
    request_finished.disconnect(requests.finished)


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Settings) -> None:
    # The live server serves static files from the app folders by their plain names; the hashed names of the
    # production manifest storage only exist after collectstatic, which WhiteNoise serves under gunicorn.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def page(browser: Browser, in_flight: _InFlight, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context; any console or script error fails the test, except the texts a test's
    ``console_allows`` marker expects (a refused form answers 422 by design)."""
    marker = request.node.get_closest_marker("console_allows")
    expected: tuple[str, ...] = tuple(marker.args) if marker else ()
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="en-GB")
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in expected):
            problems.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    in_flight.wait_until_idle()  # before the database is flushed for the next test
    # A CSP violation or a script error shows up here.
    assert problems == []
