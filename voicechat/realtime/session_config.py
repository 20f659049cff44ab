"""The `session.update` the server sends, in the shape each endpoint expects."""

import json
from dataclasses import dataclass
from enum import StrEnum


class Shape(StrEnum):
    GA = "ga"
    PREVIEW = "preview"


@dataclass(frozen=True)
class SessionSettings:
    voice: str
    instructions: str
    transcription_model: str
    vad_silence_ms: int
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300


SAMPLE_RATE = 24000


def build_session(shape: Shape, settings: SessionSettings, *, hands_free: bool = True) -> dict:
    """The `session` object of a `session.update` for this endpoint shape.

    Hands-free: the service detects turns (server VAD). Push-to-talk: no turn
    detection; the server commits the buffer when the user lets go.
    """
    turn_detection = None
    if hands_free:
        turn_detection = {
            "type": "server_vad",
            "threshold": settings.vad_threshold,
            "prefix_padding_ms": settings.vad_prefix_padding_ms,
            "silence_duration_ms": settings.vad_silence_ms,
            "create_response": True,
        }
    if shape is Shape.PREVIEW:
        return {
            # Azure's preview needs "text" beside "audio"; audio replies then
            # come with their transcript.
            "modalities": ["text", "audio"],
            "voice": settings.voice,
            "instructions": settings.instructions,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": {"model": settings.transcription_model},
            "turn_detection": turn_detection,
        }
    audio_format = {"type": "audio/pcm", "rate": SAMPLE_RATE}
    return {
        "type": "realtime",
        # GA allows one output modality; audio comes with its transcript.
        "output_modalities": ["audio"],
        "instructions": settings.instructions,
        "audio": {
            "input": {
                "format": audio_format,
                "transcription": {"model": settings.transcription_model},
                "turn_detection": turn_detection and {**turn_detection, "interrupt_response": True},
            },
            "output": {"format": audio_format, "voice": settings.voice},
        },
    }


def session_update(shape: Shape, settings: SessionSettings, *, hands_free: bool = True) -> str:
    """The whole `session.update` client event, as the text frame to send."""
    return json.dumps({"type": "session.update", "session": build_session(shape, settings, hands_free=hands_free)})
