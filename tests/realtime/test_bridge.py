"""The bridge between a browser and the service, fed with frames."""

import json

from voicechat.realtime.bridge import HELD_BYTES, HELD_FULL, Bridge
from voicechat.realtime.recorder import TurnRecord
from voicechat.realtime.session_config import SessionSettings, Shape

SETTINGS = SessionSettings(voice="alloy", instructions="Be brief.", transcription_model="whisper-1", vad_silence_ms=200)


def bridge(shape=Shape.GA, max_client_frame_bytes: int = 4096) -> Bridge:
    """A bridge whose service session is open, its configuration sent."""
    b = Bridge(shape=shape, session=SETTINGS, max_client_frame_bytes=max_client_frame_bytes, clock=lambda: 1.0)
    b.start()
    b.data_to_send_upstream()
    return b


def test_the_server_configures_the_session_first():
    b = Bridge(shape=Shape.PREVIEW, session=SETTINGS, max_client_frame_bytes=4096, clock=lambda: 1.0)
    b.receive_client('{"type": "input_audio_buffer.commit"}')
    assert b.data_to_send_upstream() == []  # nothing before the configuration
    b.start()
    configuration, commit = b.data_to_send_upstream()
    assert json.loads(configuration)["session"]["modalities"] == ["text", "audio"]
    assert commit == '{"type": "input_audio_buffer.commit"}'


def test_client_frames_are_forwarded_as_they_are_or_answered_with_an_error():
    b = bridge()
    frame = '{"type":  "input_audio_buffer.commit"}'
    b.receive_client(frame)
    b.receive_client('{"type": "session.update"}')
    assert b.data_to_send_upstream() == [frame]
    (error,) = b.data_to_send_client()
    assert json.loads(error)["error"]["code"] == "client_event_refused"
    assert b.refused_frames == 1
    assert b.data_to_send_upstream() == [] and b.data_to_send_client() == []


def test_service_frames_are_relayed_and_recorded():
    b = bridge()
    frames = [
        json.dumps({"type": "response.output_audio.delta", "item_id": "a", "delta": "AAAA"}),
        json.dumps(
            {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u", "transcript": "Hi"}
        ),
    ]
    for frame in frames:
        b.receive_upstream(frame)
    assert b.data_to_send_client() == frames
    (turn,) = b.records()
    assert isinstance(turn, TurnRecord) and (turn.item_id, turn.text) == ("u", "Hi")


def test_finish_records_waiting_turns():
    b = bridge()
    b.receive_upstream(json.dumps({"type": "input_audio_buffer.committed", "item_id": "u", "previous_item_id": None}))
    assert b.records() == []
    b.finish("user disconnected")
    (turn,) = b.records()
    assert turn.status == "failed" and "user disconnected" in turn.detail


def test_modes_and_push_to_talk():
    b = bridge()
    b.receive_client('{"type": "voicechat.mode", "mode": "push_to_talk"}')
    (update,) = b.data_to_send_upstream()
    assert json.loads(update)["session"]["audio"]["input"]["turn_detection"] is None
    assert json.loads(b.data_to_send_client()[0]) == {"type": "voicechat.mode", "mode": "push_to_talk"}
    b.receive_upstream(json.dumps({"type": "response.created", "response": {"id": "r"}}))
    b.receive_client('{"type": "voicechat.talk", "action": "start"}')
    b.receive_client('{"type": "input_audio_buffer.append", "audio": "AAAA"}')
    b.receive_client('{"type": "voicechat.talk", "action": "stop"}')
    sent = [json.loads(f)["type"] for f in b.data_to_send_upstream()]
    assert sent == [
        "response.cancel",
        "input_audio_buffer.clear",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]
    # A new session starts in the mode the user chose.
    b.start()
    assert json.loads(b.data_to_send_upstream()[0])["session"]["audio"]["input"]["turn_detection"] is None


def test_session_expiry_is_not_shown_as_an_error():
    b = bridge()
    expired = json.dumps({"type": "error", "error": {"code": "session_expired", "message": "Too long"}})
    other = json.dumps({"type": "error", "error": {"code": "invalid_value", "message": "Nope"}})
    b.receive_upstream(expired)
    b.receive_upstream(other)
    assert b.data_to_send_client() == [other]
    assert [r.code for r in b.records()] == ["session_expired"]


def test_a_new_session_gets_the_conversation_so_far():
    b = Bridge(
        shape=Shape.PREVIEW,
        session=SETTINGS,
        max_client_frame_bytes=4096,
        clock=lambda: 1.0,
        earlier_turns=[(1, "user", "Hi"), (2, "assistant", "Hello")],
    )
    b.receive_upstream(json.dumps({"type": "input_audio_buffer.committed", "item_id": "u3"}))
    b.receive_upstream(
        json.dumps(
            {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u3", "transcript": "Bye"}
        )
    )
    (turn,) = b.records()
    assert turn.seq == 3  # numbering goes on after the saved turns
    b.start()
    frames = [json.loads(f) for f in b.data_to_send_upstream()]
    assert frames[0]["type"] == "session.update"
    assert [(f["item"]["id"], f["item"]["content"][0]) for f in frames[1:]] == [
        ("vchist_1", {"type": "input_text", "text": "Hi"}),
        ("vchist_2", {"type": "text", "text": "Hello"}),
        ("vchist_3", {"type": "input_text", "text": "Bye"}),
    ]
    # Their echo is not recorded again.
    b.receive_upstream(
        json.dumps(
            {
                "type": "conversation.item.created",
                "item": {
                    "id": "vchist_1",
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hi"}],
                },
            }
        )
    )
    assert b.records() == []


def test_what_the_page_sends_between_two_sessions_follows_the_new_sessions_history():
    b = bridge()
    b.finish("session expired")
    sent_meanwhile = [
        '{"type": "input_audio_buffer.append", "audio": "AAAA"}',
        '{"type": "input_audio_buffer.append", "audio": "BBBB"}',
        '{"type": "input_audio_buffer.commit"}',
    ]
    for frame in sent_meanwhile:
        b.receive_client(frame)
    assert b.data_to_send_upstream() == []  # no session to send them to
    assert b.data_to_send_client() == []
    b.start()
    frames = b.data_to_send_upstream()
    assert json.loads(frames[0])["type"] == "session.update"
    assert frames[1:] == sent_meanwhile
    b.receive_client('{"type": "input_audio_buffer.clear"}')
    assert b.data_to_send_upstream() == ['{"type": "input_audio_buffer.clear"}']  # as they come again


def test_push_to_talk_held_across_two_sessions():
    b = bridge()
    b.receive_client('{"type": "voicechat.mode", "mode": "push_to_talk"}')
    b.data_to_send_upstream()
    b.data_to_send_client()
    b.receive_upstream(json.dumps({"type": "response.created", "response": {"id": "r"}}))
    b.finish("connection lost")
    b.receive_client('{"type": "voicechat.talk", "action": "start"}')  # the reply went with the old session
    b.receive_client('{"type": "input_audio_buffer.append", "audio": "AAAA"}')
    b.start()
    b.receive_client('{"type": "voicechat.talk", "action": "stop"}')
    frames = [json.loads(f) for f in b.data_to_send_upstream()]
    assert frames[0]["session"]["audio"]["input"]["turn_detection"] is None
    assert [f["type"] for f in frames[1:]] == [
        "input_audio_buffer.clear",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]


def test_what_is_held_is_bounded_and_the_page_told_once():
    b = bridge(max_client_frame_bytes=HELD_BYTES)
    b.finish("session expired")
    chunk = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 40_000})
    fitting = HELD_BYTES // len(chunk)
    for _ in range(fitting + 5):
        b.receive_client(chunk)
    notices = [json.loads(f) for f in b.data_to_send_client()]
    assert notices == [{"type": "voicechat.notice", "message": HELD_FULL}]
    b.start()
    assert b.data_to_send_upstream()[1:] == [chunk] * fitting
    b.finish("session expired")  # a new reconnection holds as much again
    b.receive_client(chunk)
    b.start()
    assert b.data_to_send_upstream()[1:] == [chunk]
