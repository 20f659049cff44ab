"""What the Chromium tests share: the browser's flags, the fixture clips, ORM access off Playwright's thread."""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection
from playwright.sync_api import Browser, Page, expect

FIXTURES = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(__file__).parent.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium_args(microphone: Path) -> list[str]:
    """Playwright gives each launch a new empty profile of its own."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required",
    ]


def in_thread(function, *args):
    """Run ORM code off the thread where Playwright's event loop runs (Django refuses it there)."""

    def call():
        try:
            return function(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def new_page(browser: Browser, width: int = 1280, height: int = 800) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    # Shown with the output of a failing test.
    page.on("console", lambda message: print("console:", message.type, message.text))
    page.on("pageerror", lambda error: print("page error:", error))
    page.set_default_timeout(15_000)
    return page


def log_in(page: Page, server_url: str) -> None:
    """Log in as the test user (alice) through the login page; the chat page is then ready."""
    page.goto(server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "s3cret-pass")
    page.click("button[type=submit], input[type=submit]")
    expect(page.locator("#connect")).to_be_enabled()
