"""Figures for the built-in local voice engine: latency, recognition, concurrency.

Run by hand: `.venv/bin/python bench/local_engine.py`. Audio is fed at real-time
pace in 40 ms chunks, as the page sends it. Latency is from the engine's
`input_audio_buffer.speech_stopped` (so the VAD silence is excluded) to its first
`response.output_audio.delta`.
"""

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
import wave
from pathlib import Path

import jiwer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicechat.local_engine.engine import LocalSession
from voicechat.local_engine.settings import LocalSettings
from voicechat.realtime.session_config import SessionSettings, Shape, session_update

AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "audio"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
# What the shared clips say (the flite voice reads the same sentences as the others).
REFERENCES = {
    "hello": "hello what is the weather like today",
    "joke": "please tell me a joke",
    "lights": "turn on the kitchen lights",
}
CHUNK_MS = 40
SESSION = SessionSettings(voice="alloy", instructions="", transcription_model="", vad_silence_ms=200)


def clip(name: str) -> bytes:
    path = AUDIO / name if (AUDIO / name).exists() else FIXTURES / name
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


async def open_session(settings: LocalSettings) -> LocalSession:
    session = await LocalSession.open(settings)
    await session.send(session_update(Shape.GA, SESSION))
    return session


async def one_turn(name: str, settings: LocalSettings, session: LocalSession | None = None) -> tuple[float, str]:
    """Speak one clip at real-time pace; the latency in seconds and what was recognised."""
    session = session or await open_session(settings)
    frames = aiter(session)
    stopped_at = first_audio_at = None
    transcript = ""

    async def listen() -> None:
        nonlocal stopped_at, first_audio_at, transcript
        while True:
            event = json.loads(await anext(frames))
            if event["type"] == "input_audio_buffer.speech_stopped":
                stopped_at = time.perf_counter()
            elif event["type"] == "conversation.item.input_audio_transcription.completed":
                transcript = event["transcript"]
            elif event["type"] == "response.output_audio.delta" and first_audio_at is None:
                first_audio_at = time.perf_counter()
            elif event["type"] == "response.done":
                return

    listener = asyncio.create_task(listen())
    audio = bytes(24000 * 2 * 300 // 1000) + clip(name) + bytes(24000 * 2 * 800 // 1000)
    step = 24000 * 2 * CHUNK_MS // 1000
    start = time.perf_counter()
    for index, offset in enumerate(range(0, len(audio), step)):
        if listener.done():
            break
        chunk = base64.b64encode(audio[offset : offset + step]).decode()
        await session.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await asyncio.sleep(max(0.0, start + (index + 1) * CHUNK_MS / 1000 - time.perf_counter()))
    await asyncio.wait_for(listener, 30)
    await session.close()
    return first_audio_at - stopped_at, transcript


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each clip is spoken (default 3)")
    args = parser.parse_args()
    settings = LocalSettings()
    names = [f"{key}{suffix}_24k.wav" for key in REFERENCES for suffix in ("_flite", "")]
    await one_turn(names[0], settings)  # load the models once before measuring

    print(f"Local engine: {settings.label}, {args.rounds} rounds, real-time pace, {CHUNK_MS} ms chunks\n")
    print(f"{'clip':<22} {'latency p50':>12} {'max':>7}  recognised")
    latencies, hypotheses, references = [], [], []
    for name in names:
        runs = [await one_turn(name, settings) for _ in range(args.rounds)]
        times = [latency for latency, _ in runs]
        latencies += times
        heard = runs[0][1]
        print(f"{name:<22} {statistics.median(times) * 1000:>9.0f} ms {max(times) * 1000:>4.0f} ms  {heard!r}")
        if "flite" in name:
            hypotheses.append(heard)
            references.append(REFERENCES[name.split("_")[0]])
    single = statistics.median(latencies)
    print(f"\nEnd of speech to first reply audio, median over all clips: {single * 1000:.0f} ms (target <= 1000 ms)")
    print(f"Word error rate on the flite clips: {jiwer.wer(references, hypotheses):.1%}")

    concurrent = []
    for _ in range(args.rounds):
        # Sessions open first, as on a server where users are already connected; then all speak.
        sessions = [await open_session(settings) for _ in range(4)]
        results = await asyncio.gather(*(one_turn(n, settings, s) for n, s in zip(names[:4], sessions, strict=True)))
        concurrent += [latency for latency, _ in results]
    four = statistics.median(concurrent)
    print(
        f"Four sessions at once, median latency: {four * 1000:.0f} ms ({four / single:.2f}x one session; target <= 2x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
