"""What the Chromium tests share: the browser's flags, the fixture clips, ORM access off Playwright's thread."""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection

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
