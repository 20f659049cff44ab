"""The voice experience in a real Chromium: barge-in, typed messages, push-to-talk, staying connected, audio."""

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser_support import ARTIFACTS, CHROMIUM, FIXTURES, chromium_args, in_thread, log_in, new_page
from tests.live_server import LiveServer
from voicechat.models import Conversation, Turn

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRANSCRIPT = "Hello there, how are you?"
REPLY = "I am fine, thank you for asking."


@pytest.fixture
def server(user):
    """The app, once the user exists (the ORM must not run on Playwright's thread later)."""
    with LiveServer() as live:
        yield live


@pytest.fixture
def browser(server):
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(FIXTURES / "hello_24k.wav")
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def chat(browser, server) -> Page:
    """A logged-in chat page."""
    page = new_page(browser)
    log_in(page, server.url)
    return page


def connect(page: Page) -> None:
    page.click("#connect")
    page.wait_for_function("() => window.voicechat.state === 'connected'")


def disconnect(page: Page) -> None:
    page.click("#connect")
    page.wait_for_function("() => window.voicechat.state === 'disconnected'")


def send_text(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def eventually(page: Page, check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Wait for the fake service to reach some state (Playwright keeps running meanwhile)."""
    waited = 0.0
    while not (value := check()):
        assert waited < timeout, f"timed out waiting for {what}"
        page.wait_for_timeout(50)
        waited += 0.05
    return value


def voicechat(page: Page, expression: str = "") -> Any:
    return page.evaluate(f"JSON.parse(JSON.stringify(window.voicechat{expression}))")


def appended_ms(events: list[dict[str, Any]]) -> float:
    """Milliseconds of 24 kHz PCM16 in these input_audio_buffer.append events."""
    size = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "input_audio_buffer.append")
    return size / 48


def saved_turns(user) -> list[tuple[str, str, str]]:
    conversation = Conversation.objects.get(user=user)
    return list(conversation.turns.order_by("seq").values_list("role", "text", "status"))


def test_barge_in_truncates_the_reply_where_the_user_stopped_hearing_it(threaded_fake_service, chat, user):
    script = threaded_fake_service.script
    script.reply_ms = 4000
    script.chunk_delay = 0.1  # 100 ms chunks in real time, as a service streams them
    script.barge_in_after_ms = 1500
    connect(chat)
    send_text(chat, "Tell me a long story.")
    chat.wait_for_function("() => window.voicechat.lastTruncate !== null")
    truncate = eventually(chat, lambda: threaded_fake_service.of_type("conversation.item.truncate"), "the truncate")[0]
    item_id = truncate["item_id"]
    page_state = voicechat(chat)
    played_ms = page_state["items"][item_id]["playedSamples"] / 24

    assert truncate["content_index"] == 0
    assert truncate["audio_end_ms"] == page_state["lastTruncate"]["audioEndMs"]
    assert abs(truncate["audio_end_ms"] - played_ms) <= 50, (truncate, page_state["items"])
    # Most of the 1.5 s sent before the user spoke was heard, never more than was sent.
    assert 1000 <= truncate["audio_end_ms"] <= 1500
    assert not [e for e in map(json.loads, threaded_fake_service.sent) if e["type"] == "error"]

    # Playback stopped at once and stays stopped.
    played = voicechat(chat, ".stats.samplesPlayed")
    chat.wait_for_timeout(500)
    assert voicechat(chat, ".stats.samplesPlayed") == played
    assert voicechat(chat, ".assistantSpeaking") is False
    bubble = chat.locator(f'.turn-assistant[data-item-id="{item_id}"]')
    expect(bubble).to_have_attribute("data-status", "interrupted")
    expect(bubble).to_contain_text("interrupted after")
    assert voicechat(chat, ".error") is None
    disconnect(chat)

    turn = in_thread(lambda: Turn.objects.get(conversation__user=user, item_id=item_id))
    assert turn.status == Turn.Status.INTERRUPTED
    assert turn.heard_ms == truncate["audio_end_ms"]


def test_a_typed_message_is_answered_aloud(threaded_fake_service, chat, user):
    threaded_fake_service.script.reply = "Sunny and warm today."
    threaded_fake_service.script.reply_ms = 1000
    connect(chat)
    send_text(chat, "What is the weather like?")

    expect(chat.locator(".turn-user")).to_contain_text("What is the weather like?")
    expect(chat.locator(".turn-assistant")).to_contain_text("Sunny and warm today.")
    expect(chat.locator("#message")).to_have_value("")
    chat.wait_for_function("() => window.voicechat.stats.samplesPlayed >= 24000")  # the whole second of the reply
    assert chat.locator(".turn-user").bounding_box()["y"] < chat.locator(".turn-assistant").bounding_box()["y"]

    sent = [e for e in threaded_fake_service.received if e["type"] != "session.update"]
    assert sent == [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is the weather like?"}],
            },
        },
        {"type": "response.create"},
    ]
    assert voicechat(chat, ".recording") is False  # typed without the microphone
    disconnect(chat)
    assert in_thread(saved_turns, user) == [
        ("user", "What is the weather like?", "completed"),
        ("assistant", "Sunny and warm today.", "completed"),
    ]


def test_push_to_talk_with_the_button_and_the_space_bar(threaded_fake_service, chat, user):
    threaded_fake_service.script.commit_responds = False  # as the real service with turn detection off
    connect(chat)
    expect(chat.locator("#talk")).to_be_hidden()
    chat.get_by_label("Push to talk").check()
    chat.wait_for_function("() => window.voicechat.mode === 'push_to_talk'")
    update = eventually(chat, lambda: threaded_fake_service.sessions[1:], "the mode's session.update")[-1]
    assert update["audio"]["input"]["turn_detection"] is None

    # Hold the button for 1.5 s: the microphone opens and what it hears is sent, then committed.
    talk = chat.locator("#talk")
    expect(talk).to_be_visible()
    box = talk.bounding_box()
    chat.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    chat.mouse.down()
    expect(chat.locator("#user-voice")).to_have_attribute("data-speaking", "true")
    expect(talk).to_have_attribute("aria-pressed", "true")
    chat.wait_for_timeout(1500)
    chat.mouse.up()
    eventually(chat, lambda: threaded_fake_service.of_type("response.create"), "response.create")
    types = [e["type"] for e in threaded_fake_service.received]
    start = types.index("input_audio_buffer.clear")
    held = threaded_fake_service.received[start:]
    assert [e["type"] for e in held][-2:] == ["input_audio_buffer.commit", "response.create"]
    assert set(types[start + 1 : -2]) == {"input_audio_buffer.append"}
    assert 900 <= appended_ms(held) <= 1700, appended_ms(held)  # less the moment the microphone took to open
    expect(chat.locator(".turn-user")).to_contain_text(TRANSCRIPT)
    expect(chat.locator(".turn-assistant")).to_contain_text(REPLY)
    expect(chat.locator("#user-voice")).to_have_attribute("data-speaking", "false")

    # Released: nothing more is sent although the microphone stays open.
    count = len(threaded_fake_service.received)
    chat.wait_for_timeout(500)
    assert len(threaded_fake_service.received) == count
    assert voicechat(chat, ".recording") is True

    # In the text box the space bar types a space...
    chat.click("#message")
    chat.keyboard.press("Space")
    expect(chat.locator("#message")).to_have_value(" ")
    assert len(threaded_fake_service.received) == count
    # ...elsewhere holding it talks.
    chat.locator("#transcript").focus()
    chat.keyboard.down("Space")
    chat.wait_for_function("() => window.voicechat.talking === true")
    chat.wait_for_timeout(1000)
    chat.keyboard.up("Space")
    expect(chat.locator(".turn-assistant")).to_have_count(2)
    second = threaded_fake_service.received[count:]
    second_types = [e["type"] for e in second]
    assert second_types[0] == "input_audio_buffer.clear"
    assert second_types[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert 800 <= appended_ms(second) <= 1300, appended_ms(second)
    assert voicechat(chat, ".error") is None

    # The microphone's real settings were reported once.
    info = voicechat(chat, ".clientInfo")
    assert info["type"] == "voicechat.client_info"
    assert info["audio"]["sampleRate"] > 0 and isinstance(info["audio"]["echoCancellation"], bool)
    disconnect(chat)
    conversation = in_thread(lambda: Conversation.objects.get(user=user))
    assert conversation.client_audio == info["audio"]
    assert [role for role, _, _ in in_thread(saved_turns, user)] == ["user", "assistant", "user", "assistant"]


def test_a_dropped_socket_reconnects_to_the_same_conversation(threaded_fake_service, chat, server, user):
    threaded_fake_service.script.reply_ms = 800
    connect(chat)
    send_text(chat, "Remember the number seven.")
    expect(chat.locator(".turn-assistant")).to_contain_text(REPLY)
    chat.click("#record")
    chat.wait_for_function("() => window.voicechat.stats.chunksSent > 5")
    conversation_id = voicechat(chat, ".conversationId")
    chat.evaluate(
        """() => {
          const el = document.getElementById('status');
          window.statuses = [];
          new MutationObserver(() => window.statuses.push(el.textContent))
            .observe(el, { childList: true, characterData: true, subtree: true });
        }"""
    )

    assert server.drop_websockets() == 1
    chat.wait_for_function("() => window.voicechat.reconnects === 1 && window.voicechat.state === 'connected'")
    statuses = chat.evaluate("window.statuses")
    assert any(s.startswith("Connection lost, reconnecting in 0.5 s") for s in statuses), statuses
    assert voicechat(chat, ".lastClose.code") == 1006
    assert voicechat(chat, ".socketPaths") == ["/ws/realtime/", f"/ws/realtime/?conversation={conversation_id}"]
    assert voicechat(chat, ".conversationId") == conversation_id
    assert voicechat(chat, ".error") is None
    # The transcript is as it was: the earlier turns re-sent to the service are not shown twice.
    expect(chat.locator(".turn")).to_have_count(2)

    # Recording goes on into the new service session, and so does the conversation.
    eventually(chat, lambda: len(threaded_fake_service.connections) == 2, "a second service session")
    resent = [
        e["item"] for e in threaded_fake_service.connections[1].received if e["type"] == "conversation.item.create"
    ]
    assert [(i["role"], i["content"][0]["text"]) for i in resent] == [
        ("user", "Remember the number seven."),
        ("assistant", REPLY),
    ]
    eventually(
        chat,
        lambda: any(e["type"] == "input_audio_buffer.append" for e in threaded_fake_service.connections[1].received),
        "audio in the new session",
    )
    chat.click("#record")  # stop: the typed turn must not meet a spoken one
    send_text(chat, "What was the number?")
    expect(chat.locator(".turn-assistant")).to_have_count(2)
    expect(chat.locator(".turn-user").nth(1)).to_contain_text("What was the number?")
    disconnect(chat)
    assert in_thread(lambda: Conversation.objects.filter(user=user).count()) == 1
    assert [text for _, text, _ in in_thread(saved_turns, user)] == [
        "Remember the number seven.",
        REPLY,
        "What was the number?",
        REPLY,
    ]


def test_an_expired_service_session_goes_on_with_a_notice(threaded_fake_service, chat, user):
    script = threaded_fake_service.script
    script.auto_turn_after_ms = 1000
    script.reply_ms = 800
    script.expire_after_turns = 1
    connect(chat)
    chat.click("#record")
    expect(chat.locator(".turn-assistant").first).to_contain_text(REPLY)
    eventually(chat, lambda: len(threaded_fake_service.connections) == 2, "a second service session")
    script.expire_after_turns = None
    resent = eventually(
        chat,
        lambda: [
            e["item"] for e in threaded_fake_service.connections[1].received if e["type"] == "conversation.item.create"
        ],
        "the earlier turns in the new session",
    )
    assert [(i["role"], i["content"][0]["text"]) for i in resent] == [("user", TRANSCRIPT), ("assistant", REPLY)]

    notice = chat.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).not_to_be_empty()
    assert voicechat(chat, ".notice")
    # A second spoken turn, in the new session, answered as the first.
    expect(chat.locator(".turn-assistant")).to_have_count(2, timeout=20_000)
    expect(chat.locator(".turn-assistant").nth(1)).to_contain_text(REPLY)
    expect(chat.locator(".turn-user")).to_have_count(2)
    assert voicechat(chat, ".error") is None
    assert voicechat(chat, ".state") == "connected"
    expect(chat.locator("#status")).not_to_have_attribute("data-kind", "error")
    disconnect(chat)
    assert [role for role, _, _ in in_thread(saved_turns, user)] == ["user", "assistant", "user", "assistant"]


def test_screenshots_mid_conversation_on_desktop_and_phone(threaded_fake_service, chat, user):
    script = threaded_fake_service.script
    script.reply = "Here is a long answer that takes a few seconds to say, so the picture shows it being spoken."
    script.reply_ms = 6000
    script.chunk_delay = 0.1
    connect(chat)
    chat.get_by_label("Push to talk").check()
    chat.wait_for_function("() => window.voicechat.mode === 'push_to_talk'")
    send_text(chat, "Could you tell me something interesting?")
    chat.wait_for_function("() => window.voicechat.assistantSpeaking === true")
    chat.wait_for_timeout(600)  # a few level reports
    expect(chat.locator("#assistant-voice")).to_have_attribute("data-speaking", "true")
    assert voicechat(chat, ".outputLevel") > 0.01
    ARTIFACTS.mkdir(exist_ok=True)
    chat.screenshot(path=ARTIFACTS / "chat-desktop.png", full_page=True)

    for width, height in [(390, 844), (360, 740)]:
        chat.set_viewport_size({"width": width, "height": height})
        # Nothing sticks out sideways, and the main controls stay reachable.
        wide = chat.evaluate(
            """(width) => [...document.querySelectorAll('body *')]
                .filter((el) => el.getBoundingClientRect().right > width)
                .map((el) => `${el.tagName}#${el.id}.${el.className} ${el.getBoundingClientRect().right}`)""",
            width,
        )
        assert chat.evaluate("document.documentElement.scrollWidth") <= width, wide
        for selector in ("#connect", "#mute", "#talk", "#message", "#send"):
            box = chat.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, selector
        if width == 390:
            chat.screenshot(path=ARTIFACTS / "chat-phone.png", full_page=True)
    assert (ARTIFACTS / "chat-desktop.png").stat().st_size > 10_000
    assert (ARTIFACTS / "chat-phone.png").stat().st_size > 10_000
    disconnect(chat)
    # Mid-reply: the service session is closed too, before anything is torn down.
    eventually(chat, threaded_fake_service.closed.is_set, "the service session to close")


def test_mute_keeps_the_microphone_open_and_another_microphone_can_be_chosen(threaded_fake_service, chat):
    connect(chat)
    chat.click("#record")
    chat.wait_for_function("() => window.voicechat.stats.chunksSent > 5 && window.voicechat.inputLevel > 0")
    chat.click("#mute")
    expect(chat.locator("#mute")).to_have_attribute("aria-pressed", "true")
    expect(chat.locator("#mute")).to_have_text("Unmute")
    expect(chat.locator("#user-voice .voice-state")).to_contain_text("muted")
    chat.wait_for_timeout(200)  # a chunk already on its way may still arrive
    count = len(threaded_fake_service.of_type("input_audio_buffer.append"))
    mic_still_heard = chat.evaluate(
        """() => new Promise((resolve) => {
          const start = window.voicechat.inputLevel;
          setTimeout(() => resolve(window.voicechat.inputLevel !== start || start > 0), 600);
        })"""
    )
    assert len(threaded_fake_service.of_type("input_audio_buffer.append")) == count  # nothing sent while muted
    assert mic_still_heard and voicechat(chat, ".recording") is True  # the microphone is still open
    chat.click("#mute")
    chat.wait_for_function(f"() => window.voicechat.stats.chunksSent > {voicechat(chat, '.stats.chunksSent') + 5}")
    assert len(threaded_fake_service.of_type("input_audio_buffer.append")) > count

    # The list is filled once permission was given; choosing another device reopens capture on it.
    expect(chat.locator("#microphone")).to_be_enabled()
    devices = chat.eval_on_selector_all("#microphone option", "options => options.map((o) => o.value)")
    assert devices[0] == "" and len(devices) >= 2, devices
    chosen = devices[-1]
    chat.select_option("#microphone", chosen)
    chat.wait_for_function(f"() => window.voicechat.activeMicrophone === {json.dumps(chosen)}")
    sent = voicechat(chat, ".stats.chunksSent")
    chat.wait_for_function(f"() => window.voicechat.stats.chunksSent > {sent + 5}")
    assert voicechat(chat, ".recording") is True
    assert voicechat(chat, ".error") is None
    disconnect(chat)


def test_keyboard_only_use_and_visible_focus(threaded_fake_service, chat):
    chat.keyboard.press("Tab")  # the skip link first
    for _ in range(12):
        if chat.evaluate("document.activeElement.id") == "connect":
            break
        chat.keyboard.press("Tab")
    assert chat.evaluate("document.activeElement.id") == "connect"
    outline = chat.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    chat.keyboard.press("Enter")
    chat.wait_for_function("() => window.voicechat.state === 'connected'")
    # The mode switch is a radio group: arrow keys move between its options.
    chat.locator('input[value="hands_free"]').focus()
    chat.keyboard.press("ArrowRight")
    chat.wait_for_function("() => window.voicechat.mode === 'push_to_talk'")
    assert chat.evaluate("document.activeElement.value") == "push_to_talk"
    assert chat.evaluate("getComputedStyle(document.activeElement.parentElement).outlineStyle") != "none"
    # The microphone list waits for permission; next comes the talk button, held with the space bar.
    chat.keyboard.press("Tab")
    assert chat.evaluate("document.activeElement.id") == "talk"
    chat.keyboard.down("Space")
    chat.wait_for_function("() => window.voicechat.talking === true")
    expect(chat.locator("#talk")).to_have_attribute("aria-pressed", "true")
    chat.keyboard.up("Space")
    chat.wait_for_function("() => window.voicechat.talking === false")
    expect(chat.locator("#microphone")).to_be_enabled()  # filled once the microphone opened
    assert chat.locator("#microphone option").count() >= 2
    assert chat.get_attribute("#transcript", "aria-live") == "polite"
    # Mute is a toggle button that says so.
    chat.locator("#mute").focus()
    chat.keyboard.press("Enter")
    expect(chat.locator("#mute")).to_have_attribute("aria-pressed", "true")
    expect(chat.locator("#user-voice .voice-state")).to_have_text("muted")
    disconnect(chat)


TEST_JS = Path(__file__).parent / "js"


def serve(body: str, content_type: str) -> Callable:
    """A Playwright route handler answering with this file."""
    return lambda route: route.fulfill(content_type=content_type, body=body)


@pytest.fixture
def audio_page(browser, server) -> Page:
    """A bare page of the app's origin (so it may load the static modules and worklets) for the audio modules."""
    page = new_page(browser)
    for name, content_type in (("", "text/html"), ("random.mjs", "text/javascript")):
        body = (TEST_JS / (name or "audio-page.html")).read_text()
        page.route(server.url + "/audio-test/" + name, serve(body, content_type))
    page.goto(server.url + "/audio-test/")
    page.wait_for_function("() => window.ready === true")
    return page


@pytest.mark.parametrize("rate", [48000, 44100])
def test_playback_is_gap_free_under_network_jitter(audio_page, rate):
    result = audio_page.evaluate("(args) => window.runJitter(args)", {"seed": rate, "seconds": 6, "rate": rate})
    assert result["rate"] == rate
    assert result["started"] == 1, result  # started once, never ran dry and restarted
    assert result["underruns"] == 0, result
    assert result["received"] == result["played"] == result["pushed"] == 60 * 2400, result
    assert result["framesOut"] == result["pushedFrames"], result


@pytest.mark.parametrize("rate", [48000, 44100])
def test_capture_sends_24_khz_from_a_device_rate_of(audio_page, rate):
    result = audio_page.evaluate("(args) => window.runCapture(args)", {"rate": rate, "ms": 2000})
    assert result["rate"] == rate
    assert 22_800 <= result["perSecond"] <= 25_200, result  # 24 kHz within 5 %, whatever the device rate
    assert result["peak"] > 3000, result  # the speech clip, not silence
    assert 8 <= result["levelsPerSecond"] <= 12, result
    assert result["loudest"] > 0.01, result
    assert result["info"]["sampleRate"] > 0 and result["info"]["deviceLabel"], result
