"""A realtime service for tests: a real `websockets` server on 127.0.0.1.

It checks the `api-key` header (or a Microsoft Entra ID token it was told of, in
`Authorization: Bearer`) and the URL form like Azure does; on OpenAI's path `/v1/realtime`
it accepts the socket, then checks the bearer key and the model like OpenAI does (an `error`
event and a close 3000 or 4000). It speaks the GA or the preview event shape according to the
URL, and can be told to refuse the
handshake, hang, send a user's transcription late or not at all, interrupt a
reply, expire the session or drop the connection; and, in the middle of a reply,
stall, send garbage, close the connection or reset it.
"""

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
import math
import struct
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

SAMPLE_RATE = 24000
AZURE_GA_PATH = "/openai/v1/realtime"
AZURE_PREVIEW_PATH = "/openai/realtime"
OPENAI_PATH = "/v1/realtime"

logger = logging.getLogger(__name__)

GA_NAMES = {
    "audio_delta": "response.output_audio.delta",
    "audio_done": "response.output_audio.done",
    "transcript_delta": "response.output_audio_transcript.delta",
    "transcript_done": "response.output_audio_transcript.done",
    "item_created": "conversation.item.added",
    "audio_part": "output_audio",
}
PREVIEW_NAMES = {
    "audio_delta": "response.audio.delta",
    "audio_done": "response.audio.done",
    "transcript_delta": "response.audio_transcript.delta",
    "transcript_done": "response.audio_transcript.done",
    "item_created": "conversation.item.created",
    "audio_part": "audio",
}


# What `garbage_after_ms` sends in the middle of a reply: no turn may come of any of it.
GARBAGE: tuple[str | bytes, ...] = (
    "this is not JSON {",
    '[1, 2, "three"]',
    '"a JSON string"',
    "42",
    "null",
    '{"no_type": true}',
    '{"type": 7, "item_id": "item_9999"}',
    '{"type": "response.made_up_event", "event_id": "event_9999", "delta": "not words"}',
    '{"type": "conversation.unknown_thing", "item": {"id": "item_9998", "role": "user"}}',
    b"\x00\x01binary\xff",
)


def tone(ms: int, frequency: float = 440.0) -> bytes:
    """PCM16 24 kHz mono sine, quiet enough to be pleasant in a browser test."""
    count = SAMPLE_RATE * ms // 1000
    return struct.pack(
        f"<{count}h", *(int(6000 * math.sin(2 * math.pi * frequency * n / SAMPLE_RATE)) for n in range(count))
    )


@dataclass
class Script:
    """What the fake does; tests change it before or during a session."""

    transcript: str = "Hello there, how are you?"
    reply: str = "I am fine, thank you for asking."
    reply_ms: int = 600
    chunk_ms: int = 100
    chunk_delay: float = 0.0  # seconds between audio chunks, for replies that take time
    late_transcript: bool = False  # the user's transcription comes after response.done
    fail_transcription: bool = False
    auto_turn_after_ms: int | None = None  # run a turn once this much audio has been appended
    auto_turn_limit: int = 1  # how many turns audio alone may start in a session
    barge_in_after_ms: int | None = None  # report speech_started this far into a reply and cancel it
    commit_responds: bool = True  # False: a commit only adds the user's item; response.create asks for the reply
    expire_after_turns: int | None = None
    drop_after_turns: int | None = None
    # Faults in the middle of every reply, this far into its audio (see FakeSession.response).
    stall_after_ms: int | None = None  # stop sending...
    stall_seconds: float | None = None  # ...for this long, or until `service.release_stall()` when None
    garbage_after_ms: int | None = None  # send every frame of GARBAGE, then go on
    close_after_ms: int | None = None  # close the connection cleanly with code 1011
    reset_after_ms: int | None = None  # reset the TCP connection (no close frame)
    usage: dict[str, Any] = field(
        default_factory=lambda: {
            "total_tokens": 120,
            "input_tokens": 80,
            "output_tokens": 40,
            "input_token_details": {"text_tokens": 20, "audio_tokens": 60, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
        }
    )


class FakeSession:
    """One upstream connection, in one event shape."""

    def __init__(self, service: "FakeRealtimeService", connection: ServerConnection, shape: str) -> None:
        self.service = service
        self.connection = connection
        self.shape = shape
        self.names = GA_NAMES if shape == "ga" else PREVIEW_NAMES
        self.ids = service.ids  # unique across sessions, as the service's ids are
        self.last_item_id: str | None = None
        self.audio_bytes = 0
        self.audio_since_turn = 0
        self.turns = 0
        self.auto_turns = 0
        self.item_audio_ms: dict[str, int] = {}
        self.active: asyncio.Task | None = None
        self.cancel_reason: str | None = None
        self.received: list[dict[str, Any]] = []  # the client events of this connection only
        # (role, item_id, text) of each turn the service finished, once the frame that says so is sent:
        # the user's transcription, a typed message, or a reply whose response.done says "completed".
        self.completed: list[tuple[str, str, str]] = []
        self.aborted = False  # a reset has begun: nothing more is sent
        self.reset_done = asyncio.Event()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):04d}"

    async def emit(self, event_type: str, **members: Any) -> None:
        if self.aborted:
            raise Cut  # a reset connection sends nothing more (the transport would drop it silently)
        frame = json.dumps({"type": event_type, "event_id": self.new_id("event"), **members})
        self.service.sent.append(frame)
        await self.connection.send(frame)
        self.note_completed(event_type, members)

    def note_completed(self, event_type: str, members: dict[str, Any]) -> None:
        finished: list[tuple[str, str, str]] = []
        if event_type == "conversation.item.input_audio_transcription.completed":
            finished.append(("user", members["item_id"], members["transcript"]))
        elif event_type == "response.done" and members["response"]["status"] == "completed":
            for item in members["response"]["output"]:
                finished.append(("assistant", item["id"], item["content"][0]["transcript"]))
        self.finished(*finished)

    def finished(self, *turns: tuple[str, str, str]) -> None:
        self.completed.extend(turns)
        self.service.completed.extend(turns)

    async def error(self, code: str, message: str, event_id: str | None = None) -> None:
        await self.emit(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": event_id,
            },
        )

    async def run(self) -> None:
        """Answer the client's events until the connection ends, however it ends."""
        with contextlib.suppress(Cut, ConnectionClosed):
            await self.serve()
        if self.aborted:  # returning would close the connection cleanly before the reset
            await self.reset_done.wait()

    async def serve(self) -> None:
        refusal = self.service.openai_refusal(self.connection.request)
        if refusal is not None:
            code, message, close_code = refusal
            await self.error(code, message)
            await self.connection.close(close_code, f"invalid_request_error.{code}")
            return
        session_id = self.new_id("sess")
        await self.emit("session.created", session={"id": session_id, "object": "realtime.session"})
        async for frame in self.connection:
            if isinstance(frame, bytes):
                await self.error("invalid_event", "Binary frames are not supported.")
                continue
            self.service.raw_received.append(frame)
            event = json.loads(frame)
            self.service.received.append(event)
            self.received.append(event)
            await self.handle(event)

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        event_id = event.get("event_id")
        if kind == "session.update":
            session = event.get("session", {})
            if self.shape == "ga" and session.get("type") != "realtime":
                await self.error("missing_required_parameter", "Missing required parameter: 'session.type'.", event_id)
            elif self.shape == "preview" and "type" in session:
                await self.error("unknown_parameter", "Unknown parameter: 'session.type'.", event_id)
            else:
                self.service.sessions.append(session)
                await self.emit("session.updated", session=session)
        elif kind == "input_audio_buffer.append":
            try:
                audio = base64.b64decode(event["audio"], validate=True)
            except binascii.Error:
                await self.error("invalid_value", "Invalid 'audio': not base64-encoded audio bytes.", event_id)
                return
            size = len(audio)
            self.audio_bytes += size
            self.audio_since_turn += size
            self.service.audio += audio
            threshold = self.service.script.auto_turn_after_ms
            enough = threshold is not None and self.audio_since_turn >= threshold * SAMPLE_RATE * 2 // 1000
            idle = self.active is None or self.active.done()
            if enough and idle and self.auto_turns < self.service.script.auto_turn_limit:
                self.auto_turns += 1
                self.audio_since_turn = 0
                self.start(self.spoken_turn())
        elif kind == "input_audio_buffer.commit":
            if self.audio_since_turn == 0:
                await self.error("input_audio_buffer_commit_empty", "Buffer is empty.", event_id)
            elif not self.service.script.commit_responds:
                self.audio_since_turn = 0
                await self.user_audio_item(vad=False)
            else:
                self.audio_since_turn = 0
                self.start(self.spoken_turn(vad=False))
        elif kind == "conversation.item.create":
            typed = "id" not in event["item"]  # the app's history items come with ids of its own
            item = dict(event["item"], status="completed")
            item.setdefault("id", self.new_id("item"))
            previous, self.last_item_id = self.last_item_id, item["id"]
            await self.emit(self.names["item_created"], previous_item_id=previous, item=item)
            if typed and item.get("role") == "user":
                self.finished(("user", item["id"], "\n".join(part["text"] for part in item["content"])))
        elif kind == "response.create":
            if self.active is not None and not self.active.done():
                await self.error("conversation_already_has_active_response", "A response is active.", event_id)
            else:
                self.start(self.response())
        elif kind == "response.cancel":
            if self.active is None or self.active.done():
                await self.error("response_cancel_not_active", "No active response.", event_id)
            else:
                self.cancel_reason = "client_cancelled"
        elif kind == "conversation.item.truncate":
            item_id, end_ms = event["item_id"], event["audio_end_ms"]
            if item_id not in self.item_audio_ms:
                await self.error("invalid_value", f"Item {item_id} is not an assistant audio item.", event_id)
            elif end_ms > self.item_audio_ms[item_id]:
                await self.error("invalid_value", "audio_end_ms is longer than the audio.", event_id)
            else:
                if self.active is not None and not self.active.done():
                    self.cancel_reason = "client_cancelled"
                await self.emit(
                    "conversation.item.truncated",
                    item_id=item_id,
                    content_index=event["content_index"],
                    audio_end_ms=end_ms,
                )
        elif kind == "input_audio_buffer.clear":
            self.audio_since_turn = 0
            await self.emit("input_audio_buffer.cleared")
        else:
            await self.error("invalid_event", f"Unknown event type {kind!r}.", event_id)

    def start(self, work) -> None:
        self.active = asyncio.create_task(work)
        self.active.add_done_callback(self.finished_reply)

    @staticmethod
    def finished_reply(task: asyncio.Task) -> None:
        """A reply cut short by a fault or by the connection closing just stops; any other failure is told."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, Cut | ConnectionClosed):
            logger.error("A reply of the fake service failed", exc_info=error)

    async def reset(self) -> None:
        """Reset the TCP connection (no close frame), wherever the session is.

        First a ping, whose pong says the app has read every frame sent before it:
        a turn the session counts as completed has reached the app, as in a real
        reset, which loses only what is still on its way.
        """
        self.service.faults.append("reset")
        self.aborted = True
        if self.active is not None and self.active is not asyncio.current_task():
            self.active.cancel()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            pong = await self.connection.ping()
            await asyncio.wait_for(pong, 5)
        self.connection.transport.abort()
        self.reset_done.set()

    async def fault(self, heard_ms: int, done: set[str]) -> None:
        """The script's mid-reply faults, each once per reply, once the reply's audio reaches its point."""
        script = self.service.script

        def due(name: str, at_ms: int | None) -> bool:
            if at_ms is None or heard_ms < at_ms or name in done:
                return False
            done.add(name)
            return True

        if due("stall", script.stall_after_ms):
            self.service.faults.append("stall")
            await self.service.stall(script.stall_seconds)
        if due("garbage", script.garbage_after_ms):
            self.service.faults.append("garbage")
            for frame in GARBAGE:
                await self.connection.send(frame)
        if due("close", script.close_after_ms):
            self.service.faults.append("close")
            await self.connection.close(1011, "internal error")
            raise Cut
        if due("reset", script.reset_after_ms):
            await self.reset()
            raise Cut

    async def spoken_turn(self, vad: bool = True) -> None:
        await self.user_audio_item(vad)
        await self.response()
        if self.service.script.late_transcript:
            await self.transcription(self.last_user_item)
        await self.after_turn()

    async def user_audio_item(self, vad: bool) -> None:
        """The user's audio becomes an item (and, unless late, its transcription)."""
        script = self.service.script
        user_id = self.last_user_item = self.new_id("item")
        if vad:
            await self.emit("input_audio_buffer.speech_started", audio_start_ms=0, item_id=user_id)
            await self.emit("input_audio_buffer.speech_stopped", audio_end_ms=1000, item_id=user_id)
        previous, self.last_item_id = self.last_item_id, user_id
        await self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=user_id)
        item = {
            "id": user_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.emit(self.names["item_created"], previous_item_id=previous, item=item)
        if not script.late_transcript:
            await self.transcription(user_id)

    async def transcription(self, item_id: str) -> None:
        script = self.service.script
        if script.fail_transcription:
            await self.emit(
                "conversation.item.input_audio_transcription.failed",
                item_id=item_id,
                content_index=0,
                error={
                    "type": "transcription_error",
                    "code": "audio_unintelligible",
                    "message": "Audio was unintelligible.",
                },
            )
        else:
            await self.emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=script.transcript,
            )

    async def response(self) -> None:
        script = self.service.script
        self.cancel_reason = None
        response_id, item_id = self.new_id("resp"), self.new_id("item")
        await self.emit("response.created", response={"id": response_id, "status": "in_progress", "output": []})
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await self.emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
        previous, self.last_item_id = self.last_item_id, item_id
        await self.emit(self.names["item_created"], previous_item_id=previous, item=item)
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        audio = tone(script.reply_ms)
        chunk = SAMPLE_RATE * 2 * script.chunk_ms // 1000
        words = script.reply.split(" ")
        chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)]
        said: list[str] = []
        self.item_audio_ms[item_id] = 0
        faults: set[str] = set()
        for index, piece in enumerate(chunks):
            await self.fault(self.item_audio_ms[item_id], faults)
            if self.cancel_reason is not None:
                break
            if script.barge_in_after_ms is not None and self.item_audio_ms[item_id] >= script.barge_in_after_ms:
                await self.emit("input_audio_buffer.speech_started", audio_start_ms=0, item_id=self.new_id("item"))
                self.cancel_reason = "turn_detected"
                break
            await self.emit(self.names["audio_delta"], delta=base64.b64encode(piece).decode(), **where)
            self.item_audio_ms[item_id] += len(piece) * 1000 // (SAMPLE_RATE * 2)
            share = words[len(said) : (index + 1) * len(words) // len(chunks)]
            if share:
                said.extend(share)
                await self.emit(self.names["transcript_delta"], delta=" ".join(share) + " ", **where)
            if script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
        transcript = " ".join(said)
        await self.emit(self.names["audio_done"], **where)
        await self.emit(self.names["transcript_done"], transcript=transcript, **where)
        done_item = dict(
            item,
            status="completed" if self.cancel_reason is None else "incomplete",
            content=[{"type": self.names["audio_part"], "transcript": transcript}],
        )
        await self.emit("response.output_item.done", response_id=response_id, output_index=0, item=done_item)
        status, details = "completed", None
        if self.cancel_reason is not None:
            status, details = "cancelled", {"type": "cancelled", "reason": self.cancel_reason}
        await self.emit(
            "response.done",
            response={
                "id": response_id,
                "status": status,
                "status_details": details,
                "output": [done_item],
                "usage": script.usage,
            },
        )

    async def after_turn(self) -> None:
        script = self.service.script
        self.turns += 1
        if script.expire_after_turns is not None and self.turns >= script.expire_after_turns:
            await self.error("session_expired", "Your session hit the maximum duration of 30 minutes.")
            await self.connection.close(1001, "session expired")
        elif script.drop_after_turns is not None and self.turns >= script.drop_after_turns:
            await self.reset()


def bearer(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer` header."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


class Cut(Exception):
    """The session's connection was closed or reset in the middle of a reply."""


class FakeRealtimeService:
    """Start with `async with FakeRealtimeService() as service:`; point the app at `service.endpoint`."""

    def __init__(self, *, api_key: str = "test-key", deployment: str = "gpt-realtime") -> None:
        self.api_key = api_key
        self.deployment = deployment
        self.script = Script()
        self.refuse_with: int | None = None  # answer every handshake with this HTTP status
        self.throttle_handshakes = 0  # answer this many handshakes (from now on) with throttle_status, then accept
        self.throttle_status = 429
        self.retry_after: str | None = None  # the Retry-After header of those answers
        self.hang = False  # never answer the handshake
        self.faults: list[str] = []  # each fault injected, by name, in order
        self.completed: list[tuple[str, str, str]] = []  # every session's completed turns (FakeSession.completed)
        self.ids = itertools.count(1)
        self.stalled = asyncio.Event()  # set while a reply is stalled
        self.received: list[dict[str, Any]] = []
        self.raw_received: list[str] = []
        self.sent: list[str] = []
        self.sessions: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[Headers] = []
        self.entra_tokens: list[str] = []  # Entra ID tokens accepted (tests share the token server's list)
        self.bearers: list[str] = []  # every `Authorization: Bearer` token received, in order
        self.audio = bytearray()  # every appended PCM16 sample, from all sessions
        self.connections: list[FakeSession] = []
        self.closed = asyncio.Event()
        self._server: Server | None = None
        self._release = asyncio.Event()
        self._unstall = asyncio.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "FakeRealtimeService":
        self._server = await serve(self._session, "127.0.0.1", 0, process_request=self._check, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        self._unstall.set()
        self._server.close()
        await self._server.wait_closed()

    def _reject(self, status: int, text: str) -> Response:
        return Response(status, text, Headers({"Content-Type": "text/plain"}), text.encode())

    async def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.paths.append(request.path)
        self.headers.append(request.headers)
        token = bearer(request.headers)
        if token is not None:
            self.bearers.append(token)
        if self.hang:
            await self._release.wait()
            return self._reject(503, "Going away")
        if self.refuse_with is not None:
            return self._reject(self.refuse_with, "Refused by the test")
        if self.throttle_handshakes > 0:
            self.throttle_handshakes -= 1
            self.faults.append(f"handshake {self.throttle_status}")
            response = self._reject(self.throttle_status, "Too many requests")
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if url.path == OPENAI_PATH:
            return None  # OpenAI checks the key and the model once the socket is open
        if "api-key" in request.headers:
            if request.headers["api-key"] != self.api_key:
                return self._reject(401, "Access denied due to invalid subscription key")
        elif bearer(request.headers) not in self.entra_tokens:
            return self._reject(401, "Unauthorized. Access token is missing, invalid or expired.")
        if url.path == AZURE_GA_PATH:
            if "api-version" in query:
                return self._reject(401, "api-version is not accepted here")
            deployment = query.get("model", [""])[0]
        elif url.path == AZURE_PREVIEW_PATH:
            if not query.get("api-version", [""])[0].endswith("-preview"):
                return self._reject(404, "Resource not found")
            deployment = query.get("deployment", [""])[0]
        else:
            return self._reject(404, "Resource not found")
        if deployment != self.deployment:
            return self._reject(404, "DeploymentNotFound")
        return None

    def openai_refusal(self, request: Request) -> tuple[str, str, int] | None:
        """How OpenAI refuses a session on its path: (error code, message, close code), or None."""
        url = urlsplit(request.path)
        if url.path != OPENAI_PATH:
            return None
        key = bearer(request.headers) or ""
        if key != self.api_key:
            # OpenAI's message quotes the ends of the key it was given.
            return "invalid_api_key", f"Incorrect API key provided: {key[:3]}***{key[-4:]}.", 3000
        model = parse_qs(url.query).get("model", [""])[0]
        if model != self.deployment:
            return "model_not_found", f"The model '{model}' does not exist or you do not have access to it.", 4000
        return None

    async def _session(self, connection: ServerConnection) -> None:
        path = urlsplit(connection.request.path).path
        shape = "ga" if path in (AZURE_GA_PATH, OPENAI_PATH) else "preview"
        session = FakeSession(self, connection, shape)
        self.connections.append(session)
        try:
            await session.run()
        finally:
            if session.active is not None:
                session.active.cancel()
            self.closed.set()

    async def stall(self, seconds: float | None) -> None:
        """Send nothing for this long, or until release_stall() when None."""
        self._unstall.clear()
        self.stalled.set()
        try:
            if seconds is None:
                await self._unstall.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._unstall.wait(), seconds)
        finally:
            self.stalled.clear()

    def release_stall(self) -> None:
        self._unstall.set()

    def session_with_audio(self, audio: str) -> "FakeSession | None":
        """The latest open session that received this base64 audio (tests tell sessions apart by their audio)."""
        for session in reversed(self.connections):
            appended = (e.get("audio") for e in session.received if e.get("type") == "input_audio_buffer.append")
            if not session.aborted and audio in appended:
                return session
        return None

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The client events of this type received so far."""
        return [event for event in self.received if event.get("type") == event_type]


class ThreadedFakeService:
    """The fake service on its own event loop in a thread, for tests that run a real server and browser."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.service: FakeRealtimeService | None = None

    def __enter__(self) -> FakeRealtimeService:
        self._thread.start()
        self.service = self._call(FakeRealtimeService(**self._kwargs).__aenter__())
        return self.service

    def __exit__(self, *exc: object) -> None:
        self._call(self.service.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)
