"""Speech clips for the local engine's tests."""

import wave
from pathlib import Path

import numpy as np
import soxr

FIXTURES = Path(__file__).parent.parent / "fixtures"


def clip_24k(name: str) -> bytes:
    """A fixture clip as PCM16 mono 24 kHz."""
    with wave.open(str(FIXTURES / name)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (24000, 1, 2)
        return clip.readframes(clip.getnframes())


def to_16k(pcm16_24k: bytes) -> bytes:
    samples = np.frombuffer(pcm16_24k, dtype=np.int16)
    return soxr.resample(samples, 24000, 16000).astype(np.int16).tobytes()


def silence(ms: int, rate: int = 24000) -> bytes:
    return bytes(rate * ms // 1000 * 2)
