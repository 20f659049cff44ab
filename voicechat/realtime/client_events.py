"""Which browser frames may reach the service, and the error event for those that may not."""

import json
from typing import Any

# Each accepted client event type, with the members it may carry.
ALLOWED_MEMBERS: dict[str, frozenset[str]] = {
    "input_audio_buffer.append": frozenset({"type", "event_id", "audio"}),
    "input_audio_buffer.commit": frozenset({"type", "event_id"}),
    "input_audio_buffer.clear": frozenset({"type", "event_id"}),
    "conversation.item.create": frozenset({"type", "event_id", "item"}),
    "conversation.item.truncate": frozenset({"type", "event_id", "item_id", "content_index", "audio_end_ms"}),
    "response.create": frozenset({"type", "event_id"}),
    "response.cancel": frozenset({"type", "event_id", "response_id"}),
    # The app's own events, handled by the server and never forwarded.
    "voicechat.mode": frozenset({"type", "mode"}),
    "voicechat.talk": frozenset({"type", "action"}),
    "voicechat.client_info": frozenset({"type", "audio", "userAgent"}),
}
CONTROL_PREFIX = "voicechat."
# An audio chunk exactly as the page's JSON.stringify writes it, most of what a page sends.
APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
APPEND_TAIL = '"}'
BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
MODES = ("hands_free", "push_to_talk")

ERROR_CODE = "client_event_refused"
RATE_LIMIT_CODE = "client_rate_limited"


class RefusedFrame(Exception):
    """A browser frame that is not forwarded; its message tells the user why."""

    def __init__(self, message: str, event_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.event_id = event_id


def check_client_frame(text: str | None, binary: bytes | None, *, max_bytes: int) -> dict[str, Any]:
    """The event, if a voice client may send it; otherwise raise RefusedFrame."""
    if text is None:
        size = len(binary or b"")
        raise RefusedFrame(f"Binary frames ({size} bytes) are not accepted: send JSON text frames.")
    # Length in characters bounds the work before encoding; UTF-8 size is what counts.
    encoded = None if len(text) > max_bytes else text.encode()
    if encoded is None or len(encoded) > max_bytes:
        raise RefusedFrame(f"The frame is larger than the limit of {max_bytes} bytes: send audio in smaller chunks.")
    audio = _page_audio(text, encoded)
    if audio is not None:
        return {"type": "input_audio_buffer.append", "audio": audio}
    try:
        event = json.loads(text)
    except ValueError:
        raise RefusedFrame("The frame is not valid JSON.") from None
    if not isinstance(event, dict):
        raise RefusedFrame('The frame must be a JSON object with a "type".')
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise RefusedFrame('The event has no "type".', event_id)
    if event_type == "session.update":
        raise RefusedFrame("session.update is not accepted: the server sets the session configuration.", event_id)
    allowed = ALLOWED_MEMBERS.get(event_type)
    if allowed is None:
        raise RefusedFrame(f"Events of type {event_type!r} are not accepted from the browser.", event_id)
    extra = sorted(set(event) - allowed)
    if extra:
        raise RefusedFrame(f"{event_type} may not carry {', '.join(extra)}.", event_id)
    if "event_id" in event and event_id is None:
        raise RefusedFrame("event_id must be a string.")
    _check_members(event_type, event, event_id)
    return event


def _page_audio(text: str, encoded: bytes) -> str | None:
    """The audio of a chunk in the page's own compact form, read without json.loads.

    json.loads copies a chunk's few kilobytes of base64 character by character: 13 µs a
    chunk on the benchmark machine, four times this check (bench/relay.py). Only base64
    characters between the quotes make such a frame valid JSON with that one string
    member; any other frame is parsed.
    """
    if not (text.startswith(APPEND_HEAD) and text.endswith(APPEND_TAIL)):
        return None
    # Head and tail are ASCII: their lengths are the same in characters and in bytes.
    start, end = len(APPEND_HEAD), -len(APPEND_TAIL)
    if len(text) <= start - end or encoded[start:end].translate(None, BASE64_ALPHABET):
        return None
    return text[start:end]


def _check_members(event_type: str, event: dict[str, Any], event_id: str | None) -> None:
    if event_type == "input_audio_buffer.append":
        if not isinstance(event.get("audio"), str) or not event["audio"]:
            raise RefusedFrame('input_audio_buffer.append needs "audio": base64 PCM16 audio.', event_id)
    elif event_type == "conversation.item.create":
        _check_user_message(event.get("item"), event_id)
    elif event_type == "conversation.item.truncate":
        if not isinstance(event.get("item_id"), str) or not event["item_id"]:
            raise RefusedFrame('conversation.item.truncate needs the "item_id" of the reply.', event_id)
        if not _is_count(event.get("content_index")):
            raise RefusedFrame('conversation.item.truncate needs "content_index" (0 or more).', event_id)
        if not _is_count(event.get("audio_end_ms")):
            raise RefusedFrame('conversation.item.truncate needs "audio_end_ms" (0 or more).', event_id)
    elif event_type == "response.cancel" and "response_id" in event and not isinstance(event["response_id"], str):
        raise RefusedFrame("response_id must be a string.", event_id)
    elif event_type == "voicechat.mode" and event.get("mode") not in MODES:
        raise RefusedFrame(f'voicechat.mode needs "mode": one of {", ".join(MODES)}.')
    elif event_type == "voicechat.talk" and event.get("action") not in ("start", "stop"):
        raise RefusedFrame('voicechat.talk needs "action": start or stop.')
    elif event_type == "voicechat.client_info":
        _check_client_info(event)


def _check_user_message(item: Any, event_id: str | None) -> None:
    refusal = RefusedFrame(
        "conversation.item.create accepts only a user text message: "
        '{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "..."}]}.',
        event_id,
    )
    if not isinstance(item, dict) or set(item) - {"type", "role", "content"}:
        raise refusal
    if item.get("type") != "message" or item.get("role") != "user":
        raise refusal
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise refusal
    for part in content:
        if not isinstance(part, dict) or set(part) != {"type", "text"}:
            raise refusal
        if part["type"] != "input_text" or not isinstance(part["text"], str) or not part["text"].strip():
            raise refusal


def _check_client_info(event: dict[str, Any]) -> None:
    audio = event.get("audio", {})
    scalars = (bool, int, float, str, type(None))
    if not isinstance(audio, dict) or len(audio) > 20:
        raise RefusedFrame('voicechat.client_info needs "audio": an object of the microphone\'s settings.')
    for key, value in audio.items():
        if not isinstance(value, scalars) or len(str(key)) > 64 or len(str(value)) > 200:
            raise RefusedFrame("voicechat.client_info: each audio setting must be a short plain value.")
    if not isinstance(event.get("userAgent", ""), str) or len(event.get("userAgent", "")) > 500:
        raise RefusedFrame("voicechat.client_info: userAgent must be a string of at most 500 characters.")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def error_event(message: str, *, code: str = ERROR_CODE, event_id: str | None = None) -> str:
    """An `error` event in the service's own shape, so the page handles both alike."""
    error = {"type": "invalid_request_error", "code": code, "message": message, "param": None, "event_id": event_id}
    return json.dumps({"type": "error", "event_id": None, "error": error})
