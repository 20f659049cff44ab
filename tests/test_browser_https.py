"""In Chromium: the page says the microphone needs https where it is not a secure context; over serve_https it talks."""

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect, sync_playwright

from tests.app_process import app_environment, manage
from tests.browser_support import ARTIFACTS, CHROMIUM, FIXTURES, chromium_args, log_in, new_page
from tests.fake_service import ThreadedFakeService
from tests.live_server import LiveServer
from tests.test_https import serve_https
from voicechat import local_cert

pytestmark = pytest.mark.browser

# A browser that offered the microphone API on any page would have its calls counted here:
# the page must decide by window.isSecureContext, and not ask at all on an insecure page.
COUNT_MICROPHONE_REQUESTS = """
window.microphoneRequests = 0;
if (!('mediaDevices' in navigator)) {
  const devices = {
    getUserMedia() { window.microphoneRequests++; return Promise.reject(new DOMException('no', 'NotAllowedError')); },
    enumerateDevices() { window.microphoneRequests++; return Promise.resolve([]); },
    addEventListener() {},
  };
  Object.defineProperty(Navigator.prototype, 'mediaDevices', { configurable: true, get: () => devices });
}
"""

CREATE_ALICE = (
    "from django.contrib.auth import get_user_model; "
    "get_user_model().objects.create_user('alice', password='s3cret-pass')"
)


@pytest.mark.django_db(transaction=True)
def test_over_plain_http_from_another_name_the_page_says_the_microphone_needs_https(user, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "phone.test"]
    args = [*chromium_args(FIXTURES / "hello_24k.wav"), "--host-resolver-rules=MAP phone.test 127.0.0.1"]
    with LiveServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = new_page(browser, width=390, height=844)  # a phone's screen
            page.add_init_script(COUNT_MICROPHONE_REQUESTS)
            page.goto(server.url.replace("127.0.0.1", "phone.test") + "/")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "s3cret-pass")
            page.click("button[type=submit], input[type=submit]")

            message = page.locator("#insecure-context")
            expect(message).to_be_visible()
            expect(message).to_contain_text("The microphone cannot work on this page.")
            expect(message).to_contain_text("https://")
            expect(message).to_contain_text("Microphone needs HTTPS")
            expect(page.locator("#status")).to_contain_text("it was not opened over https")
            assert page.evaluate("window.isSecureContext") is False
            assert page.evaluate("window.voicechat.insecureContext") is True
            expect(page.locator("#connect")).to_be_disabled()
            expect(page.locator("#record")).to_be_disabled()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "insecure-context-phone.png", full_page=True)

            # Nothing the user does reaches for the microphone.
            page.locator("#connect").click(force=True)
            page.locator("#record").click(force=True)
            page.check("input[value=push_to_talk]")
            page.keyboard.down(" ")
            page.keyboard.up(" ")
            page.wait_for_timeout(300)
            assert page.evaluate("window.microphoneRequests") == 0
            assert page.evaluate("window.voicechat.state") == "disconnected"
        finally:
            browser.close()


def test_over_serve_https_the_page_is_a_secure_context_and_talks(tmp_path):
    with ThreadedFakeService() as service:
        service.script.auto_turn_after_ms = 1000
        service.script.reply_ms = 1200
        # DEBUG on: its static files served from the app's folders, as `make https` does.
        env = app_environment(service, tmp_path / "db.sqlite3")
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "shell", "-c", CREATE_ALICE)
        cert_dir = tmp_path / "certs"
        with serve_https(env, cert_dir, tmp_path / "serve_https.log") as port:
            certificate = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
            # The machine's own name, as a phone on the network would use it (http://NAME is not a
            # secure context: localhost is), resolved to loopback in this browser only.
            names = [name for name in local_cert.certificate_names(certificate).dns if name != "localhost"]
            assert names, "the host name is not a DNS name: the certificate covers no name but localhost"
            spki = certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            args = [
                *chromium_args(FIXTURES / "hello_24k.wav"),
                f"--host-resolver-rules=MAP {names[0]} 127.0.0.1",
                # Trust this certificate's key, as a user does by accepting the warning; a name it
                # does not cover would still be refused.
                f"--ignore-certificate-errors-spki-list={base64.b64encode(hashlib.sha256(spki).digest()).decode()}",
            ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
                try:
                    page = new_page(browser, width=390, height=844)
                    log_in(page, f"https://{names[0]}:{port}")
                    assert page.evaluate("window.isSecureContext") is True
                    expect(page.locator("#insecure-context")).to_be_hidden()

                    page.click("#connect")
                    page.wait_for_function("() => window.voicechat.state === 'connected'")
                    expect(page.locator("#engine")).to_contain_text("gpt-realtime")
                    page.click("#record")
                    expect(page.locator(".turn-user")).to_contain_text("Hello there, how are you?")
                    expect(page.locator(".turn-assistant")).to_contain_text("I am fine, thank you for asking.")
                    page.wait_for_function("() => window.voicechat.stats.chunksSent > 10")
                    assert page.evaluate("window.voicechat.insecureContext") is False
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=ARTIFACTS / "https-phone.png", full_page=True)
                    page.click("#connect")  # Disconnect
                    page.wait_for_function("() => window.voicechat.state === 'disconnected'")
                finally:
                    browser.close()


@pytest.mark.django_db(transaction=True)
def test_a_secure_page_in_a_browser_without_the_microphone_api_says_so(threaded_fake_service, user):
    with LiveServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(FIXTURES / "hello_24k.wav")
        )
        try:
            page = new_page(browser)
            page.add_init_script("Object.defineProperty(Navigator.prototype, 'mediaDevices', { get: () => undefined })")
            log_in(page, server.url)
            expect(page.locator("#insecure-context")).to_be_hidden()
            page.click("#connect")
            page.wait_for_function("() => window.voicechat.state === 'connected'")
            page.click("#record")
            expect(page.locator("#status")).to_contain_text("This browser gives pages no microphone")
            assert page.evaluate("window.voicechat.recording") is False
            # Typed messages still work.
            page.fill("#message", "Hello in writing")
            page.click("#send")
            expect(page.locator(".turn-assistant")).to_contain_text("I am fine, thank you for asking.")
        finally:
            browser.close()
