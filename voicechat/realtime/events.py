"""Event names of both protocol shapes, mapped to one vocabulary (the GA names)."""

import json
import re
from typing import Any

# Preview ("beta") names that the GA protocol renamed.
PREVIEW_TO_GA = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

# The events the bridge and recorder read, in GA names. Everything else is relayed unread.
RECORDED = frozenset(
    {
        "session.created",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.output_item.added",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_text.delta",
        "response.output_text.done",
        "conversation.item.truncated",
        "response.created",
        "response.done",
        "error",
    }
)

# Audio deltas are most of the traffic; they are never decoded.
UNREAD = frozenset({"response.audio.delta", "response.output_audio.delta"})

# The first "type" member of a frame. It may belong to a nested object, but a
# nested type ("message", "input_audio", ...) is never the name of an audio
# delta, so a frame is skipped only when it really is one.
_TYPE = re.compile(r'"type"\s*:\s*"([^"]{1,100})"')
_SNIFF_CHARS = 256


def canonical(event_type: str) -> str:
    """The GA name of an event of either shape."""
    return PREVIEW_TO_GA.get(event_type, event_type)


def parse_recorded(frame: str) -> dict[str, Any] | None:
    """The event as a dict with its canonical type if the recorder reads it, else None."""
    match = _TYPE.search(frame, 0, _SNIFF_CHARS)
    if match is not None and match.group(1) in UNREAD:
        return None
    try:
        event = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    event_type = canonical(event["type"])
    if event_type not in RECORDED:
        return None
    event["type"] = event_type
    return event
