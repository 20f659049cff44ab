"""Drive a local engine session the way the consumer does, with frames."""

import asyncio
import base64
import json
from typing import Any

from voicechat.local_engine.engine import LocalSession
from voicechat.realtime.session_config import SessionSettings, Shape, session_update

SESSION = SessionSettings(voice="alloy", instructions="Be brief.", transcription_model="whisper-1", vad_silence_ms=300)
CHUNK_BYTES = 24000 * 2 * 40 // 1000  # 40 ms, as the page sends


class EngineClient:
    def __init__(self, session: LocalSession) -> None:
        self.session = session
        self.events: list[dict[str, Any]] = []
        self._frames = aiter(session)

    async def configure(self, settings: SessionSettings = SESSION) -> None:
        await self.session.send(session_update(Shape.GA, settings))
        await self.until("session.updated")

    async def send(self, event: dict[str, Any]) -> None:
        await self.session.send(json.dumps(event))

    async def speak(self, pcm16_24k: bytes) -> None:
        """Append audio in 40 ms chunks, as fast as the engine takes it."""
        for offset in range(0, len(pcm16_24k), CHUNK_BYTES):
            chunk = pcm16_24k[offset : offset + CHUNK_BYTES]
            await self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()})

    async def next(self, timeout: float = 20) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(anext(self._frames), timeout))
        self.events.append(event)
        return event

    async def until(self, event_type: str, timeout: float = 20) -> list[dict[str, Any]]:
        """Events up to and including the next of this type."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                seen.append(event)
                if event["type"] == event_type:
                    return seen


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def reply_audio(events: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
