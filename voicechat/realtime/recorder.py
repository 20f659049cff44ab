"""Turns out of server events, numbered in the order of the conversation.

A turn's place is fixed when its item is created (`input_audio_buffer.committed`,
`conversation.item.added`/`created`, `response.output_item.added`), which the
service announces in conversation order, each after its `previous_item_id`.
Its words may come much later: a user's transcription often arrives after the
reply it prompted is finished, and still keeps the place it was given.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voicechat.realtime.history import is_history_item

COMPLETED = "completed"
INTERRUPTED = "interrupted"
FAILED = "failed"

# Error codes after which the service ends the session.
FATAL_ERROR_CODES = frozenset(
    {"session_expired", "insufficient_quota", "billing_hard_limit_reached", "account_deactivated", "invalid_api_key"}
)


@dataclass(frozen=True)
class TurnRecord:
    """The state of one turn to save; a later record for the same item replaces it."""

    item_id: str
    seq: int
    role: str
    text: str
    status: str
    detail: str
    heard_ms: int | None
    started_at: float
    completed_at: float


@dataclass(frozen=True)
class Usage:
    """Token usage of one response (`response.done`), by modality.

    Input counts include their cached part, as the service reports them: of
    `input_text_tokens`, `cached_text_tokens` were read from the cache. When the
    service gives only a total `cached_tokens` (older shapes), it is counted as
    text, any excess over the text tokens as audio. Tokens the service did not
    split by modality at all are counted as text.
    """

    response_id: str = ""
    item_id: str = ""  # the assistant message the response produced ("" if none)
    item_ids: tuple[str, ...] = ()  # every output item of the response
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    cached_text_tokens: int = 0
    cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0


@dataclass(frozen=True)
class TranscriptionUsage:
    """What transcribing one user item cost: tokens (gpt-4o-transcribe) or seconds of audio (whisper-1).

    Token input the service did not split by modality is counted as audio, what a transcription reads.
    """

    item_id: str
    kind: str  # "tokens" or "duration"
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class SessionStarted:
    session_id: str


@dataclass(frozen=True)
class ClientInfo:
    """What the browser reported of its microphone, once per conversation."""

    audio: dict[str, Any]
    user_agent: str


@dataclass(frozen=True)
class ServiceError:
    """An `error` event after which the service ends the session."""

    code: str
    message: str


Record = TurnRecord | Usage | TranscriptionUsage | SessionStarted | ServiceError | ClientInfo


@dataclass
class _Turn:
    item_id: str
    seq: int
    role: str
    started_at: float
    text: str = ""
    status: str | None = None  # None until the turn has ended one way or another
    detail: str = ""
    heard_ms: int | None = None
    completed_at: float = 0.0
    partial: list[str] = field(default_factory=list)

    def record(self) -> TurnRecord:
        return TurnRecord(
            item_id=self.item_id,
            seq=self.seq,
            role=self.role,
            text=self.text,
            status=self.status or COMPLETED,
            detail=self.detail,
            heard_ms=self.heard_ms,
            started_at=self.started_at,
            completed_at=self.completed_at,
        )


class Recorder:
    """Feed it server events (canonical GA names); take the records it produces."""

    def __init__(self, clock: Callable[[], float] = time.time, *, last_seq: int = 0) -> None:
        self._clock = clock
        self._turns: dict[str, _Turn] = {}
        self._last_seq = last_seq  # turns saved before: a resumed conversation goes on after them
        self._records: list[Record] = []

    def records(self) -> list[Record]:
        """The records produced since the last call, oldest first."""
        records, self._records = self._records, []
        return records

    def receive(self, event: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"), None)
        if handler is not None:
            handler(event)

    def history(self) -> list[tuple[int, str, str]]:
        """(seq, role, text) of the turns that have ended, in conversation order."""
        ended = [t for t in self._turns.values() if t.status is not None]
        return [(t.seq, t.role, t.text) for t in sorted(ended, key=lambda t: t.seq)]

    def finish(self, detail: str) -> None:
        """End the turns still waiting for their words, so that none is lost."""
        for turn in self._turns.values():
            if turn.status is not None:
                continue
            if turn.role == "user":
                self._end(turn, FAILED, detail=f"No transcription arrived before the conversation ended ({detail}).")
            else:
                turn.text = "".join(turn.partial)
                self._end(turn, INTERRUPTED, detail=f"The reply was cut off ({detail}).")

    # Placing items

    def _place(self, item_id: str, role: str) -> _Turn:
        turn = self._turns.get(item_id)
        if turn is None:
            self._last_seq += 1
            turn = _Turn(item_id=item_id, seq=self._last_seq, role=role, started_at=self._clock())
            self._turns[item_id] = turn
        return turn

    def _place_item(self, item: Any) -> _Turn | None:
        if not isinstance(item, dict) or item.get("type") != "message":
            return None
        role, item_id = item.get("role"), item.get("id")
        if role not in ("user", "assistant") or not isinstance(item_id, str) or is_history_item(item_id):
            return None
        turn = self._place(item_id, role)
        if role == "user" and turn.status is None:
            # A typed message is complete when created; spoken ones wait for their transcription.
            texts = [part.get("text") for part in item.get("content") or () if part.get("type") == "input_text"]
            if texts:
                turn.text = "\n".join(t for t in texts if isinstance(t, str))
                self._end(turn, COMPLETED)
        return turn

    def _on_input_audio_buffer_committed(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("item_id"), str):
            self._place(event["item_id"], "user")

    def _on_conversation_item_added(self, event: dict[str, Any]) -> None:
        self._place_item(event.get("item"))

    _on_conversation_item_done = _on_conversation_item_added
    _on_response_output_item_added = _on_conversation_item_added

    # Words

    def _on_conversation_item_input_audio_transcription_completed(self, event: dict[str, Any]) -> None:
        turn = self._turn_for(event, "user")
        if turn is not None and turn.status is None:
            turn.text = str(event.get("transcript") or "").strip()
            self._end(turn, COMPLETED)
        usage = _transcription_usage(event.get("item_id"), event.get("usage"))
        if usage is not None:
            self._records.append(usage)

    def _on_conversation_item_input_audio_transcription_failed(self, event: dict[str, Any]) -> None:
        turn = self._turn_for(event, "user")
        if turn is not None and turn.status is None:
            error = event.get("error") or {}
            self._end(turn, FAILED, detail=str(error.get("message") or "The transcription failed."))

    def _on_response_output_audio_transcript_delta(self, event: dict[str, Any]) -> None:
        turn = self._turn_for(event, "assistant")
        if turn is not None and isinstance(event.get("delta"), str):
            turn.partial.append(event["delta"])

    _on_response_output_text_delta = _on_response_output_audio_transcript_delta

    def _on_response_output_audio_transcript_done(self, event: dict[str, Any]) -> None:
        self._assistant_words(event, event.get("transcript"))

    def _on_response_output_text_done(self, event: dict[str, Any]) -> None:
        self._assistant_words(event, event.get("text"))

    def _assistant_words(self, event: dict[str, Any], words: Any) -> None:
        turn = self._turn_for(event, "assistant")
        if turn is None:
            return
        turn.text = str(words or "")
        turn.partial.clear()
        if turn.status is None:
            self._end(turn, COMPLETED)
        else:
            self._emit(turn)

    # How replies end

    def _on_conversation_item_truncated(self, event: dict[str, Any]) -> None:
        turn = self._turns.get(event.get("item_id"))
        if turn is None or turn.role != "assistant":
            return
        heard = event.get("audio_end_ms")
        turn.heard_ms = heard if isinstance(heard, int) and heard >= 0 else None
        detail = "Interrupted by the user."
        if turn.heard_ms is not None:
            detail = f"Interrupted by the user after {turn.heard_ms} ms."
        self._end(turn, INTERRUPTED, detail=detail)

    def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        usage = response.get("usage")
        if isinstance(usage, dict):
            self._records.append(_response_usage(response, usage))
        status = response.get("status")
        details = response.get("status_details") or {}
        for item in response.get("output") or ():
            turn = self._place_item(item)
            if turn is None or turn.role != "assistant":
                continue
            if not turn.text:
                turn.text = _item_words(item) or "".join(turn.partial)
            if status == "cancelled":
                if turn.status != INTERRUPTED:
                    reason = details.get("reason") or "cancelled"
                    self._end(turn, INTERRUPTED, detail=f"The reply was cancelled ({reason}).")
            elif status == "failed":
                error = details.get("error") or {}
                self._end(turn, FAILED, detail=str(error.get("message") or error.get("code") or "The reply failed."))
            elif status == "incomplete":
                self._end(turn, turn.status or COMPLETED, detail=f"The reply is incomplete ({details.get('reason')}).")
            elif turn.status is None:
                self._end(turn, COMPLETED)

    # Session

    def _on_session_created(self, event: dict[str, Any]) -> None:
        session = event.get("session") or {}
        if isinstance(session.get("id"), str):
            self._records.append(SessionStarted(session["id"]))

    def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        code = error.get("code")
        if code in FATAL_ERROR_CODES:
            self._records.append(ServiceError(code=code, message=str(error.get("message") or "")))

    # Helpers

    def _turn_for(self, event: dict[str, Any], role: str) -> _Turn | None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or is_history_item(item_id):
            return None
        turn = self._turns.get(item_id)
        if turn is None:
            # Words for an item never announced: keep them at the end rather than lose them.
            turn = self._place(item_id, role)
        return turn if turn.role == role else None

    def _end(self, turn: _Turn, status: str, *, detail: str = "") -> None:
        turn.status = status
        if detail:
            turn.detail = detail
        turn.completed_at = self._clock()
        self._emit(turn)

    def _emit(self, turn: _Turn) -> None:
        self._records.append(turn.record())


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _item_words(item: dict[str, Any]) -> str:
    for part in item.get("content") or ():
        if isinstance(part, dict):
            words = part.get("transcript") or part.get("text")
            if isinstance(words, str) and words:
                return words
    return ""


def _details(container: dict[str, Any], key: str) -> dict[str, Any]:
    details = container.get(key)
    return details if isinstance(details, dict) else {}


def _split(total: int, details: dict[str, Any]) -> tuple[int, int]:
    """(text, audio) of a token count; what the details leave unsaid is text."""
    audio = min(_count(details.get("audio_tokens")), total)
    text = _count(details["text_tokens"]) if "text_tokens" in details else total - audio
    return text, audio


def _response_usage(response: dict[str, Any], usage: dict[str, Any]) -> Usage:
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    input_details = _details(usage, "input_token_details")
    input_text, input_audio = _split(input_tokens, input_details)
    output_text, output_audio = _split(output_tokens, _details(usage, "output_token_details"))
    cached = _details(input_details, "cached_tokens_details")
    if cached:
        cached_text, cached_audio = _count(cached.get("text_tokens")), _count(cached.get("audio_tokens"))
    else:
        # Only a total: text first (what prompt caching mostly holds), the rest audio.
        total_cached = _count(input_details.get("cached_tokens"))
        cached_text = min(total_cached, input_text)
        cached_audio = min(total_cached - cached_text, input_audio)
    items = [item for item in response.get("output") or () if isinstance(item, dict)]
    item_ids = tuple(item["id"] for item in items if isinstance(item.get("id"), str))
    message_ids = [
        item["id"]
        for item in items
        if item.get("type") == "message" and item.get("role") == "assistant" and isinstance(item.get("id"), str)
    ]
    response_id = response.get("id")
    return Usage(
        response_id=response_id if isinstance(response_id, str) else "",
        item_id=message_ids[0] if message_ids else "",
        item_ids=item_ids,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=_count(usage.get("total_tokens")),
        input_text_tokens=input_text,
        input_audio_tokens=input_audio,
        cached_text_tokens=cached_text,
        cached_audio_tokens=cached_audio,
        output_text_tokens=output_text,
        output_audio_tokens=output_audio,
    )


def _transcription_usage(item_id: Any, usage: Any) -> TranscriptionUsage | None:
    if not isinstance(item_id, str) or not isinstance(usage, dict):
        return None
    if usage.get("type") == "duration":
        seconds = usage.get("seconds")
        valid = isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0
        return TranscriptionUsage(item_id=item_id, kind="duration", seconds=float(seconds) if valid else 0.0)
    if usage.get("type") != "tokens":
        return None
    input_tokens = _count(usage.get("input_tokens"))
    details = _details(usage, "input_token_details")
    text = min(_count(details.get("text_tokens")), input_tokens)
    audio = _count(details["audio_tokens"]) if "audio_tokens" in details else input_tokens - text
    return TranscriptionUsage(
        item_id=item_id,
        kind="tokens",
        input_tokens=input_tokens,
        output_tokens=_count(usage.get("output_tokens")),
        total_tokens=_count(usage.get("total_tokens")),
        input_text_tokens=text,
        input_audio_tokens=audio,
    )
