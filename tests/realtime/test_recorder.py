"""The recorder, fed with lists of events in both shapes."""

import itertools

from voicechat.realtime.events import canonical
from voicechat.realtime.recorder import Recorder, ServiceError, SessionStarted, TranscriptionUsage, TurnRecord, Usage


def record(events: list[dict]) -> list:
    clock = itertools.count(1000)
    recorder = Recorder(clock=lambda: float(next(clock)))
    out = []
    for event in events:
        recorder.receive(dict(event, type=canonical(event["type"])))
        out.extend(recorder.records())
    return out


def turns(records: list) -> dict[str, TurnRecord]:
    """The last record of each item: what the database ends up holding."""
    return {r.item_id: r for r in records if isinstance(r, TurnRecord)}


def user_item(item_id, previous=None, created="conversation.item.added"):
    return [
        {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous},
        {
            "type": created,
            "previous_item_id": previous,
            "item": {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_audio"}]},
        },
    ]


def assistant_reply(
    item_id, previous, words, names=("conversation.item.added", "response.output_audio_transcript.done")
):
    created, transcript_done = names
    item = {"id": item_id, "type": "message", "role": "assistant", "content": []}
    return [
        {"type": "response.created", "response": {"id": "r-" + item_id}},
        {"type": "response.output_item.added", "item": item},
        {"type": created, "previous_item_id": previous, "item": item},
        {"type": "response.output_audio.delta", "item_id": item_id, "delta": "AAAA"},
        {"type": transcript_done, "item_id": item_id, "transcript": words},
        {
            "type": "response.done",
            "response": {
                "id": "r-" + item_id,
                "status": "completed",
                "output": [dict(item, content=[{"type": "output_audio", "transcript": words}])],
                "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10},
            },
        },
    ]


def transcription(item_id, text):
    return {"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id, "transcript": text}


def test_a_spoken_exchange_in_order():
    saved = turns(record([*user_item("u1"), transcription("u1", "Hi"), *assistant_reply("a1", "u1", "Hello!")]))
    assert [(t.seq, t.role, t.text, t.status) for t in saved.values()] == [
        (1, "user", "Hi", "completed"),
        (2, "assistant", "Hello!", "completed"),
    ]


def test_late_transcription_keeps_the_users_place():
    events = [*user_item("u1"), *assistant_reply("a1", "u1", "Sure."), transcription("u1", "Can you help?")]
    records = record(events)
    # The reply is saved first, as it completes; the user's turn still comes first in the conversation.
    assert [r.item_id for r in records if isinstance(r, TurnRecord)] == ["a1", "u1"]
    saved = turns(records)
    assert sorted((t.seq, t.role, t.text) for t in saved.values()) == [
        (1, "user", "Can you help?"),
        (2, "assistant", "Sure."),
    ]


def test_preview_names_are_understood():
    events = [
        *user_item("u1", created="conversation.item.created"),
        transcription("u1", "Hey"),
        *assistant_reply("a1", "u1", "Hi there", names=("conversation.item.created", "response.audio_transcript.done")),
    ]
    saved = turns(record(events))
    assert [(t.role, t.text) for t in saved.values()] == [("user", "Hey"), ("assistant", "Hi there")]


def test_text_reply():
    events = [
        *user_item("u1"),
        transcription("u1", "Type it"),
        *assistant_reply("a1", "u1", "", names=("conversation.item.created", "response.text.done")),
    ]
    events[-2] = {"type": "response.text.done", "item_id": "a1", "text": "Typed answer"}
    saved = turns(record(events))
    assert saved["a1"].text == "Typed answer"


def test_failed_transcription_is_a_failed_turn():
    events = [
        *user_item("u1"),
        {
            "type": "conversation.item.input_audio_transcription.failed",
            "item_id": "u1",
            "error": {"message": "Audio was unintelligible."},
        },
    ]
    saved = turns(record(events))
    assert (saved["u1"].status, saved["u1"].detail, saved["u1"].text) == ("failed", "Audio was unintelligible.", "")


def test_truncation_marks_the_reply_interrupted_with_what_was_heard():
    events = [
        *user_item("u1"),
        transcription("u1", "Tell me a story"),
        *assistant_reply("a1", "u1", "Once upon a time there was")[:-1],
        {"type": "conversation.item.truncated", "item_id": "a1", "content_index": 0, "audio_end_ms": 1250},
        {
            "type": "response.done",
            "response": {"status": "cancelled", "status_details": {"reason": "turn_detected"}, "output": []},
        },
    ]
    reply = turns(record(events))["a1"]
    assert (reply.status, reply.heard_ms, reply.text) == ("interrupted", 1250, "Once upon a time there was")


def test_truncation_after_the_reply_finished_still_counts():
    events = [
        *user_item("u1"),
        transcription("u1", "Go on"),
        *assistant_reply("a1", "u1", "A long answer"),
        {"type": "conversation.item.truncated", "item_id": "a1", "content_index": 0, "audio_end_ms": 400},
    ]
    reply = turns(record(events))["a1"]
    assert (reply.status, reply.heard_ms) == ("interrupted", 400)


def test_cancelled_response_without_truncation_is_interrupted():
    item = {"id": "a1", "type": "message", "role": "assistant", "content": []}
    events = [
        *user_item("u1"),
        {"type": "response.output_item.added", "item": item},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "Well, "},
        {
            "type": "response.done",
            "response": {"status": "cancelled", "status_details": {"reason": "turn_detected"}, "output": [item]},
        },
    ]
    reply = turns(record(events))["a1"]
    assert (reply.status, reply.text, reply.heard_ms) == ("interrupted", "Well, ", None)
    assert "turn_detected" in reply.detail


def test_usage_of_every_response():
    events = [
        *user_item("u1"),
        *assistant_reply("a1", "u1", "One"),
        *user_item("u2", "a1"),
        *assistant_reply("a2", "u2", "Two"),
    ]
    usages = [r for r in record(events) if isinstance(r, Usage)]
    # Counts the service did not split by modality are text.
    counts = {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}
    split = {"input_text_tokens": 20, "output_text_tokens": 10}
    assert usages == [
        Usage(response_id="r-a1", item_id="a1", item_ids=("a1",), **counts, **split),
        Usage(response_id="r-a2", item_id="a2", item_ids=("a2",), **counts, **split),
    ]


def response_done(usage: dict, output: list | None = None, response_id: str = "resp_1") -> dict:
    return {
        "type": "response.done",
        "response": {"id": response_id, "status": "completed", "output": output or [], "usage": usage},
    }


def only_usage(events: list[dict]) -> list:
    return [r for r in record(events) if isinstance(r, Usage | TranscriptionUsage)]


def test_usage_by_modality_with_cached_details():
    usage = {
        "total_tokens": 1530,
        "input_tokens": 1200,
        "output_tokens": 330,
        "input_token_details": {
            "text_tokens": 400,
            "audio_tokens": 800,
            "image_tokens": 0,
            "cached_tokens": 700,
            "cached_tokens_details": {"text_tokens": 300, "audio_tokens": 400, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 30, "audio_tokens": 300},
    }
    assert only_usage([response_done(usage)]) == [
        Usage(
            response_id="resp_1",
            input_tokens=1200,
            output_tokens=330,
            total_tokens=1530,
            input_text_tokens=400,
            input_audio_tokens=800,
            cached_text_tokens=300,
            cached_audio_tokens=400,
            output_text_tokens=30,
            output_audio_tokens=300,
        )
    ]


def test_a_bare_cached_total_is_text_first_then_audio():
    details = {"text_tokens": 100, "audio_tokens": 500, "cached_tokens": 64}
    usage = {"total_tokens": 600, "input_tokens": 600, "output_tokens": 0, "input_token_details": details}
    [within] = only_usage([response_done(usage)])
    assert (within.cached_text_tokens, within.cached_audio_tokens) == (64, 0)
    # More cached than there is text: the rest can only have been audio.
    details = dict(details, cached_tokens=164)
    [beyond] = only_usage([response_done(dict(usage, input_token_details=details))])
    assert (beyond.cached_text_tokens, beyond.cached_audio_tokens) == (100, 64)


def test_usage_names_the_assistant_message_among_the_outputs():
    output = [
        {"id": "fc1", "type": "function_call", "name": "lookup"},
        {"id": "a1", "type": "message", "role": "assistant", "content": []},
    ]
    usage = {"total_tokens": 3, "input_tokens": 2, "output_tokens": 1}
    [with_message] = only_usage([response_done(usage, output)])
    assert (with_message.item_id, with_message.item_ids) == ("a1", ("fc1", "a1"))
    # A response cancelled before any output still counts its input.
    [without] = only_usage([response_done(usage, [], response_id="resp_2")])
    assert (without.response_id, without.item_id, without.item_ids, without.input_tokens) == ("resp_2", "", (), 2)


def test_malformed_counts_are_zero():
    usage = {"total_tokens": "many", "input_tokens": -4, "output_tokens": None, "input_token_details": "x"}
    [usage_record] = only_usage([response_done(usage)])
    assert usage_record == Usage(response_id="resp_1")


def test_transcription_usage_in_tokens():
    event = transcription("u1", "Hi")
    event["usage"] = {
        "type": "tokens",
        "input_tokens": 50,
        "output_tokens": 6,
        "total_tokens": 56,
        "input_token_details": {"text_tokens": 8, "audio_tokens": 42},
    }
    records = record([*user_item("u1"), event])
    assert turns(records)["u1"].text == "Hi"
    assert only_usage([*user_item("u1"), event]) == [
        TranscriptionUsage(
            item_id="u1",
            kind="tokens",
            input_tokens=50,
            output_tokens=6,
            total_tokens=56,
            input_text_tokens=8,
            input_audio_tokens=42,
        )
    ]


def test_transcription_tokens_without_details_are_audio():
    event = dict(transcription("u1", "Hi"), usage={"type": "tokens", "input_tokens": 40, "output_tokens": 3})
    [usage] = only_usage([*user_item("u1"), event])
    assert (usage.input_text_tokens, usage.input_audio_tokens, usage.output_tokens) == (0, 40, 3)


def test_transcription_usage_in_seconds():
    event = dict(transcription("u1", "Hi"), usage={"type": "duration", "seconds": 2.4})
    assert only_usage([*user_item("u1"), event]) == [TranscriptionUsage(item_id="u1", kind="duration", seconds=2.4)]


def test_transcription_without_usage_or_of_unknown_kind_costs_nothing_recorded():
    plain = transcription("u1", "Hi")
    odd = dict(transcription("u2", "Ho"), usage={"type": "credits", "amount": 3})
    assert only_usage([*user_item("u1"), plain, *user_item("u2", "u1"), odd]) == []


def test_typed_user_message_is_complete_when_created():
    events = [
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {
                "id": "t1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello"}],
            },
        }
    ]
    assert turns(record(events))["t1"].text == "Hello"


def test_finish_keeps_turns_that_were_still_waiting():
    item = {"id": "a1", "type": "message", "role": "assistant", "content": []}
    recorder = Recorder(clock=lambda: 1.0)
    for event in [
        *user_item("u1"),
        {"type": "response.output_item.added", "item": item},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "Half a sen"},
    ]:
        recorder.receive(event)
    recorder.records()
    recorder.finish("connection lost")
    saved = turns(recorder.records())
    assert (saved["u1"].status, saved["a1"].status, saved["a1"].text) == ("failed", "interrupted", "Half a sen")
    assert "connection lost" in saved["u1"].detail


def test_session_and_fatal_errors():
    records = record(
        [
            {"type": "session.created", "session": {"id": "sess_1"}},
            {"type": "error", "error": {"code": "input_audio_buffer_commit_empty", "message": "empty"}},
            {"type": "error", "error": {"code": "session_expired", "message": "Too long"}},
        ]
    )
    assert records == [SessionStarted("sess_1"), ServiceError("session_expired", "Too long")]


def test_other_items_and_unknown_events_are_ignored():
    records = record(
        [
            {"type": "conversation.item.added", "item": {"id": "f1", "type": "function_call"}},
            {"type": "rate_limits.updated", "rate_limits": []},
            {"type": "response.output_audio_transcript.done", "transcript": "no item id"},
        ]
    )
    assert records == []
