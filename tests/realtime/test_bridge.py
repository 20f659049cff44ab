"""The bridge between a browser and the service, fed with frames."""

import json

from voicechat.realtime.bridge import Bridge
from voicechat.realtime.recorder import TurnRecord
from voicechat.realtime.session_config import SessionSettings, Shape

SETTINGS = SessionSettings(voice="alloy", instructions="Be brief.", transcription_model="whisper-1", vad_silence_ms=200)


def bridge(shape=Shape.GA) -> Bridge:
    return Bridge(shape=shape, session=SETTINGS, max_client_frame_bytes=4096, clock=lambda: 1.0)


def test_the_server_configures_the_session_first():
    b = bridge(Shape.PREVIEW)
    b.start()
    (frame,) = b.data_to_send_upstream()
    assert json.loads(frame)["session"]["modalities"] == ["text", "audio"]


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
