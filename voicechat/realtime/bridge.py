"""The relay between one browser socket and one upstream session, without the sockets.

Like the protocol objects of `websockets`, it is fed what arrives on either side
and tells what to send each way and what to record; the consumer does the I/O.
"""

import json
import time
from collections.abc import Callable
from typing import Any

from voicechat.realtime.client_events import (
    CONTROL_PREFIX,
    ERROR_CODE,
    RATE_LIMIT_CODE,
    RefusedFrame,
    check_client_frame,
    error_event,
)
from voicechat.realtime.events import parse_recorded
from voicechat.realtime.history import history_items
from voicechat.realtime.rate import TokenBucket, WindowCounter
from voicechat.realtime.recorder import ClientInfo, Record, Recorder
from voicechat.realtime.session_config import SessionSettings, Shape, session_update

# Between one service session's end and the next one's start, what the page sends is held and
# sent after the new session's configuration and history: a user who goes on talking while the
# server reconnects loses nothing. At most this much, about 16 s of 24 kHz audio in base64.
HELD_BYTES = 1 << 20
HELD_FULL = "The voice service is still reconnecting: what you said after the first 16 seconds was not kept."


class Bridge:
    def __init__(
        self,
        *,
        shape: Shape,
        session: SessionSettings,
        max_client_frame_bytes: int,
        clock: Callable[[], float] = time.time,
        earlier_turns: list[tuple[int, str, str]] = (),
        max_events_per_second: float = 0,
        max_refused_per_minute: int = 0,
    ) -> None:
        self.shape = shape
        self.hands_free = True
        self.refused_frames = 0
        self._clock = clock
        # A burst of two seconds' worth lets a page catch up after a network stall.
        self._rate = TokenBucket(max_events_per_second, burst=2 * max_events_per_second, now=clock())
        self._refusals = WindowCounter(max_refused_per_minute, 60.0)
        self._session = session
        self._max_client_frame_bytes = max_client_frame_bytes
        self._earlier_turns = list(earlier_turns)
        last_seq = max((seq for seq, _, _ in self._earlier_turns), default=0)
        self._recorder = Recorder(clock, last_seq=last_seq)
        self._records: list[Record] = []
        self._to_upstream: list[str] = []
        self._to_client: list[str] = []
        self._response_active = False
        self._appended = 0  # audio frames sent since the buffer was last committed or cleared
        self._open = False  # a service session is open: frames for it go out as they come
        self._held_bytes = 0

    def start(self) -> None:
        """Queue the server's own session configuration, the conversation so far, then what the page sent meanwhile."""
        held = self._to_upstream
        self._to_upstream = [session_update(self.shape, self._session, hands_free=self.hands_free)]
        self._to_upstream.extend(history_items(self.shape, self.history()))
        self._to_upstream.extend(held)
        self._open = True
        self._held_bytes = 0

    def history(self) -> list[tuple[int, str, str]]:
        """(seq, role, text) of every ended turn of the conversation, oldest first."""
        return self._earlier_turns + self._recorder.history()

    @property
    def abusive(self) -> bool:
        """More frames were refused within a minute than the limit allows: the socket should go."""
        return self._refusals.over

    @property
    def recent_refusals(self) -> int:
        return self._refusals.count()

    def receive_client(self, text: str | None, binary: bytes | None = None) -> None:
        now = self._clock()
        if not self._rate.allow(now):
            self._refuse(
                f"Too many messages: at most {self._rate.rate:g} per second. This one was dropped.",
                code=RATE_LIMIT_CODE,
                now=now,
            )
            return
        try:
            event = check_client_frame(text, binary, max_bytes=self._max_client_frame_bytes)
        except RefusedFrame as refusal:
            self._refuse(refusal.message, event_id=refusal.event_id, now=now)
            return
        kind = event["type"]
        if kind.startswith(CONTROL_PREFIX):
            self._control(event)
            return
        if not self._open:
            self._held_bytes += len(text)
            if self._held_bytes > HELD_BYTES:
                if self._held_bytes - len(text) <= HELD_BYTES:  # said once per reconnection
                    self._to_client.append(json.dumps({"type": "voicechat.notice", "message": HELD_FULL}))
                return
        if kind == "input_audio_buffer.append":
            self._appended += 1
        elif kind in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            self._appended = 0
        self._to_upstream.append(text)

    def _refuse(self, message: str, *, now: float, code: str = ERROR_CODE, event_id: str | None = None) -> None:
        self.refused_frames += 1
        self._refusals.add(now)
        self._to_client.append(error_event(message, code=code, event_id=event_id))

    def _control(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "voicechat.mode":
            self.hands_free = event["mode"] == "hands_free"
            self._to_upstream.append(session_update(self.shape, self._session, hands_free=self.hands_free))
            self._to_client.append(json.dumps({"type": "voicechat.mode", "mode": event["mode"]}))
        elif kind == "voicechat.talk" and event["action"] == "start":
            # A new turn by hand: what the assistant was saying and any stray audio go.
            if self._response_active:
                self._to_upstream.append(json.dumps({"type": "response.cancel"}))
            self._to_upstream.append(json.dumps({"type": "input_audio_buffer.clear"}))
            self._appended = 0
        elif kind == "voicechat.talk":
            if self._appended:
                self._to_upstream.append(json.dumps({"type": "input_audio_buffer.commit"}))
                self._to_upstream.append(json.dumps({"type": "response.create"}))
            self._appended = 0
        elif kind == "voicechat.client_info":
            self._records.append(ClientInfo(audio=event.get("audio", {}), user_agent=event.get("userAgent", "")))

    def receive_upstream(self, frame: str) -> None:
        """Relay a service frame as received; read it only if the recorder needs it."""
        event = parse_recorded(frame)
        if event is None:
            self._to_client.append(frame)
            return
        # The end of a session's time is the server's to handle (it goes on in a new
        # session, or says so itself), not an error to show.
        if event["type"] != "error" or (event.get("error") or {}).get("code") != "session_expired":
            self._to_client.append(frame)
        if event["type"] == "response.created":
            self._response_active = True
        elif event["type"] == "response.done":
            self._response_active = False
        self._recorder.receive(event)

    def finish(self, detail: str) -> None:
        """The service session is over: record the turns still waiting for their words."""
        self._recorder.finish(detail)
        # Its reply and its input buffer went with it; what comes now waits for start().
        self._open = False
        self._response_active = False
        self._appended = 0

    def data_to_send_upstream(self) -> list[str]:
        """What to send to the service now: nothing while no session is open (it is held till then)."""
        if not self._open:
            return []
        frames, self._to_upstream = self._to_upstream, []
        return frames

    def data_to_send_client(self) -> list[str]:
        frames, self._to_client = self._to_client, []
        return frames

    def records(self) -> list[Record]:
        records, self._records = self._records, []
        return records + self._recorder.records()
