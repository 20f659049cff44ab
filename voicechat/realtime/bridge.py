"""The relay between one browser socket and one upstream session, without the sockets.

Like the protocol objects of `websockets`, it is fed what arrives on either side
and tells what to send each way and what to record; the consumer does the I/O.
"""

import time
from collections.abc import Callable

from voicechat.realtime.client_events import RefusedFrame, check_client_frame, error_event
from voicechat.realtime.events import parse_recorded
from voicechat.realtime.recorder import Record, Recorder
from voicechat.realtime.session_config import SessionSettings, Shape, session_update


class Bridge:
    def __init__(
        self,
        *,
        shape: Shape,
        session: SessionSettings,
        max_client_frame_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shape = shape
        self._session = session
        self._max_client_frame_bytes = max_client_frame_bytes
        self._recorder = Recorder(clock)
        self._to_upstream: list[str] = []
        self._to_client: list[str] = []
        self.refused_frames = 0

    def start(self) -> None:
        """Queue the server's own session configuration, first of all frames upstream."""
        self._to_upstream.append(session_update(self.shape, self._session))

    def receive_client(self, text: str | None, binary: bytes | None = None) -> None:
        try:
            check_client_frame(text, binary, max_bytes=self._max_client_frame_bytes)
        except RefusedFrame as refusal:
            self.refused_frames += 1
            self._to_client.append(error_event(refusal.message, event_id=refusal.event_id))
        else:
            self._to_upstream.append(text)

    def receive_upstream(self, frame: str) -> None:
        """Relay a service frame as received; read it only if the recorder needs it."""
        self._to_client.append(frame)
        event = parse_recorded(frame)
        if event is not None:
            self._recorder.receive(event)

    def finish(self, detail: str) -> None:
        """The conversation is over: record the turns still waiting for their words."""
        self._recorder.finish(detail)

    def data_to_send_upstream(self) -> list[str]:
        frames, self._to_upstream = self._to_upstream, []
        return frames

    def data_to_send_client(self) -> list[str]:
        frames, self._to_client = self._to_client, []
        return frames

    def records(self) -> list[Record]:
        return self._recorder.records()
