"""
Speech recognition for the local voice engine.

PocketSphinx with its bundled US English model is the default: it needs
nothing beyond the pinned package and decodes while the user speaks.
faster-whisper, far more accurate but optional, is used when
LOCAL_WHISPER_MODEL names a CTranslate2 model folder.
"""

import os
import threading
from typing import Protocol

import numpy as np
import pocketsphinx

INPUT_RATE = 16000  # recognizers take PCM16 mono 16 kHz

# pocketsphinx holds the GIL while it decodes (its Cython binding has no
# `nogil` section): for a fifth to a quarter of the audio's duration. Large
# blocks are fed in pieces so that other threads, the event loop among them,
# get a turn in between.
_FEED_BLOCK_BYTES = INPUT_RATE * 2 * 40 // 1000  # 40 ms


class Utterance(Protocol):
    def feed(self, pcm16: bytes) -> None: ...

    def finish(self) -> str: ...


class Recognizer(Protocol):
    name: str

    def start(self) -> Utterance: ...


class PocketsphinxUtterance:
    """One user turn, decoded as it is fed."""

    def __init__(self, decoder: pocketsphinx.Decoder):
        self._decoder = decoder
        decoder.start_utt()

    def feed(self, pcm16: bytes) -> None:
        if self._decoder is None:
            raise RuntimeError("This utterance is finished.")
        for start in range(0, len(pcm16), _FEED_BLOCK_BYTES):
            self._decoder.process_raw(pcm16[start : start + _FEED_BLOCK_BYTES])

    def finish(self) -> str:
        if self._decoder is None:
            raise RuntimeError("This utterance is finished.")
        decoder, self._decoder = self._decoder, None
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is None:
            return ""
        # Filler words (<sil>, [noise], ...) are left out of hypstr already;
        # filtering again costs nothing and keeps them out whatever the model.
        words = [word for word in hypothesis.hypstr.split() if word[0] not in "<[+"]
        return " ".join(words).lower()

    def abandon(self) -> None:
        """End the utterance without a result, freeing the decoder for the next one."""
        if self._decoder is not None:
            decoder, self._decoder = self._decoder, None
            decoder.end_utt()


class PocketsphinxRecognizer:
    """
    PocketSphinx with its bundled US English acoustic model, dictionary and
    language model.

    A decoder takes about 0.3 s and 90 MB to create (the language model and
    the search built on it are 65 MB of that, the dictionary 20 MB; the
    acoustic model is memory-mapped, so shared), hence one per recognizer,
    reused for every utterance. Its cepstral mean, the estimate of the
    speaker's voice and microphone, carries over from one utterance to the
    next, so recognition improves as the session goes on.

    Decoders share nothing: the language model could be loaded once and
    added to each, but its lookups write to a cache inside it, so that is
    only safe as long as pocketsphinx never releases the GIL.
    """

    name = "pocketsphinx (en-us)"

    def __init__(self):
        self._decoder = pocketsphinx.Decoder(
            hmm=pocketsphinx.get_model_path("en-us/en-us"),
            lm=pocketsphinx.get_model_path("en-us/en-us.lm.bin"),
            dict=pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"),
            samprate=INPUT_RATE,
            # Without the second, flat-lexicon pass, end_utt() takes a few ms
            # instead of 60-100 ms at the end of every turn; short utterances
            # are recognised as well without it.
            fwdflat=False,
            # A cap on the HMMs searched per frame cuts the decoding time by a
            # third (0.15 to 0.10 of the audio's length): more sessions per core.
            # The shared clips are recognised the same.
            maxhmmpf=3000,
            # Otherwise every utterance logs several lines to stderr.
            loglevel="FATAL",
        )
        self._utterance = None

    def start(self) -> PocketsphinxUtterance:
        # A turn the engine abandoned (the user was interrupted, say) would
        # leave the decoder mid-utterance, and start_utt() would then fail.
        if self._utterance is not None:
            self._utterance.abandon()
        self._utterance = PocketsphinxUtterance(self._decoder)
        return self._utterance


_whisper_models = {}
_whisper_models_lock = threading.Lock()


def _load_whisper_model(path: str):
    """Load a faster-whisper model once per process: it takes seconds and hundreds of MB."""
    with _whisper_models_lock:
        if path not in _whisper_models:
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise RuntimeError(
                    "LOCAL_WHISPER_MODEL is set but the faster-whisper package is not installed "
                    "(pip install -r requirements-extras.txt), or unset LOCAL_WHISPER_MODEL to use pocketsphinx."
                ) from e
            _whisper_models[path] = WhisperModel(path, device="cpu", compute_type="int8")
        return _whisper_models[path]


class WhisperUtterance:
    """One user turn, buffered and transcribed when it ends."""

    def __init__(self, model):
        self._model = model
        self._chunks = []

    def feed(self, pcm16: bytes) -> None:
        if self._chunks is None:
            raise RuntimeError("This utterance is finished.")
        self._chunks.append(bytes(pcm16))

    def finish(self) -> str:
        if self._chunks is None:
            raise RuntimeError("This utterance is finished.")
        pcm16, self._chunks = b"".join(self._chunks), None
        if not pcm16:
            return ""
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768
        segments, _info = self._model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        return " ".join(segment.text.strip() for segment in segments).strip()


class WhisperRecognizer:
    """faster-whisper with a local CTranslate2 model folder; nothing is downloaded."""

    def __init__(self, model_path: str):
        model_path = os.path.abspath(model_path)
        if not os.path.isfile(os.path.join(model_path, "model.bin")):
            raise RuntimeError(
                f"LOCAL_WHISPER_MODEL={model_path!r} is not a faster-whisper model folder "
                "(a CTranslate2 conversion containing model.bin)."
            )
        self._model = _load_whisper_model(model_path)
        self.name = f"faster-whisper ({os.path.basename(model_path)})"

    def start(self) -> WhisperUtterance:
        return WhisperUtterance(self._model)


def make_recognizer(whisper_model: str = "") -> Recognizer:
    """Return a WhisperRecognizer if a model folder is given, else a PocketsphinxRecognizer."""
    if whisper_model:
        return WhisperRecognizer(whisper_model)
    return PocketsphinxRecognizer()
