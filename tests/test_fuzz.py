"""Random and malformed browser frames against the consumer, through the full ASGI stack.

Whatever a page sends, the consumer must not crash, must forward nothing the
voice client may not send, must answer each refused frame with an error and close
a socket that keeps sending them with the policy code; and another user's
conversation goes on meanwhile.
"""

import asyncio
import base64
import json
import logging
from dataclasses import dataclass

import hypothesis
import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tests import tally
from tests.browser_socket import BrowserSocket
from tests.conftest import session_cookie
from tests.test_consumer import conversation, eventually, saved_turns, spoken_turn, started, turns_of
from voicechat.realtime.client_events import ALLOWED_MEMBERS, CONTROL_PREFIX, RefusedFrame, check_client_frame
from voicechat.realtime.failures import CLOSE_POLICY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_connections_closed")]

MAX_FRAME_BYTES = 16 * 1024
MAX_REFUSED = 6


# Frames are ("text", str) or ("bytes", bytes), as a browser socket carries them.
Frame = tuple[str, str | bytes]


def as_text(value: str) -> Frame:
    return ("text", value)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
member_names = sorted({name for members in ALLOWED_MEMBERS.values() for name in members} | {"session", "response"})
event_types = [*sorted(ALLOWED_MEMBERS), "session.update", "conversation.item.delete", "transcription_session.update"]

random_text = st.text(max_size=300).map(as_text)
invalid_json = st.one_of(
    st.sampled_from(['{"type": ', '{"type": "response.create",}', "{'type': 'response.create'}", "nul", "{", ""]),
    st.text(max_size=60).map(lambda tail: '{"type": "' + tail),
).map(as_text)
not_objects = json_values.filter(lambda value: not isinstance(value, dict)).map(json.dumps).map(as_text)
unknown_type = st.builds(
    lambda kind, members: {**members, "type": kind},
    st.text(max_size=40).filter(lambda kind: kind not in ALLOWED_MEMBERS),
    st.dictionaries(st.sampled_from(member_names), json_values, max_size=3),
)
not_type = st.sampled_from([name for name in member_names if name != "type"])
missing_type = st.dictionaries(not_type, json_values, max_size=4)
wrong_typed_type = st.builds(
    lambda kind, members: {**members, "type": kind},
    json_values.filter(lambda value: not isinstance(value, str)),
    st.dictionaries(st.sampled_from(member_names), json_values, max_size=2),
)
wrong_members = st.builds(
    lambda kind, members: {**members, "type": kind},
    st.sampled_from(event_types),
    st.dictionaries(st.sampled_from(member_names), json_values, max_size=4),
)
objects = st.one_of(unknown_type, missing_type, wrong_typed_type, wrong_members).map(json.dumps).map(as_text)
huge = st.one_of(
    st.integers(MAX_FRAME_BYTES + 1, 4 * MAX_FRAME_BYTES).map(
        lambda size: json.dumps({"type": "input_audio_buffer.append", "audio": "A" * size})
    ),
    # Fewer characters than the limit, more bytes once encoded.
    st.integers(MAX_FRAME_BYTES // 2 + 1, MAX_FRAME_BYTES - 40).map(
        lambda size: json.dumps({"type": "input_audio_buffer.append", "audio": "é" * size}, ensure_ascii=False)
    ),
).map(as_text)
binary = st.one_of(st.binary(max_size=64), st.integers(1, 4 * MAX_FRAME_BYTES).map(lambda size: b"\0" * size)).map(
    lambda data: ("bytes", data)
)
valid = (
    st.one_of(
        st.binary(min_size=2, max_size=4800).map(
            lambda pcm: {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
        ),
        st.sampled_from(
            [
                {"type": "input_audio_buffer.clear"},
                {"type": "input_audio_buffer.append", "audio": "not base64!"},  # the service's to refuse
                {"type": "response.cancel", "event_id": "cancel-1"},
                {"type": "voicechat.mode", "mode": "push_to_talk"},
                {"type": "voicechat.mode", "mode": "hands_free"},
                {"type": "voicechat.talk", "action": "start"},
                {"type": "voicechat.client_info", "audio": {"sampleRate": 48000}, "userAgent": "Fuzz/1"},
            ]
        ),
        st.text(min_size=1, max_size=80)
        .filter(str.strip)
        .map(
            lambda words: {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": words}]},
            }
        ),
        st.builds(
            lambda item_id, end_ms: {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": end_ms,
            },
            st.text(min_size=1, max_size=20),
            st.integers(0, 10_000),
        ),
    )
    .map(json.dumps)
    .map(as_text)
)

frames = st.lists(
    st.one_of(random_text, invalid_json, not_objects, objects, huge, binary, valid), min_size=1, max_size=14
)


def refused(frame: Frame) -> bool:
    """Whether the consumer must refuse this frame: the rule of voicechat/realtime/client_events.py."""
    kind, data = frame
    try:
        if kind == "bytes":
            check_client_frame(None, data, max_bytes=MAX_FRAME_BYTES)
        else:
            check_client_frame(data, None, max_bytes=MAX_FRAME_BYTES)
    except RefusedFrame:
        return True
    return False


def forwardable(raw: str) -> bool:
    """A frame the service may get from the server: its own session.update, or a voice client event."""
    event = json.loads(raw)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return False
    if event["type"] == "session.update":
        return event["session"]["instructions"] == "Be brief."  # the server's configuration, not a page's
    if event["type"] not in ALLOWED_MEMBERS or event["type"].startswith(CONTROL_PREFIX):
        return False
    try:
        check_client_frame(raw, None, max_bytes=MAX_FRAME_BYTES)
    except RefusedFrame:
        return False
    return True


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log():
    handler = ErrorLog()
    # The app's, Django's and Channels' loggers, and the root for everything else (the fake's included).
    names = ("voicechat", "django", "channels", "daphne", "")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


@pytest.fixture
def fuzz_settings(settings):
    settings.REALTIME_MAX_CLIENT_FRAME_BYTES = MAX_FRAME_BYTES
    settings.REALTIME_MAX_REFUSED_FRAMES = MAX_REFUSED
    settings.REALTIME_MAX_CLIENT_EVENTS_PER_SECOND = 0  # refusals only for what the frames are, not their pace
    settings.REALTIME_MAX_SESSIONS_PER_USER = 0  # one socket per example, each closing as the next opens
    return settings


@dataclass(frozen=True)
class Cookies:
    mine: bytes
    theirs: bytes  # another user's, whose conversation goes on while the fuzzed socket is abused


@pytest.fixture
async def cookies(fuzz_settings, user, other_user) -> Cookies:
    cookie = database_sync_to_async(session_cookie)
    return Cookies(await cookie(user), await cookie(other_user))


async def opened(cookie: bytes) -> tuple[BrowserSocket, int]:
    browser = BrowserSocket(cookie)
    assert await browser.connect()
    events = await browser.until("session.updated")
    return browser, next(e["conversation_id"] for e in events if e["type"] == "voicechat.conversation")


async def send(browser: BrowserSocket, frame: Frame) -> None:
    """Any frame, the empty one included (which WebsocketCommunicator.send_to cannot send)."""
    kind, data = frame
    await browser.communicator.send_input({"type": "websocket.receive", kind: data})


async def abuse(browser: BrowserSocket, sent: list[Frame], conversation_id: int, marker: str) -> None:
    """Send the frames; then the socket answers a valid event, or has been closed for abuse."""
    for frame in sent:
        await send(browser, frame)
    expected_refusals = sum(map(refused, sent))
    hypothesis.event("closed for abuse" if expected_refusals > MAX_REFUSED else "answered after the frames")
    if expected_refusals > MAX_REFUSED:
        events = await browser.until_closed(timeout=10)
        assert browser.close_code == CLOSE_POLICY, (browser.close_code, events)
        refusals = [e for e in events if e["type"] == "error" and e["error"]["code"] == "client_event_refused"]
        assert MAX_REFUSED <= len(refusals) <= expected_refusals
        found = await conversation(conversation_id)
        assert (found.end_reason, found.ended_at is not None) == ("policy", True)
        return
    follow_up = {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": marker}]},
    }
    await browser.send(follow_up)
    events = await until_item(browser, follow_up["item"]["content"])
    # Each refused frame got its error, before the answer to the valid event that followed.
    refusals = [e for e in events if e["type"] == "error" and e["error"]["code"] == "client_event_refused"]
    assert len(refusals) == expected_refusals

    async def marker_saved():
        return [t for t in await turns_of(conversation_id) if (t.role, t.text) == ("user", marker)]

    assert await eventually(marker_saved)


async def until_item(browser: BrowserSocket, content: list) -> list[dict]:
    """Events up to the service's conversation.item.added for this content."""
    events = []
    while True:
        event = await browser.receive(timeout=10)
        assert event is not None, f"the socket closed (code {browser.close_code}) after {[e['type'] for e in events]}"
        events.append(event)
        if event["type"] == "conversation.item.added" and event["item"]["content"] == content:
            return events


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run and in CI
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sent=frames)
async def test_random_frames_never_crash_the_consumer_nor_reach_the_service(sent, fake_service, cookies, error_log):
    # Each example on sockets of its own: an example is run with the event loop stopped
    # between examples, so a socket kept across them would sit unserved meanwhile.
    browser, conversation_id = await opened(cookies.mine)
    neighbour, their_conversation_id = await opened(cookies.theirs)
    try:
        tally.add(bad_frames=sum(map(refused, sent)))
        their_turn = asyncio.create_task(spoken_turn(neighbour))
        try:
            await abuse(browser, sent, conversation_id, f"follow-up after {len(sent)} frames ({conversation_id})")
        finally:
            await their_turn
    finally:
        await browser.communicator.disconnect(timeout=5)
        await neighbour.communicator.disconnect(timeout=5)

    # Nothing but valid voice client events (and the server's own configuration) reached the service.
    assert all(forwardable(raw) for raw in fake_service.raw_received), [
        raw[:200] for raw in fake_service.raw_received if not forwardable(raw)
    ]
    # The other user's conversation went on: their turn is saved, completed.
    theirs = await saved_turns(their_conversation_id, 2)
    tally.add(turns_expected=2, turns_saved=sum(t.status == "completed" for t in theirs))
    assert [(t.role, t.status) for t in theirs] == [("user", "completed"), ("assistant", "completed")]
    assert (await conversation(their_conversation_id)).end_reason == "client_closed"
    assert not error_log.records, [f"{r.name}: {r.getMessage()}" for r in error_log.records]


async def test_a_flood_over_the_rate_is_refused_then_closed(fake_service, user, settings):
    settings.REALTIME_MAX_CLIENT_EVENTS_PER_SECOND = 5
    settings.REALTIME_MAX_REFUSED_FRAMES = 4
    browser, conversation_id = await started(user)
    clear = {"type": "input_audio_buffer.clear"}
    for _ in range(30):  # valid events, far faster than 5 a second
        await browser.send(clear)
    events = await browser.until_closed(timeout=10)
    assert browser.close_code == CLOSE_POLICY
    limited = [e for e in events if e["type"] == "error" and e["error"]["code"] == "client_rate_limited"]
    assert len(limited) == 5  # the fifth refusal within a minute is one too many
    assert events[-1]["error"]["code"] == "policy"
    # A burst of the bucket's size went through, and no refused frame.
    forwarded = sum(e["type"] == "input_audio_buffer.clear" for e in fake_service.received)
    assert 5 <= forwarded <= 30 - len(limited)
    found = await conversation(conversation_id)
    assert found.end_reason == "policy"
    tally.add(bad_frames=len(limited))
