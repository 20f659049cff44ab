"""Server-side turn detection: webrtcvad on 20 ms frames of 16 kHz audio."""

from collections import deque
from dataclasses import dataclass

import webrtcvad

RATE = 16000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
# Speech starts when most of the last WINDOW frames are voiced: one voiced click is not a turn.
WINDOW = 10
START_RATIO = 0.7


@dataclass(frozen=True)
class SpeechStarted:
    start_ms: int
    audio: bytes  # what was kept from before the start, and the start itself


@dataclass(frozen=True)
class SpeechAudio:
    audio: bytes


@dataclass(frozen=True)
class SpeechStopped:
    end_ms: int


TurnEvent = SpeechStarted | SpeechAudio | SpeechStopped


class TurnDetector:
    """Feed it PCM16 mono 16 kHz audio; it says where speech starts and stops."""

    def __init__(self, *, silence_ms: int = 500, prefix_padding_ms: int = 300, aggressiveness: int = 2) -> None:
        self.silence_ms = silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        self._vad = webrtcvad.Vad(aggressiveness)
        self._silence_frames = max(1, silence_ms // FRAME_MS)
        self._pending = b""
        self._frames = 0  # frames seen since the start of the stream
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._preroll: deque[bytes] = deque(maxlen=max(WINDOW, prefix_padding_ms // FRAME_MS))
        self._speaking = False
        self._quiet_frames = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, pcm16: bytes) -> list[TurnEvent]:
        data = self._pending + pcm16
        usable = len(data) - len(data) % FRAME_BYTES
        self._pending = data[usable:]
        events: list[TurnEvent] = []
        for offset in range(0, usable, FRAME_BYTES):
            events.extend(self._frame(data[offset : offset + FRAME_BYTES]))
        return events

    def _frame(self, frame: bytes) -> list[TurnEvent]:
        self._frames += 1
        voiced = self._vad.is_speech(frame, RATE)
        if not self._speaking:
            self._preroll.append(frame)
            self._recent.append(voiced)
            if len(self._recent) == WINDOW and sum(self._recent) >= START_RATIO * WINDOW:
                self._speaking = True
                self._quiet_frames = 0
                # Speech began at the first voiced frame of the window that set it off.
                first_voiced = next(i for i, v in enumerate(self._recent) if v)
                start_frame = self._frames - WINDOW + first_voiced
                audio = b"".join(self._preroll)
                self._preroll.clear()
                self._recent.clear()
                return [SpeechStarted(start_ms=start_frame * FRAME_MS, audio=audio)]
            return []
        self._quiet_frames = 0 if voiced else self._quiet_frames + 1
        events: list[TurnEvent] = [SpeechAudio(frame)]
        if self._quiet_frames >= self._silence_frames:
            self._speaking = False
            end_frame = self._frames - self._quiet_frames
            events.append(SpeechStopped(end_ms=end_frame * FRAME_MS))
        return events

    def reset(self) -> None:
        """Forget any speech in progress (the buffer was cleared or committed by hand)."""
        self._speaking = False
        self._recent.clear()
        self._preroll.clear()
        self._quiet_frames = 0
