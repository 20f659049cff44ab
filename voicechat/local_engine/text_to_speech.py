"""
Speech synthesis for the local voice engine.

espeak-ng, from the library and data the espeakng-loader wheel ships, is the
default: robotic but instant. piper, far more natural but optional, is used
when LOCAL_PIPER_VOICE names a voice file.
"""

import ctypes
import os
import re
import threading
from typing import Protocol

import espeakng_loader
import numpy as np
import soxr

OUTPUT_RATE = 24000

# Control characters are never speech, and espeak-ng reads some of them as
# commands (\x01 starts an embedded command, for one).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class Synthesizer(Protocol):
    name: str

    def synthesize(self, text: str) -> bytes: ...


def _clean(text: str) -> str:
    return _CONTROL_CHARACTERS.sub(" ", text).strip()


def _to_output_rate(samples: np.ndarray, rate: int) -> bytes:
    if rate != OUTPUT_RATE:
        samples = soxr.resample(samples, rate, OUTPUT_RATE, quality="HQ")
    return samples.astype("<i2", copy=False).tobytes()


# From espeak-ng's speak_lib.h.
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakRATE = 1
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakENDPAUSE = 0x1000
EE_OK = 0

# espeak-ng keeps its voice, its parameters and the synth callback in global
# state and is not thread-safe: every call into it holds this lock, and so
# does everything below that starts with _espeak.
_espeak_lock = threading.Lock()
_espeak = None
_espeak_rate = 0
_espeak_samples: list[bytes] = []


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@_SynthCallback
def _espeak_collect(wav, count, events):
    if count > 0:
        _espeak_samples.append(ctypes.string_at(wav, count * 2))
    return 0  # go on


def _espeak_library() -> ctypes.CDLL:
    """Load and initialise espeak-ng, once per process."""
    global _espeak, _espeak_rate
    if _espeak is None:
        library = ctypes.CDLL(espeakng_loader.get_library_path())
        # Without argtypes, ctypes passes Python ints as 32-bit C ints, and
        # espeak_Synth's size_t would get garbage in its upper half.
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        library.espeak_SetSynthCallback.restype = None
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetVoiceByName.restype = ctypes.c_int
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetParameter.restype = ctypes.c_int
        library.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # size
            ctypes.c_uint,  # position
            ctypes.c_int,  # position_type
            ctypes.c_uint,  # end_position
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique_identifier
            ctypes.c_void_p,  # user_data
        ]
        library.espeak_Synth.restype = ctypes.c_int
        # Synchronous output: espeak_Synth() hands every sample to the
        # callback before it returns, and plays nothing.
        rate = library.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            espeakng_loader.get_data_path().encode(),
            # Otherwise espeak-ng calls exit() if it cannot read its data.
            espeakINITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise RuntimeError("espeak-ng could not be initialised.")
        library.espeak_SetSynthCallback(_espeak_collect)
        _espeak, _espeak_rate = library, rate
    return _espeak


def _espeak_select(voice: str, words_per_minute: int) -> ctypes.CDLL:
    library = _espeak_library()
    if library.espeak_SetVoiceByName(voice.encode()) != EE_OK:
        raise ValueError(f"espeak-ng has no voice {voice!r}.")
    library.espeak_SetParameter(espeakRATE, words_per_minute, 0)
    return library


class EspeakSynthesizer:
    """espeak-ng through ctypes; sentences of about ten words take a few milliseconds."""

    def __init__(self, voice: str = "en-us", words_per_minute: int = 175):
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.name = f"espeak-ng ({voice})"
        with _espeak_lock:
            _espeak_select(voice, words_per_minute)  # fail now on an unknown voice

    def synthesize(self, text: str) -> bytes:
        text = _clean(text)
        if not text:
            return b""
        encoded = text.encode("utf-8", "ignore")  # a lone surrogate cannot be encoded
        with _espeak_lock:
            # The voice and the rate are set for every call: synthesizers with
            # other voices share the library.
            library = _espeak_select(self.voice, self.words_per_minute)
            _espeak_samples.clear()
            # Plain UTF-8 text: without espeakSSML and espeakPHONEMES in the
            # flags, markup and [[phonemes]] are read out, not obeyed.
            # espeakENDPAUSE keeps the pause after a sentence, so speaking a
            # reply sentence by sentence sounds like speaking it at once.
            error = library.espeak_Synth(
                encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8 | espeakENDPAUSE, None, None
            )
            pcm = b"".join(_espeak_samples)
            _espeak_samples.clear()
            rate = _espeak_rate
        if error != EE_OK:
            raise RuntimeError(f"espeak-ng failed to synthesize (error {error}).")
        # Resampling runs outside the lock; soxr releases the GIL.
        return _to_output_rate(np.frombuffer(pcm, dtype=np.int16), rate)


_piper_voices = {}
_piper_voices_lock = threading.Lock()

# piper reads text between double square brackets as phonemes.
_PHONEME_BRACKETS = re.compile(r"\[\[+|\]\]+")


def _load_piper_voice(path: str):
    """Load a piper voice once per process: it takes a second and tens of MB."""
    with _piper_voices_lock:
        if path not in _piper_voices:
            try:
                from piper import PiperVoice
            except ImportError as e:
                raise RuntimeError(
                    "LOCAL_PIPER_VOICE is set but the piper-tts package is not installed "
                    "(pip install -r requirements-extras.txt), or unset LOCAL_PIPER_VOICE to use espeak-ng."
                ) from e
            _piper_voices[path] = PiperVoice.load(path)
        return _piper_voices[path]


class PiperSynthesizer:
    """piper (piper-tts 1.3 or later) with a voice on disk; nothing is downloaded."""

    def __init__(self, voice_path: str):
        voice_path = os.path.abspath(voice_path)
        if not (os.path.isfile(voice_path) and os.path.isfile(voice_path + ".json")):
            raise RuntimeError(
                f"LOCAL_PIPER_VOICE={voice_path!r} is not a piper voice "
                "(a .onnx file with its .onnx.json config next to it)."
            )
        self._voice = _load_piper_voice(voice_path)
        self.name = f"piper ({os.path.basename(voice_path).removesuffix('.onnx')})"

    def synthesize(self, text: str) -> bytes:
        text = _PHONEME_BRACKETS.sub(lambda match: match[0][0], _clean(text))
        if not text:
            return b""
        chunks = list(self._voice.synthesize(text))  # one per sentence
        if not chunks:
            return b""
        samples = np.concatenate([chunk.audio_int16_array for chunk in chunks])
        return _to_output_rate(samples, chunks[0].sample_rate)


def make_synthesizer(piper_voice: str = "", voice: str = "en-us") -> Synthesizer:
    """Return a PiperSynthesizer if a voice file is given, else an EspeakSynthesizer."""
    if piper_voice:
        return PiperSynthesizer(piper_voice)
    return EspeakSynthesizer(voice)
