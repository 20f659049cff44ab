"""Security: sign-in throttling, production settings, the Content-Security-Policy, socket origins, the API key."""

import asyncio
import base64
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from axes.models import AccessAttempt, AccessLog
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db.models import F
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from playwright.sync_api import expect, sync_playwright

from config.asgi import application
from tests.browser_socket import BrowserSocket
from tests.browser_support import CHROMIUM, FIXTURES, chromium_args, in_thread, log_in, new_page
from tests.conftest import session_cookie
from tests.fake_service import tone
from tests.live_server import LiveServer
from voicechat.client_ip import forwarded_client
from voicechat.models import Conversation

BASE_DIR = Path(settings.BASE_DIR)
LOGIN = "/accounts/login/"
LOCKED_OUT = "Too many failed sign-in attempts; try again in 15 minutes."


def sign_in(client: Client, password: str, username: str = "alice", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# Sign-in throttling


@pytest.mark.django_db
def test_the_right_password_is_refused_after_too_many_wrong_ones(client, user):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        response = sign_in(client, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    locked = sign_in(client, "wrong")
    assert locked.status_code == 429
    assert LOCKED_OUT in locked.content.decode()

    refused = sign_in(client, "s3cret-pass")
    assert refused.status_code == 429
    assert LOCKED_OUT in refused.content.decode()
    assert not signed_in(client)


@pytest.mark.django_db
def test_a_lockout_holds_only_that_username_from_that_address(user, other_user):
    attacker = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(attacker, "wrong")
    assert sign_in(attacker, "s3cret-pass").status_code == 429

    # Another user from the attacker's address, and the same user from elsewhere, sign in.
    bob_there = Client(REMOTE_ADDR="203.0.113.66")
    assert sign_in(bob_there, "s3cret-pass", username="bob").status_code == 302
    assert signed_in(bob_there)
    alice_elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert sign_in(alice_elsewhere, "s3cret-pass").status_code == 302
    assert signed_in(alice_elsewhere)


@pytest.mark.django_db
def test_signing_in_works_again_after_the_cool_off(client, user):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(client, "wrong")
    assert sign_in(client, "s3cret-pass").status_code == 429
    assert AccessAttempt.objects.filter(username="alice").count() == 1

    def minutes_pass(minutes: int) -> None:
        AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes))

    minutes_pass(14)
    assert sign_in(client, "s3cret-pass").status_code == 429
    # That try started the wait again: 28 minutes after the lockout, 14 after the last try.
    minutes_pass(14)
    assert sign_in(client, "s3cret-pass").status_code == 429
    minutes_pass(16)
    response = sign_in(client, "s3cret-pass")
    assert response.status_code == 302 and response["Location"] == reverse("chat")
    assert signed_in(client)


@pytest.mark.django_db
def test_an_administrator_can_lift_a_lockout(client, user):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(client, "wrong")
    assert sign_in(client, "s3cret-pass").status_code == 429
    call_command("axes_reset_username", "alice", verbosity=0)
    assert sign_in(client, "s3cret-pass").status_code == 302
    assert signed_in(client)


@pytest.mark.django_db
def test_a_success_clears_the_failures(client, user):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, "wrong")
    assert sign_in(client, "s3cret-pass").status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert sign_in(client, "wrong").status_code == 200


@pytest.mark.django_db
def test_the_sign_in_log_is_kept_until_the_command_the_readme_gives_deletes_it(client, user):
    assert sign_in(client, "s3cret-pass").status_code == 302
    (entry,) = AccessLog.objects.all()
    assert (entry.username, entry.ip_address) == ("alice", "127.0.0.1")
    call_command("axes_reset_logs", age=30, stdout=io.StringIO())
    assert AccessLog.objects.count() == 1  # new: kept
    AccessLog.objects.update(attempt_time=F("attempt_time") - timedelta(days=31))
    call_command("axes_reset_logs", age=30, stdout=io.StringIO())
    assert AccessLog.objects.count() == 0


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_address_is_counted(user, settings):
    settings.TRUSTED_PROXIES = 1
    # Everything arrives from nginx on 127.0.0.1; nginx appends the address it saw.
    attacker = Client(REMOTE_ADDR="127.0.0.1")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(attacker, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.66")
    # Entries the client writes itself, left of the proxy's, change nothing.
    forged = sign_in(attacker, "s3cret-pass", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.66")
    assert forged.status_code == 429

    colleague = Client(REMOTE_ADDR="127.0.0.1")
    assert sign_in(colleague, "s3cret-pass", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


@pytest.mark.django_db
def test_the_admin_sign_in_is_throttled_too(client, staff):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "root", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "root", "password": "s3cret-pass"})
    assert response.status_code == 429 and LOCKED_OUT in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_page_through_the_asgi_application(user):
    """As served by daphne or uvicorn: Django's async middleware path, CSRF checks on."""
    transport = httpx.ASGITransport(app=application, client=("203.0.113.66", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as browser:
        page = await browser.get(LOGIN)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"csrfmiddlewaretoken": token, "username": "alice"}
        statuses = [
            (await browser.post(LOGIN, data={**form, "password": "wrong"})).status_code
            for _ in range(settings.LOGIN_FAILURE_LIMIT)
        ]
        assert statuses == [200] * (settings.LOGIN_FAILURE_LIMIT - 1) + [429]
        refused = await browser.post(LOGIN, data={**form, "password": "s3cret-pass"})
    assert refused.status_code == 429
    assert LOCKED_OUT in refused.text
    assert csp_directives(refused.headers["Content-Security-Policy"]) == EXPECTED_CSP


def test_forwarded_client_address():
    assert forwarded_client("10.0.0.2", "198.51.100.7", 0) == "10.0.0.2"  # no proxy: the header is the client's
    assert forwarded_client("10.0.0.2", "192.0.2.1, 198.51.100.7", 1) == "198.51.100.7"
    assert forwarded_client("10.0.0.2", "192.0.2.1, 198.51.100.7, 10.0.0.9", 2) == "198.51.100.7"
    assert forwarded_client("10.0.0.2", "198.51.100.7", 3) == "198.51.100.7"
    assert forwarded_client("10.0.0.2", "", 1) == "10.0.0.2"


# Production settings, each in a process of its own (settings are read from the environment once)

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "voice.example.com",
}

RESPONSES = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import F
from django.test import Client

call_command("migrate", verbosity=0)
get_user_model().objects.create_user("alice", password="s3cret-pass")
client = Client(HTTP_HOST="voice.example.com")
plain = client.get("/accounts/login/")
forwarded = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
page = client.get("/accounts/login/", secure=True)
login = client.post("/accounts/login/", {"username": "alice", "password": "s3cret-pass"}, secure=True)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "forwarded": forwarded.status_code,
    "headers": dict(page.headers),
    "login": login.status_code,
    "cookies": {
        name: {flag: bool(morsel[flag]) for flag in ("secure", "httponly")} for name, morsel in client.cookies.items()
    },
    "throttling": [settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds()],
}))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_responses(**env: str) -> dict:
    done = run(["-c", RESPONSES], **PRODUCTION, DATABASE_URL="sqlite://:memory:", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_deployment_check_is_clean_with_production_settings():
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_production_responses_carry_the_security_headers_and_cookies():
    seen = production_responses(LOGIN_FAILURE_LIMIT="7", LOGIN_LOCKOUT_MINUTES="20")
    assert seen["plain"] == [301, "https://voice.example.com/accounts/login/"]
    # X-Forwarded-Proto is not believed unless TRUST_X_FORWARDED_PROTO says a proxy sets it.
    assert seen["forwarded"] == 301
    headers = seen["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert csp_directives(headers["Content-Security-Policy"]) == EXPECTED_CSP
    assert seen["login"] == 302
    assert seen["cookies"] == {
        "csrftoken": {"secure": True, "httponly": True},
        "sessionid": {"secure": True, "httponly": True},
    }
    assert seen["throttling"] == [7, 20 * 60]


def test_a_proxy_that_sets_x_forwarded_proto_is_believed_when_configured():
    seen = production_responses(TRUST_X_FORWARDED_PROTO="true")
    assert seen["plain"][0] == 301
    assert seen["forwarded"] == 200


# The Content-Security-Policy

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "connect-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def csp_directives(header: str) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


@pytest.mark.django_db
def test_pages_carry_the_content_security_policy(client, user):
    assert csp_directives(client.get(LOGIN)["Content-Security-Policy"]) == EXPECTED_CSP
    client.force_login(user)
    for url in (reverse("chat"), reverse("conversation_list"), reverse("admin:login")):
        assert csp_directives(client.get(url)["Content-Security-Policy"]) == EXPECTED_CSP


INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)


def test_templates_hold_no_inline_script_or_style():
    templates = sorted((BASE_DIR / "templates").rglob("*.html"))
    assert len(templates) >= 6
    offending = {str(path): INLINE_CODE.findall(path.read_text()) for path in templates}
    assert {path: found for path, found in offending.items() if found} == {}


VIOLATION_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`);
});
"""


def csp_violations(messages: list[str]) -> list[str]:
    return [text for text in messages if "CSP violation" in text or "Content Security Policy" in text]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_breaks_the_content_security_policy(threaded_fake_service, user, staff):
    """A spoken turn, the history, the admin: the browser reports no violation, and would."""
    threaded_fake_service.script.auto_turn_after_ms = 1000
    threaded_fake_service.script.reply_ms = 1200
    conversation_pages: list[str] = []
    with LiveServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(FIXTURES / "hello_24k.wav")
        )
        try:
            messages: list[str] = []
            page = new_page(browser)
            page.add_init_script(VIOLATION_LISTENER)
            page.on("console", lambda message: messages.append(message.text))
            log_in(page, server.url)
            page.click("#connect")  # the socket (connect-src)
            page.wait_for_function("() => window.voicechat.state === 'connected'")
            page.click("#record")  # the capture and playback worklets (script-src)
            expect(page.locator(".turn-assistant")).to_contain_text("I am fine, thank you for asking.")
            page.wait_for_function("() => window.voicechat.stats.samplesPlayed >= 24000")
            page.click("#connect")
            page.wait_for_function("() => window.voicechat.state === 'disconnected'")

            page.goto(server.url + reverse("conversation_list"))
            page.locator("table.conversations a").first.click()
            conversation_pages.append(page.url)
            page.locator("a", has_text="Delete this conversation").click()
            expect(page.locator("h1")).to_contain_text("Delete the conversation")

            admin_page = new_page(browser)
            admin_page.add_init_script(VIOLATION_LISTENER)
            admin_page.on("console", lambda message: messages.append(message.text))
            admin_page.goto(server.url + reverse("admin:index"))
            admin_page.fill("input[name=username]", "root")
            admin_page.fill("input[name=password]", "s3cret-pass")
            admin_page.click("input[type=submit]")
            expect(admin_page.locator("#site-name")).to_be_visible()
            # The admin's own scripts run: its theme switch changes the page. The switch only
            # listens once the page's load event has fired (admin/js/theme.js).
            admin_page.wait_for_load_state("load")
            theme = admin_page.evaluate("document.documentElement.dataset.theme || 'auto'")
            admin_page.click("button.theme-toggle")
            assert admin_page.evaluate("document.documentElement.dataset.theme") != theme
            for model in admin.site._registry:
                info = (model._meta.app_label, model._meta.model_name)
                admin_page.goto(server.url + reverse("admin:{}_{}_changelist".format(*info)))
                expect(admin_page.locator("#changelist")).to_be_visible()
            conversation = in_thread(lambda: Conversation.objects.get(user=user))
            admin_page.goto(server.url + reverse("admin:voicechat_conversation_change", args=[conversation.pk]))
            expect(admin_page.locator("#content")).to_contain_text("I am fine, thank you for asking.")
            assert admin_page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"

            assert csp_violations(messages) == []
            assert len(messages) > 0  # the console was heard from

            # The listener does catch a violation: an inline style on the chat page.
            page.goto(server.url + "/")
            page.evaluate("document.body.setAttribute('style', 'outline: 1px solid red')")
            page.wait_for_timeout(200)
            assert len(csp_violations(messages)) >= 1
        finally:
            browser.close()
    assert conversation_pages and f"/conversations/{conversation.pk}/" in conversation_pages[0]


# Cross-site WebSocket hijacking


async def socket_with(headers: list[tuple[bytes, bytes]]) -> bool:
    communicator = WebsocketCommunicator(application, "/ws/realtime/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_a_socket_from_a_foreign_origin_or_none_is_refused(fake_service, user):
    cookie = await database_sync_to_async(session_cookie)(user)
    assert not await socket_with([(b"origin", b"http://evil.example"), (b"cookie", cookie)])
    # A browser always sends Origin: a socket without one is a script outside any browser.
    assert not await socket_with([(b"cookie", cookie)])
    assert await database_sync_to_async(Conversation.objects.count)() == 0
    assert fake_service.paths == []

    # The same cookie from the site's own page is accepted.
    browser = BrowserSocket(cookie, origin=b"http://localhost")
    assert await browser.connect()
    await browser.until("session.updated")
    await browser.disconnect()
    assert await database_sync_to_async(Conversation.objects.count)() == 1


# The Azure API key never leaks

KEY = "leak-canary-3Hq8ZtW4mKx7Rp2N"
APPEND = {"type": "input_audio_buffer.append", "audio": base64.b64encode(tone(200)).decode()}


@contextmanager
def every_logger_at_debug():
    """Every logger, the root and `websockets` included, at DEBUG and propagating to caplog's handler."""
    names = ["websockets", "websockets.client", "voicechat", "django", "channels", "axes", "asyncio"]
    loggers = {logging.getLogger(), *map(logging.getLogger, names)}
    loggers |= {value for value in logging.root.manager.loggerDict.values() if isinstance(value, logging.Logger)}
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    try:
        yield
    finally:
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


async def ended(conversation_id: int) -> bool:
    for _ in range(100):
        found = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
        if found.ended_at is not None:
            return True
        await asyncio.sleep(0.05)
    return False


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def user_pages(user) -> dict[str, bytes]:
    client = Client()
    client.force_login(user)
    urls = [reverse("chat"), reverse("conversation_list")]
    for conversation in Conversation.objects.filter(user=user):
        urls += [reverse("conversation_detail", args=[conversation.pk])]
        urls += [reverse("conversation_delete", args=[conversation.pk])]
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = body(response)
    pages[LOGIN] = body(Client().get(LOGIN))
    return pages


def custom_admin_urls(model, model_admin) -> list[URLPattern]:
    """The URLs a ModelAdmin adds to the standard ones."""
    info = (model._meta.app_label, model._meta.model_name)
    standard = {"{}_{}_{}".format(*info, view) for view in ("changelist", "add", "history", "delete", "change")}
    custom = []
    for url in model_admin.get_urls():
        if str(url.pattern) == "<path:object_id>/":  # the standard redirect to the change page
            continue
        assert isinstance(url, URLPattern) and url.name, f"name the admin URL {url.pattern} so this test reaches it"
        if url.name not in standard:
            custom.append(url)
    return custom


def admin_url_arguments(model, url: URLPattern) -> list[dict[str, object]]:
    """Arguments to reach a custom admin URL with: this model's objects, or the objects of a `NAME_id` relation."""
    names = list(url.pattern.regex.groupindex)
    if not names:
        return [{}]
    assert len(names) == 1, f"teach this test the arguments of {url.pattern}"
    name = names[0]
    if name in ("object_id", "pk", "id"):
        target = model
    else:
        field = model._meta.get_field(name.removesuffix("_id"))
        assert field.is_relation, f"teach this test the argument {name} of {url.pattern}"
        target = field.related_model
    values = list(target._default_manager.values_list("pk", flat=True)[:50])
    assert values, f"{url.pattern} needs a {target._meta.verbose_name} and there is none: create one in this test"
    return [{name: value} for value in values]


def admin_pages(staff) -> dict[str, bytes]:
    """Every registered model's list, the page of each object, custom admin URLs and export actions."""
    client = Client()
    client.force_login(staff)
    request = RequestFactory().get("/admin/")
    request.user = staff
    pages = {}

    def get(url: str, expected: tuple[int, ...] = (200,)) -> None:
        response = client.get(url)
        assert response.status_code in expected, (url, response.status_code)
        pages[url] = body(response)

    get(reverse("admin:index"))
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        changelist = reverse("admin:{}_{}_changelist".format(*info))
        get(changelist)
        pks = list(model_admin.get_queryset(request).values_list("pk", flat=True)[:50])
        for pk in pks:
            get(reverse("admin:{}_{}_change".format(*info), args=[pk]))
        for url in custom_admin_urls(model, model_admin):
            for kwargs in admin_url_arguments(model, url):
                # A POST-only view answers a GET with 405 and shows nothing; it is not posted to.
                get(reverse(f"admin:{url.name}", kwargs=kwargs), expected=(200, 302, 403, 405))
        for action in model_admin.get_actions(request):
            if "export" in action or "csv" in action:
                response = client.post(changelist, {"action": action, "_selected_action": pks, "index": 0})
                assert response.status_code == 200, (changelist, action)
                pages[f"{changelist}?action={action}"] = body(response)
    return pages


def static_files() -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in (BASE_DIR / "static").rglob("*") if path.is_file()}


@pytest.mark.parametrize("provider", ["azure", "entra_id", "openai"])
@pytest.mark.django_db(transaction=True)
async def test_the_api_key_never_leaks(fake_service, settings, user, staff, caplog, request, provider):
    """Nor a Microsoft Entra ID token, nor the managed identity's secret header, nor OpenAI's key."""
    fake_service.api_key = KEY
    identity = None
    if provider == "azure":
        settings.AZURE_OPENAI_API_KEY = KEY
    elif provider == "entra_id":
        identity = request.getfixturevalue("managed_identity")
        settings.AZURE_OPENAI_API_KEY = ""
        fake_service.entra_tokens = identity.issued
    else:
        settings.AZURE_OPENAI_ENDPOINT = ""
        settings.OPENAI_API_KEY = KEY
        settings.OPENAI_BASE_URL = f"{fake_service.endpoint}/v1"
    cookie = await database_sync_to_async(session_cookie)(user)
    with every_logger_at_debug():
        talking = BrowserSocket(cookie)
        assert await talking.connect()
        events = await talking.until("session.updated")
        conversation_id = next(e["conversation_id"] for e in events if e["type"] == "voicechat.conversation")
        await talking.send(APPEND)
        await talking.send({"type": "input_audio_buffer.commit"})
        await talking.until("response.done")
        await talking.disconnect()
        assert await ended(conversation_id)

        # The service refuses the app's key (HTTP 401; OpenAI: an error event quoting the key's ends)
        # or its token (HTTP 401).
        fake_service.api_key = "another-key"
        fake_service.entra_tokens = []
        refused = BrowserSocket(cookie)
        assert await refused.connect()
        await refused.until_closed()
        assert any(json.loads(frame)["type"] == "error" for frame in refused.frames)

        pages = await database_sync_to_async(user_pages)(user)
        pages |= await database_sync_to_async(admin_pages)(staff)

    # The fake service must receive the key to check it, and its server logs the headers it got.
    records = [record for record in caplog.records if record.name != "websockets.server"]
    texts = {f"log {record.name}: {record.getMessage()}" for record in records}
    frames = talking.frames + refused.frames
    files = static_files()
    formatted = "\n".join(logging.Formatter().format(record) for record in records)
    secrets_ = [KEY, KEY[-4:]] if identity is None else [KEY, identity.header, *identity.issued]

    assert len(frames) >= 10 and len(records) >= 20 and len(files) >= 8
    assert len(pages) >= 5 + 2 * len(admin.site._registry)
    for secret in secrets_:
        assert [name for name, content in {**pages, **files}.items() if secret.encode() in content] == []
        assert [frame for frame in frames if secret in frame] == []
        assert [text for text in texts if secret in text] == []
        assert secret not in formatted
    # It was there to leak: the service was asked with it (and refused the other one).
    if provider == "azure":
        assert fake_service.headers[0]["api-key"] == KEY
    elif provider == "openai":
        assert fake_service.bearers == [KEY, KEY]
        assert f"***{KEY[-4:]}" in fake_service.sent[-1]  # the service's error quoted it
    else:
        assert len(identity.issued) == 2 and fake_service.bearers == identity.issued
