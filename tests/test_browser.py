"""The page in a real Chromium with a fake microphone, against the app and the fake service."""

import wave
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser_support import ARTIFACTS, CHROMIUM, FIXTURES, chromium_args, in_thread, log_in, new_page
from tests.live_server import LiveServer
from voicechat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def saved_turns(user) -> list[tuple[str, str]]:
    conversation = Conversation.objects.get(user=user)
    return list(conversation.turns.order_by("seq").values_list("role", "text"))


@contextmanager
def chat_page(microphone: Path):
    """A logged-in chat page in Chromium whose microphone plays this WAV in a loop."""
    with LiveServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(microphone))
        try:
            page = new_page(browser)
            log_in(page, server.url)
            yield page
        finally:
            browser.close()


@pytest.fixture
def browser_page(threaded_fake_service, user):
    with chat_page(FIXTURES / "hello_24k.wav") as page:
        yield page


def test_a_spoken_turn_end_to_end(browser_page, threaded_fake_service, user):
    page = browser_page
    threaded_fake_service.script.auto_turn_after_ms = 1000
    threaded_fake_service.script.reply_ms = 1200
    page.click("#connect")
    page.wait_for_function("() => window.voicechat.state === 'connected'")
    expect(page.locator("#engine")).to_contain_text("gpt-realtime")
    page.click("#record")

    expect(page.locator(".turn-user")).to_contain_text("Hello there, how are you?")
    expect(page.locator(".turn-assistant")).to_contain_text("I am fine, thank you for asking.")
    # The reply's 1.2 s of audio was played through the worklet.
    page.wait_for_function("() => window.voicechat.stats.samplesPlayed >= 24000", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "chat-desktop.png", full_page=True)

    # The microphone arrived as PCM16 24 kHz: about 48,000 bytes a second, and not silence.
    start_bytes, start_time = len(threaded_fake_service.audio), page.evaluate("performance.now()")
    page.wait_for_timeout(2000)
    rate = (len(threaded_fake_service.audio) - start_bytes) / ((page.evaluate("performance.now()") - start_time) / 1000)
    assert 40_000 < rate < 56_000, rate
    samples = memoryview(bytes(threaded_fake_service.audio)).cast("h")
    assert max(abs(s) for s in samples) > 3000  # the speech clip, not silence

    user_turn = page.locator(".turn-user").first
    assistant_turn = page.locator(".turn-assistant").first
    assert user_turn.bounding_box()["y"] < assistant_turn.bounding_box()["y"]
    page.click("#connect")  # Disconnect
    page.wait_for_function("() => window.voicechat.state === 'disconnected'")

    assert in_thread(saved_turns, user) == [
        ("user", "Hello there, how are you?"),
        ("assistant", "I am fine, thank you for asking."),
    ]


def test_the_local_engine_answers_with_no_cloud_settings(user, tmp_path):
    """No Azure settings at all (see conftest): the built-in engine hears and answers."""
    # One sentence, then silence long enough for the reply to play before the loop repeats.
    microphone = tmp_path / "lights_then_silence.wav"
    with wave.open(str(FIXTURES / "lights_flite_24k.wav")) as clip, wave.open(str(microphone), "wb") as out:
        out.setparams(clip.getparams())
        out.writeframes(clip.readframes(clip.getnframes()) + bytes(24000 * 2 * 8))
    with chat_page(microphone) as page:
        page.click("#connect")
        page.wait_for_function("() => window.voicechat.state === 'connected'", timeout=30_000)
        expect(page.locator("#engine")).to_contain_text("Local voice engine")
        page.click("#record")
        expect(page.locator(".turn-user").first).to_contain_text("lights", timeout=30_000)
        expect(page.locator(".turn-assistant").first).to_contain_text("I heard:", timeout=30_000)
        page.wait_for_function("() => window.voicechat.stats.samplesPlayed >= 24000", timeout=20_000)
        page.click("#connect")
        page.wait_for_function("() => window.voicechat.state === 'disconnected'")

    turns = in_thread(saved_turns, user)
    assert [role for role, _ in turns[:2]] == ["user", "assistant"]
    assert "lights" in turns[0][1] and turns[1][1].startswith("I heard:")
