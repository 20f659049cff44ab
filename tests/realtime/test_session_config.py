"""The server's session configuration for each endpoint shape."""

import json

from voicechat.realtime.session_config import SessionSettings, Shape, build_session, session_update

SETTINGS = SessionSettings(voice="verse", instructions="Be brief.", transcription_model="whisper-1", vad_silence_ms=350)


def test_ga_shape_is_nested():
    session = build_session(Shape.GA, SETTINGS)
    assert session["type"] == "realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["instructions"] == "Be brief."
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    assert audio_in["format"] == audio_out["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["transcription"] == {"model": "whisper-1"}
    assert audio_in["turn_detection"]["type"] == "server_vad"
    assert audio_in["turn_detection"]["silence_duration_ms"] == 350
    assert audio_out["voice"] == "verse"
    # Fields of the preview shape are refused by GA.
    assert not {"modalities", "voice", "input_audio_format", "temperature"} & set(session)


def test_preview_shape_is_flat():
    session = build_session(Shape.PREVIEW, SETTINGS)
    assert session["modalities"] == ["text", "audio"]
    assert session["voice"] == "verse"
    assert session["input_audio_format"] == session["output_audio_format"] == "pcm16"
    assert session["input_audio_transcription"] == {"model": "whisper-1"}
    assert session["turn_detection"]["silence_duration_ms"] == 350
    # GA's session.type is an unknown_parameter on the preview endpoint.
    assert "type" not in session and "audio" not in session


def test_session_update_frame():
    frame = json.loads(session_update(Shape.GA, SETTINGS))
    assert frame == {"type": "session.update", "session": build_session(Shape.GA, SETTINGS)}
