"""Text to speech for the local engine: espeak-ng from its wheel, or piper with a voice on disk."""

import ctypes
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

OUTPUT_RATE = 24000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|\[\[|\]\]")


class Synthesizer(Protocol):
    name: str

    def synthesize(self, text: str) -> bytes: ...


class EspeakSynthesizer:
    """espeak-ng keeps global state: one initialisation per process, one synthesis at a time."""

    name = "espeak-ng"
    _lock = threading.Lock()
    _library = None
    _rate = 0
    _chunks: list[bytes] = []
    _callback = None

    def __init__(self, voice: str = "en-us", words_per_minute: int = 175) -> None:
        self._voice = voice.encode()
        self._wpm = words_per_minute
        with self._lock:
            if EspeakSynthesizer._library is None:
                EspeakSynthesizer._initialise()

    @classmethod
    def _initialise(cls) -> None:
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        # AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback, nothing is played.
        cls._rate = library.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if cls._rate <= 0:
            raise RuntimeError("espeak-ng could not be initialised.")
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def collect(wav, count, events):
            if count > 0:
                cls._chunks.append(ctypes.string_at(wav, count * 2))
            return 0

        cls._callback = callback_type(collect)
        library.espeak_SetSynthCallback(cls._callback)
        cls._library = library

    def synthesize(self, text: str) -> bytes:
        text = _CONTROL.sub(" ", text).strip()
        if not text:
            return b""
        encoded = text.encode()
        with self._lock:
            library = self._library
            library.espeak_SetVoiceByName(self._voice)
            library.espeak_SetParameter(1, self._wpm, 0)  # espeakRATE
            self._chunks.clear()
            # POS_CHARACTER, espeakCHARS_UTF8; no SSML, no phoneme input.
            library.espeak_Synth(encoded, len(encoded) + 1, 0, 1, 0, 1, None, None)
            audio = b"".join(self._chunks)
            self._chunks.clear()
        samples = np.frombuffer(audio, dtype=np.int16)
        return soxr.resample(samples, self._rate, OUTPUT_RATE, quality="HQ").astype(np.int16).tobytes()


class PiperSynthesizer:
    def __init__(self, voice_path: str) -> None:
        try:
            from piper import PiperVoice
        except ImportError:
            raise RuntimeError(
                "LOCAL_PIPER_VOICE is set but piper-tts is not installed (pip install -r requirements-extras.txt)."
            ) from None
        if not Path(voice_path).is_file():
            raise RuntimeError(f"LOCAL_PIPER_VOICE is not a voice file: {voice_path}")
        self._voice = PiperVoice.load(voice_path)
        self._rate = self._voice.config.sample_rate
        self.name = f"piper ({Path(voice_path).stem})"

    def synthesize(self, text: str) -> bytes:
        text = _CONTROL.sub(" ", text).strip()
        if not text:
            return b""
        audio = b"".join(chunk.audio_int16_bytes for chunk in self._voice.synthesize(text))
        samples = np.frombuffer(audio, dtype=np.int16)
        return soxr.resample(samples, self._rate, OUTPUT_RATE, quality="HQ").astype(np.int16).tobytes()


def make_synthesizer(piper_voice: str = "", voice: str = "en-us") -> Synthesizer:
    return PiperSynthesizer(piper_voice) if piper_voice else EspeakSynthesizer(voice)
