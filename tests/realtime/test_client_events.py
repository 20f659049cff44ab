"""Which browser frames reach the service."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicechat.realtime.client_events import RefusedFrame, check_client_frame, error_event

ACCEPTED = [
    {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e1"},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
    },
    {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1500},
    {"type": "response.create"},
    {"type": "response.cancel"},
    {"type": "response.cancel", "response_id": "resp_1"},
]


@pytest.mark.parametrize("event", ACCEPTED, ids=lambda e: e["type"])
def test_voice_client_events_are_accepted(event):
    check_client_frame(json.dumps(event), None, max_bytes=1024)


REFUSED = [
    ({"type": "session.update", "session": {}}, "server sets the session"),
    ({"type": "conversation.item.retrieve", "item_id": "x"}, "not accepted from the browser"),
    ({"type": "input_audio_buffer.append"}, 'needs "audio"'),
    ({"type": "input_audio_buffer.append", "audio": ""}, 'needs "audio"'),
    ({"type": "input_audio_buffer.commit", "extra": 1}, "may not carry extra"),
    ({"type": "response.create", "response": {"modalities": ["text"]}}, "may not carry response"),
    (
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]},
        },
        "user text",
    ),
    ({"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "x"}}, "user text"),
    (
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "  "}]},
        },
        "user text",
    ),
    ({"type": "conversation.item.create", "previous_item_id": "root", "item": {}}, "may not carry previous_item_id"),
    ({"type": "conversation.item.truncate", "item_id": "a", "content_index": 0, "audio_end_ms": True}, "audio_end_ms"),
    ({"type": "conversation.item.truncate", "content_index": 0, "audio_end_ms": 5}, "item_id"),
    ({"type": "response.cancel", "response_id": 5}, "response_id"),
    ({"type": "input_audio_buffer.commit", "event_id": 5}, "event_id must be a string"),
    ({"type": 5}, 'no "type"'),
]


@pytest.mark.parametrize(("event", "message"), REFUSED)
def test_other_events_are_refused_with_a_reason(event, message):
    with pytest.raises(RefusedFrame, match=message.replace("(", r"\(")):
        check_client_frame(json.dumps(event), None, max_bytes=1024)


def test_binary_invalid_and_oversized_frames():
    with pytest.raises(RefusedFrame, match="Binary frames"):
        check_client_frame(None, b"abc", max_bytes=1024)
    with pytest.raises(RefusedFrame, match="not valid JSON"):
        check_client_frame("{", None, max_bytes=1024)
    with pytest.raises(RefusedFrame, match="JSON object"):
        check_client_frame('"x"', None, max_bytes=1024)
    with pytest.raises(RefusedFrame, match="larger than the limit of 100 bytes"):
        check_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 200}), None, max_bytes=100)
    # Multi-byte characters count in bytes, not characters.
    with pytest.raises(RefusedFrame, match="larger than the limit"):
        check_client_frame(json.dumps({"type": "x", "y": "é" * 60}, ensure_ascii=False), None, max_bytes=100)


def test_refusal_keeps_the_event_id():
    with pytest.raises(RefusedFrame) as refused:
        check_client_frame('{"type": "session.update", "event_id": "abc"}', None, max_bytes=1024)
    assert refused.value.event_id == "abc"


def test_error_event_has_the_service_shape():
    event = json.loads(error_event("Nope.", event_id="abc"))
    assert event["type"] == "error"
    assert event["error"] == {
        "type": "invalid_request_error",
        "code": "client_event_refused",
        "message": "Nope.",
        "param": None,
        "event_id": "abc",
    }


@pytest.mark.parametrize(
    "event",
    [
        {"type": "voicechat.mode", "mode": "push_to_talk"},
        {"type": "voicechat.mode", "mode": "hands_free"},
        {"type": "voicechat.talk", "action": "start"},
        {"type": "voicechat.talk", "action": "stop"},
        {"type": "voicechat.client_info", "audio": {"echoCancellation": True, "sampleRate": 48000}, "userAgent": "X"},
    ],
    ids=lambda e: f"{e['type']}-{e.get('mode') or e.get('action') or 'info'}",
)
def test_the_apps_own_events_are_accepted(event):
    assert check_client_frame(json.dumps(event), None, max_bytes=1024) == event


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "voicechat.mode", "mode": "telepathy"}, "one of hands_free, push_to_talk"),
        ({"type": "voicechat.talk", "action": "shout"}, "start or stop"),
        ({"type": "voicechat.client_info", "audio": {"nested": {"a": 1}}}, "short plain value"),
        ({"type": "voicechat.client_info", "audio": [1]}, "an object"),
        ({"type": "voicechat.client_info", "audio": {}, "userAgent": "x" * 501}, "at most 500"),
    ],
)
def test_the_apps_own_events_are_checked(event, message):
    with pytest.raises(RefusedFrame, match=message):
        check_client_frame(json.dumps(event), None, max_bytes=4096)


PAGE_APPEND = '{"type":"input_audio_buffer.append","audio":"%s"}'


def test_the_pages_audio_chunks_are_read_as_json_would_read_them():
    chunk = PAGE_APPEND % "AAECAwQF/+8="
    assert check_client_frame(chunk, None, max_bytes=1024) == json.loads(chunk)


@pytest.mark.parametrize(
    ("frame", "audio"),
    [
        (PAGE_APPEND % r"ab\"c", 'ab"c'),  # an escape: not base64, so parsed
        (PAGE_APPEND % "h\u00e9llo", "h\u00e9llo"),
        (PAGE_APPEND % "AAAA" + " ", "AAAA"),
    ],
)
def test_chunks_in_any_other_form_are_parsed(frame, audio):
    assert check_client_frame(frame, None, max_bytes=1024)["audio"] == audio


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (PAGE_APPEND % "", '"audio": base64'),
        (PAGE_APPEND % "AA\nAA", "not valid JSON"),  # a raw control character in a JSON string
        (PAGE_APPEND % 'AA"AA', "not valid JSON"),
        (PAGE_APPEND % "AAAA" + "}", "not valid JSON"),
    ],
)
def test_chunks_that_look_like_the_pages_but_are_not_valid_are_refused(frame, message):
    with pytest.raises(RefusedFrame, match=message):
        check_client_frame(frame, None, max_bytes=1024)


@given(st.text(max_size=40))
def test_a_chunk_is_accepted_with_the_same_audio_or_refused_whatever_its_characters(audio):
    frame = PAGE_APPEND % audio
    try:
        expected = json.loads(frame)
    except ValueError:
        expected = None
    try:
        event = check_client_frame(frame, None, max_bytes=1024)
    except RefusedFrame:
        event = None
    if expected is not None and expected["audio"]:
        assert event == expected
    else:
        assert event is None
