"""Which service frames are read, and under which name."""

import json

from voicechat.realtime.events import canonical, parse_recorded


def test_preview_names_map_to_ga():
    assert canonical("response.audio_transcript.done") == "response.output_audio_transcript.done"
    assert canonical("conversation.item.created") == "conversation.item.added"
    assert canonical("response.done") == "response.done"


def test_audio_deltas_are_not_decoded():
    for name in ("response.output_audio.delta", "response.audio.delta"):
        # Invalid JSON after the type: it would raise if it were parsed.
        assert parse_recorded(f'{{"type":"{name}","delta":"AAAA') is None


def test_recorded_events_are_parsed_under_their_canonical_name():
    event = parse_recorded(json.dumps({"type": "response.audio_transcript.done", "item_id": "a", "transcript": "Hi"}))
    assert event == {"type": "response.output_audio_transcript.done", "item_id": "a", "transcript": "Hi"}


def test_nested_type_first_does_not_hide_the_event():
    frame = json.dumps({"item": {"type": "message", "id": "i"}, "type": "conversation.item.created"})
    assert parse_recorded(frame)["type"] == "conversation.item.added"


def test_unrecorded_and_malformed_frames_are_left_alone():
    assert parse_recorded(json.dumps({"type": "rate_limits.updated"})) is None
    assert parse_recorded("garbage") is None
    assert parse_recorded("[1]") is None
    assert parse_recorded('{"type": 3}') is None
