"""One local voice session, speaking the GA realtime protocol in-process.

Audio in: 24 kHz PCM16 from `input_audio_buffer.append`, resampled to 16 kHz for
turn detection and recognition. Audio out: synthesized sentence by sentence and
streamed as `response.output_audio.delta`, so the first words play while later
ones are still being made. Recognition and synthesis run in worker threads: the
event loop, and every other session, keeps going meanwhile.
"""

import asyncio
import base64
import binascii
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import soxr

from voicechat.local_engine.language_model import LanguageModelError, stream_reply
from voicechat.local_engine.recognition_processes import process_recognizer
from voicechat.local_engine.replies import default_reply, split_sentences
from voicechat.local_engine.settings import LocalSettings
from voicechat.local_engine.speech_to_text import Recognizer, Utterance, make_recognizer
from voicechat.local_engine.text_to_speech import OUTPUT_RATE, Synthesizer, make_synthesizer
from voicechat.local_engine.turn_detection import SpeechAudio, SpeechStarted, SpeechStopped, TurnDetector

logger = logging.getLogger(__name__)

INPUT_RATE = 24000
CHUNK_MS = 100  # audio delta size, as the service sends
BYTES_PER_MS = OUTPUT_RATE * 2 // 1000

# Worker threads for all sessions of the process. Finishing a turn and speaking the
# reply decide how soon the user hears an answer, so they never queue behind other
# sessions' streaming recognition (or model loading), which has threads of its own.
_THREADS = max(2, os.cpu_count() or 2)
_workers = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="local-engine")
_answering = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="local-engine-answer")
_synthesizers: dict[tuple[str, str], Synthesizer] = {}


@dataclass
class _Item:
    id: str
    role: str
    text: str = ""
    # For replies: the audio sent so far, and where each sentence ends in it.
    audio_ms: int = 0
    sentence_ends: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Response:
    id: str
    item: _Item
    task: asyncio.Task | None = None

    def where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item.id, "output_index": 0, "content_index": 0}

    def message(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }


class LocalSession:
    """Send it client events as text frames; iterate over its server events."""

    def __init__(self, settings: LocalSettings, recognizer: Recognizer, synthesizer: Synthesizer) -> None:
        self.settings = settings
        self._recognizer = recognizer
        self._synthesizer = synthesizer
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._session_id = self._new_id("sess")
        self._instructions = ""
        self._voice = "en-us"
        self._vad: TurnDetector | None = TurnDetector(silence_ms=500)
        self._create_response = True
        self._interrupt_response = True
        self._resampler = soxr.ResampleStream(INPUT_RATE, 16000, 1, dtype="int16")
        self._items: list[_Item] = []
        self._utterance_item: str | None = None
        self._heard = 0  # bytes fed into the current utterance, for an empty commit
        self._recognition: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._recognition_task = asyncio.create_task(self._recognize())
        self._response: _Response | None = None
        self._closing = False
        self.close_detail = "the local engine was closed"

    @classmethod
    async def open(cls, settings: LocalSettings) -> "LocalSession":
        loop = asyncio.get_running_loop()
        if settings.whisper_model:
            recognizer = await loop.run_in_executor(_workers, make_recognizer, settings.whisper_model)
        else:
            recognizer = await loop.run_in_executor(_workers, process_recognizer)
        key = (settings.piper_voice, "en-us")
        if key not in _synthesizers:
            _synthesizers[key] = await loop.run_in_executor(_workers, make_synthesizer, settings.piper_voice)
        session = cls(settings, recognizer, _synthesizers[key])
        session._emit("session.created", session=session._session())
        return session

    # The upstream interface

    async def send(self, frame: str) -> None:
        try:
            event = json.loads(frame)
        except ValueError:
            self._error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._error("invalid_event", "The event must be a JSON object with a type.")
            return
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"), None)
        if handler is None:
            self._error("invalid_event", f"Unknown event type {event['type']!r}.", event.get("event_id"))
            return
        await handler(event)

    async def __aiter__(self) -> AsyncIterator[str]:
        while (frame := await self._outbox.get()) is not None:
            yield frame

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        tasks = [self._recognition_task]
        if self._response is not None and self._response.task is not None:
            tasks.append(self._response.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outbox.put_nowait(None)

    # Output

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_local{next(self._ids):05d}"

    def _emit(self, event_type: str, **members: Any) -> None:
        if not self._closing:
            self._outbox.put_nowait(json.dumps({"type": event_type, "event_id": self._new_id("event"), **members}))

    def _error(self, code: str, message: str, event_id: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": None, "event_id": event_id}
        self._emit("error", error=error)

    def _session(self) -> dict[str, Any]:
        turn_detection = None
        if self._vad is not None:
            turn_detection = {
                "type": "server_vad",
                "silence_duration_ms": self._vad.silence_ms,
                "prefix_padding_ms": self._vad.prefix_padding_ms,
                "create_response": self._create_response,
                "interrupt_response": self._interrupt_response,
            }
        audio_format = {"type": "audio/pcm", "rate": OUTPUT_RATE}
        return {
            "type": "realtime",
            "id": self._session_id,
            "object": "realtime.session",
            "model": self.settings.label,
            "output_modalities": ["audio"],
            "instructions": self._instructions,
            "audio": {
                "input": {"format": audio_format, "turn_detection": turn_detection, "transcription": None},
                "output": {"format": audio_format, "voice": self._voice},
            },
        }

    # Client events

    async def _on_session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            self._error("invalid_value", "session.update needs a session object.", event.get("event_id"))
            return
        if isinstance(session.get("instructions"), str):
            self._instructions = session["instructions"]
        audio = session.get("audio") or {}
        audio_in = audio.get("input") or {}
        if "turn_detection" in audio_in:
            detection = audio_in["turn_detection"]
            if detection is None:
                self._vad = None
            else:
                self._vad = TurnDetector(
                    silence_ms=int(detection.get("silence_duration_ms", 500)),
                    prefix_padding_ms=int(detection.get("prefix_padding_ms", 300)),
                    aggressiveness=self.settings.vad_aggressiveness,
                )
                self._create_response = bool(detection.get("create_response", True))
                self._interrupt_response = bool(detection.get("interrupt_response", True))
        voice = (audio.get("output") or {}).get("voice")
        if isinstance(voice, str):
            self._voice = voice  # kept for session.updated; the local voice is the configured one
        self._emit("session.updated", session=self._session())

    async def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            audio = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            self._error("invalid_value", "audio must be base64 PCM16.", event.get("event_id"))
            return
        audio = audio[: len(audio) - len(audio) % 2]
        pcm16k = self._resampler.resample_chunk(np.frombuffer(audio, dtype=np.int16)).tobytes()
        if self._vad is None:
            # Push-to-talk: everything appended until the commit is the user's turn.
            if self._utterance_item is None:
                self._begin_utterance()
            self._feed(pcm16k)
            return
        for turn in self._vad.feed(pcm16k):
            if isinstance(turn, SpeechStarted):
                self._speech_started(turn)
            elif isinstance(turn, SpeechAudio):
                self._feed(turn.audio)
            elif isinstance(turn, SpeechStopped):
                self._emit("input_audio_buffer.speech_stopped", audio_end_ms=turn.end_ms, item_id=self._utterance_item)
                self._commit(create_response=self._create_response)

    async def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if self._utterance_item is None or self._heard == 0:
            self._error("input_audio_buffer_commit_empty", "The input audio buffer is empty.", event.get("event_id"))
            return
        if self._vad is not None:
            self._vad.reset()
        self._commit(create_response=False)

    async def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        if self._vad is not None:
            self._vad.reset()
        if self._utterance_item is not None:
            self._recognition.put_nowait(("discard", None))
            self._utterance_item = None
            self._heard = 0
        self._emit("input_audio_buffer.cleared")

    async def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        texts = [p.get("text", "") for p in item.get("content") or () if isinstance(p, dict)]
        role = item.get("role")
        if item.get("type") != "message" or role not in ("user", "assistant", "system") or not any(texts):
            self._error(
                "invalid_value", "Only text messages can be added to a local conversation.", event.get("event_id")
            )
            return
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        if item_id is not None and any(i.id == item_id for i in self._items):
            self._error("invalid_value", f"Item {item_id!r} exists already.", event.get("event_id"))
            return
        added = self._add_item(role, " ".join(texts), item_id=item_id)
        part = "input_text" if role != "assistant" else "output_text"
        self._announce(added, [{"type": part, "text": added.text}])

    async def _on_response_create(self, event: dict[str, Any]) -> None:
        if self._response is not None:
            self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
                event.get("event_id"),
            )
            return
        self._start_response()

    async def _on_response_cancel(self, event: dict[str, Any]) -> None:
        if self._response is None:
            self._error("response_cancel_not_active", "There is no active response to cancel.", event.get("event_id"))
            return
        self._cancel_response("client_cancelled")

    async def _on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item = next((i for i in self._items if i.id == event.get("item_id")), None)
        end_ms = event.get("audio_end_ms")
        if item is None or item.role != "assistant":
            self._error("invalid_value", f"No assistant audio item {event.get('item_id')!r}.", event.get("event_id"))
            return
        if not isinstance(end_ms, int) or end_ms < 0 or end_ms > item.audio_ms:
            self._error(
                "invalid_value",
                f"audio_end_ms must be between 0 and the item's audio length ({item.audio_ms} ms).",
                event.get("event_id"),
            )
            return
        if self._response is not None and self._response.item is item:
            self._cancel_response("client_cancelled")
        # Like the service: what the user did not hear leaves the conversation's memory.
        item.text = _heard_text(item, end_ms)
        item.audio_ms = end_ms
        self._emit(
            "conversation.item.truncated",
            item_id=item.id,
            content_index=event.get("content_index", 0),
            audio_end_ms=end_ms,
        )

    # Turns

    def _speech_started(self, turn: SpeechStarted) -> None:
        self._begin_utterance()
        self._emit("input_audio_buffer.speech_started", audio_start_ms=turn.start_ms, item_id=self._utterance_item)
        if self._response is not None and self._interrupt_response:
            self._cancel_response("turn_detected")
        self._feed(turn.audio)

    def _begin_utterance(self) -> None:
        self._utterance_item = self._new_id("item")
        self._heard = 0
        self._recognition.put_nowait(("start", None))

    def _feed(self, pcm16k: bytes) -> None:
        if pcm16k:
            self._heard += len(pcm16k)
            self._recognition.put_nowait(("feed", pcm16k))

    def _commit(self, *, create_response: bool) -> None:
        item = self._add_item("user", "", item_id=self._utterance_item)
        self._emit("input_audio_buffer.committed", previous_item_id=self._previous_id(item), item_id=item.id)
        self._announce(item, [{"type": "input_audio", "transcript": None}])
        self._recognition.put_nowait(("finish", (item, create_response)))
        self._utterance_item = None
        self._heard = 0

    async def _recognize(self) -> None:
        """Feed recognition in order, off the event loop, batching what queued up meanwhile."""
        loop = asyncio.get_running_loop()
        utterance: Utterance | None = None
        held: tuple[str, Any] | None = None
        while True:
            op, payload = held or await self._recognition.get()
            held = None
            if op == "start":
                # A recognizer in a worker process is reached through a pipe another session may hold.
                utterance = await loop.run_in_executor(_workers, self._recognizer.start)
            elif op == "discard":
                utterance = None
            elif op == "feed":
                chunks = [payload]
                while not self._recognition.empty():
                    held = self._recognition.get_nowait()
                    if held[0] != "feed":
                        break
                    chunks.append(held[1])
                    held = None
                if utterance is not None:
                    await loop.run_in_executor(_workers, utterance.feed, b"".join(chunks))
            elif op == "finish":
                item, create_response = payload
                transcript = ""
                if utterance is not None:
                    try:
                        transcript = await loop.run_in_executor(_answering, utterance.finish)
                    except Exception as error:
                        logger.exception("Local recognition failed")
                        self._emit(
                            "conversation.item.input_audio_transcription.failed",
                            item_id=item.id,
                            content_index=0,
                            error={"type": "transcription_error", "code": "recognition_failed", "message": str(error)},
                        )
                        utterance = None
                        continue
                utterance = None
                item.text = transcript
                self._emit(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item.id,
                    content_index=0,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": 0},
                )
                if create_response and self._response is None:
                    self._start_response()

    # Responses

    def _start_response(self) -> None:
        """Announce a response now, so its events keep their order whenever it is cancelled."""
        item = self._add_item("assistant", "")
        response = _Response(id=self._new_id("resp"), item=item)
        self._response = response
        self._emit(
            "response.created",
            response={"id": response.id, "object": "realtime.response", "status": "in_progress", "output": []},
        )
        self._emit("response.output_item.added", response_id=response.id, output_index=0, item=response.message())
        self._emit("conversation.item.added", previous_item_id=self._previous_id(item), item=response.message())
        self._emit("response.content_part.added", part={"type": "output_audio", "transcript": ""}, **response.where())
        response.task = asyncio.create_task(self._respond(response))

    def _cancel_response(self, reason: str) -> None:
        response = self._response
        if response is not None:
            self._finish_response(response, "cancelled", {"type": "cancelled", "reason": reason})
            response.task.cancel()  # it is finished already; the work in progress is dropped

    async def _respond(self, response: _Response) -> None:
        item, where = response.item, response.where()
        loop = asyncio.get_running_loop()
        try:
            async for sentence in self._reply_sentences():
                pcm = await loop.run_in_executor(_answering, self._synthesizer.synthesize, sentence)
                self._emit("response.output_audio_transcript.delta", delta=sentence + " ", **where)
                for offset in range(0, len(pcm), CHUNK_MS * BYTES_PER_MS):
                    chunk = pcm[offset : offset + CHUNK_MS * BYTES_PER_MS]
                    self._emit("response.output_audio.delta", delta=base64.b64encode(chunk).decode(), **where)
                    item.audio_ms += len(chunk) // BYTES_PER_MS
                item.sentence_ends.append((item.audio_ms, sentence))
                item.text = " ".join(s for _, s in item.sentence_ends)
        except LanguageModelError as error:
            error_details = {
                "type": "server_error",
                "code": "language_model_error",
                "message": f"The reply failed: {error}.",
            }
            self._finish_response(response, "failed", {"type": "failed", "error": error_details})
            return
        self._finish_response(response, "completed", None)

    def _finish_response(self, response: _Response, status: str, details: dict[str, Any] | None) -> None:
        self._response = None
        item, where = response.item, response.where()
        transcript = item.text
        self._emit("response.output_audio.done", **where)
        self._emit("response.output_audio_transcript.done", transcript=transcript, **where)
        part = {"type": "output_audio", "transcript": transcript}
        self._emit("response.content_part.done", part=part, **where)
        done = dict(response.message(), status="completed" if status == "completed" else "incomplete", content=[part])
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=done)
        self._emit("conversation.item.done", previous_item_id=self._previous_id(item), item=done)
        words_in = sum(len(i.text.split()) for i in self._items if i is not item)
        words_out = len(transcript.split())
        # The local engine counts words, not tokens: a rough, honest stand-in.
        usage = {
            "total_tokens": words_in + words_out,
            "input_tokens": words_in,
            "output_tokens": words_out,
            "input_token_details": {"text_tokens": words_in, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words_out, "audio_tokens": 0},
        }
        self._emit(
            "response.done",
            response={
                "id": response.id,
                "object": "realtime.response",
                "status": status,
                "status_details": details,
                "output": [done],
                "usage": usage,
            },
        )

    async def _reply_sentences(self) -> AsyncIterator[str]:
        if not self.settings.llm_url:
            heard = next((i.text for i in reversed(self._items) if i.role == "user"), "")
            sentences, rest = split_sentences(default_reply(heard, datetime.now().astimezone()))
            for sentence in [*sentences, rest]:
                if sentence.strip():
                    yield sentence.strip()
            return
        messages = [{"role": "system", "content": self._instructions}] if self._instructions else []
        messages += [{"role": i.role, "content": i.text} for i in self._items if i.text]
        pending = ""
        async for text in stream_reply(self.settings.llm_url, messages, model=self.settings.llm_model):
            sentences, pending = split_sentences(pending + text)
            for sentence in sentences:
                yield sentence
        if pending.strip():
            yield pending.strip()

    # Items

    def _add_item(self, role: str, text: str, item_id: str | None = None) -> _Item:
        item = _Item(id=item_id or self._new_id("item"), role=role, text=text)
        self._items.append(item)
        return item

    def _previous_id(self, item: _Item) -> str | None:
        index = self._items.index(item)
        return self._items[index - 1].id if index > 0 else None

    def _announce(self, item: _Item, content: list[dict[str, Any]]) -> None:
        previous = self._previous_id(item)
        message = {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "role": item.role,
            "status": "completed",
            "content": content,
        }
        self._emit("conversation.item.added", previous_item_id=previous, item=message)
        self._emit("conversation.item.done", previous_item_id=previous, item=message)


def _heard_text(item: _Item, end_ms: int) -> str:
    """The sentences fully heard, and the heard share of the words of the one cut off."""
    heard, start = [], 0
    for sentence_end, sentence in item.sentence_ends:
        if sentence_end <= end_ms:
            heard.append(sentence)
        else:
            words = sentence.split()
            share = (end_ms - start) / max(1, sentence_end - start)
            heard.extend(words[: int(len(words) * share)])
            break
        start = sentence_end
    return " ".join(heard)
