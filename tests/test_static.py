"""Static files in production: collected under hashed names, imports rewritten, served by the app alone.

The app worker runs as deploy/voicechat@.service starts it, with uvicorn's own TLS in front
of nothing else (no nginx): WhiteNoise serves the files. tests/test_deploy.py does the same
behind nginx, which serves them from disk.
"""

import gzip
import json
import re
import sqlite3
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from tests.app_process import free_port, manage, wait_for
from tests.browser_support import CHROMIUM, FIXTURES, chromium_args, log_in
from tests.deployment import (
    HOST,
    Certificate,
    Workers,
    command_env,
    prepare_app,
    production_settings,
    write_env_file,
)
from tests.fake_service import ThreadedFakeService
from tests.test_security import VIOLATION_LISTENER, csp_violations

SOURCES = Path(__file__).resolve().parent.parent / "static"
# Every module and worklet of the page, and its stylesheet.
PAGE_FILES = [
    *sorted(str(path.relative_to(SOURCES)) for path in (SOURCES / "voicechat").rglob("*.js")),
    "voicechat/style.css",
]
# A module's relative imports: `import ... from './x.js';`, `export ... from './x.js';`, `import './x.js';`.
IMPORTS = re.compile(r"""(?:\bfrom|\bimport)\s*["'](\.{1,2}/[^"']+)["']""")
HASHED = re.compile(r"\.[0-9a-f]{12}\.(js|css)$")
# A line of uvicorn's access log, for a static file.
ACCESS_LINE = re.compile(r'"GET /static/(\S+) HTTP/[\d.]+" (\d{3})')


def relative_imports(path: Path) -> list[str]:
    return IMPORTS.findall(path.read_text())


def collect(tmp: Path) -> tuple[Path, dict[str, str]]:
    """collectstatic with the production settings, in a process of its own: STATIC_ROOT and its manifest."""
    settings = production_settings(tmp)
    manage(command_env(settings), "collectstatic", "--no-input", "-v", "0")
    root = Path(settings["STATIC_ROOT"])
    return root, json.loads((root / "staticfiles.json").read_text())["paths"]


def test_collectstatic_hashes_compresses_and_rewrites_the_imports_of_every_module(tmp_path):
    root, manifest = collect(tmp_path)
    assert len(PAGE_FILES) >= 10  # main, capture, playback, pcm, socket, ui, order, two worklets, style.css
    for name in PAGE_FILES:
        hashed = manifest[name]
        assert HASHED.search(hashed), hashed
        assert (root / hashed).is_file() and (root / f"{hashed}.gz").is_file()
        assert gzip.decompress((root / f"{hashed}.gz").read_bytes()) == (root / hashed).read_bytes()

    modules = [name for name in PAGE_FILES if name.endswith(".js")]
    for name in modules:
        source_imports = relative_imports(SOURCES / name)
        hashed_path = root / manifest[name]
        hashed_imports = relative_imports(hashed_path)
        # Each import kept, in order, now naming the hashed file of what it named.
        assert len(hashed_imports) == len(source_imports), name
        for source, hashed in zip(source_imports, hashed_imports, strict=True):
            target = (SOURCES / name).parent.joinpath(source).resolve().relative_to(SOURCES)
            assert (hashed_path.parent / hashed).resolve() == (root / manifest[str(target)]).resolve(), (name, hashed)
    main_imports = relative_imports(root / manifest["voicechat/main.js"])
    assert len(main_imports) == 5 and all(HASHED.search(target) for target in main_imports), main_imports


@pytest.mark.django_db
def test_in_development_and_tests_pages_link_the_plain_names(user):
    client = Client()
    client.force_login(user)
    page = client.get("/").content.decode()
    assert '<script type="module" src="/static/voicechat/main.js">' in page
    assert 'data-capture-worklet="/static/voicechat/worklets/capture-processor.js"' in page
    assert 'data-playback-worklet="/static/voicechat/worklets/playback-processor.js"' in page


# The app alone in production: one worker, as the systemd unit runs it, serving TLS itself.


@dataclass
class App:
    url: str
    database: Path
    static_root: Path
    manifest: dict[str, str]
    tls: ssl.SSLContext
    log: Path

    def static_requests(self, since: int) -> list[tuple[str, int]]:
        """Static files asked of the worker after `since` bytes of its log: path, status."""
        written = self.log.read_bytes()[since:].decode()
        return [(path, int(status)) for path, status in ACCESS_LINE.findall(written)]


@pytest.fixture(scope="module")
def fake_service():
    with ThreadedFakeService() as service:
        service.script.auto_turn_after_ms = 1000
        service.script.reply_ms = 1200
        yield service


@pytest.fixture(scope="module")
def app_alone(tmp_path_factory, fake_service):
    tmp = tmp_path_factory.mktemp("app-alone")
    certificate = Certificate.make(tmp)
    settings = production_settings(
        tmp,
        # No proxy in front.
        TRUSTED_PROXIES="0",
        TRUST_X_FORWARDED_PROTO="false",
        AZURE_OPENAI_ENDPOINT=fake_service.endpoint,
        AZURE_OPENAI_API_KEY=fake_service.api_key,
        AZURE_OPENAI_API_VERSION="",
    )
    prepare_app(command_env(settings))
    workers = Workers(write_env_file(tmp / "voicechat.env", settings))
    port = free_port()
    # The access log, off in the unit (nginx keeps one), tells here what the browser asked for:
    # Playwright does not see the worklets' requests.
    workers.start(port, "--ssl-keyfile", str(certificate.key), "--ssl-certfile", str(certificate.chain), "--access-log")
    tls = ssl.create_default_context()
    certificate.authority.configure_trust(tls)
    static_root = Path(settings["STATIC_ROOT"])
    try:
        yield App(
            f"https://{HOST}:{port}",
            tmp / "db.sqlite3",
            static_root,
            json.loads((static_root / "staticfiles.json").read_text())["paths"],
            tls,
            workers.logs[0],
        )
    finally:
        workers.stop()


def static_url(app: App, name: str) -> str:
    return f"{app.url}/static/{app.manifest[name]}"


def test_the_pages_link_the_hashed_names(app_alone):
    with httpx.Client(verify=app_alone.tls) as client:
        login = client.get(f"{app_alone.url}/accounts/login/")
    assert login.status_code == 200
    assert f'href="/static/{app_alone.manifest["voicechat/style.css"]}"' in login.text


def test_whitenoise_serves_hashed_names_gzipped_and_cached_for_good(app_alone):
    name = "voicechat/worklets/capture-processor.js"
    body = (app_alone.static_root / app_alone.manifest[name]).read_bytes()
    with httpx.Client(verify=app_alone.tls) as client:
        hashed = client.get(static_url(app_alone, name), headers={"Accept-Encoding": "gzip"})
        plain = client.get(f"{app_alone.url}/static/{name}", headers={"Accept-Encoding": "identity"})
        head = client.head(static_url(app_alone, name), headers={"Accept-Encoding": "identity"})
        missing = client.get(f"{app_alone.url}/static/voicechat/nothing.js")
    assert hashed.status_code == 200
    assert hashed.headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert hashed.headers["Content-Encoding"] == "gzip" and hashed.headers["Vary"] == "Accept-Encoding"
    assert hashed.headers["Content-Type"].startswith("text/javascript")
    assert hashed.content == body  # httpx undid the gzip
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "max-age=60, public"
    assert "Content-Encoding" not in plain.headers
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(body)
    assert missing.status_code == 404


def conversation_in_chromium(url: str) -> dict:
    """Log in, connect, speak one turn and hear the reply in Chromium; what the page loaded and said."""
    seen = {"responses": [], "console": [], "failures": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(FIXTURES / "hello_24k.wav")
        )
        try:
            # The test's own certificate authority is not one Chromium knows.
            page = browser.new_page(viewport={"width": 1280, "height": 800}, ignore_https_errors=True)
            page.set_default_timeout(15_000)
            page.add_init_script(VIOLATION_LISTENER)
            page.on("response", lambda response: seen["responses"].append((response.url, response.status)))
            page.on("console", lambda message: seen["console"].append((message.type, message.text)))
            page.on("pageerror", lambda error: seen["failures"].append(str(error)))
            page.on("requestfailed", lambda request: seen["failures"].append(f"{request.url}: {request.failure}"))
            log_in(page, url)
            page.click("#connect")
            page.wait_for_function("() => window.voicechat.state === 'connected'")
            page.click("#record")  # both worklets: capture now, playback since Connect
            expect(page.locator(".turn-user")).to_contain_text("Hello there, how are you?")
            expect(page.locator(".turn-assistant")).to_contain_text("I am fine, thank you for asking.")
            page.wait_for_function("() => window.voicechat.stats.samplesPlayed >= 24000")
            seen["secure"] = page.evaluate("window.isSecureContext")
            page.click("#connect")
            page.wait_for_function("() => window.voicechat.state === 'disconnected'")
        finally:
            browser.close()
    return seen


def assert_every_page_file_loaded_hashed(seen: dict, served: list[tuple[str, int]], manifest: dict) -> None:
    """Every module, worklet and the stylesheet, by its hashed name and nothing else; no error of any kind.

    `served`: the static files the server was asked for during the conversation, with the status it answered.
    """
    assert {path for path, _ in served} == {manifest[name] for name in PAGE_FILES}
    assert {status for _, status in served} == {200}
    assert [(u, status) for u, status in seen["responses"] if status >= 400] == []
    assert [text for kind, text in seen["console"] if kind == "error"] == []
    assert csp_violations([text for _, text in seen["console"]]) == []
    assert seen["failures"] == []
    assert seen["secure"] is True


def saved_turns(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT role, text FROM voicechat_turn ORDER BY conversation_id, seq").fetchall()


@pytest.mark.browser
def test_the_chat_page_loads_every_hashed_module_and_worklet_and_talks(app_alone):
    since = app_alone.log.stat().st_size
    seen = conversation_in_chromium(app_alone.url)
    assert_every_page_file_loaded_hashed(seen, wait_for(lambda: app_alone.static_requests(since)), app_alone.manifest)
    turns = wait_for(lambda: saved_turns(app_alone.database) if len(saved_turns(app_alone.database)) >= 2 else None)
    assert turns[:2] == [("user", "Hello there, how are you?"), ("assistant", "I am fine, thank you for asking.")]
