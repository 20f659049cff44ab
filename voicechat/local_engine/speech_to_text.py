"""Speech to text for the local engine: pocketsphinx, or faster-whisper when a model is on disk."""

from pathlib import Path
from typing import Protocol

INPUT_RATE = 16000


class Utterance(Protocol):
    def feed(self, pcm16: bytes) -> None: ...

    def finish(self) -> str: ...


class Recognizer(Protocol):
    name: str

    def start(self) -> Utterance: ...


class _PocketsphinxUtterance:
    def __init__(self, decoder) -> None:
        self._decoder = decoder
        decoder.start_utt()

    def feed(self, pcm16: bytes) -> None:
        self._decoder.process_raw(pcm16[: len(pcm16) - len(pcm16) % 2], False, False)

    def finish(self) -> str:
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr.strip().lower() if hypothesis is not None else ""


class PocketsphinxRecognizer:
    """The bundled US English model; decodes as audio arrives, so finishing is quick."""

    name = "pocketsphinx (en-us)"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(loglevel="FATAL")

    def start(self) -> _PocketsphinxUtterance:
        return _PocketsphinxUtterance(self._decoder)


class _WhisperUtterance:
    def __init__(self, model) -> None:
        self._model = model
        self._audio = bytearray()

    def feed(self, pcm16: bytes) -> None:
        self._audio += pcm16

    def finish(self) -> str:
        import numpy as np

        samples = np.frombuffer(bytes(self._audio[: len(self._audio) - len(self._audio) % 2]), dtype=np.int16)
        segments, _ = self._model.transcribe(samples.astype(np.float32) / 32768, language="en", beam_size=1)
        return " ".join(segment.text.strip() for segment in segments).strip()


_whisper_models: dict[str, object] = {}


class WhisperRecognizer:
    def __init__(self, model_path: str) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise RuntimeError(
                "LOCAL_WHISPER_MODEL is set but faster-whisper is not installed "
                "(pip install -r requirements-extras.txt)."
            ) from None
        if not Path(model_path).is_dir():
            raise RuntimeError(f"LOCAL_WHISPER_MODEL is not a model folder: {model_path}")
        if model_path not in _whisper_models:
            _whisper_models[model_path] = WhisperModel(model_path, device="cpu", compute_type="int8")
        self._model = _whisper_models[model_path]
        self.name = f"faster-whisper ({Path(model_path).name})"

    def start(self) -> _WhisperUtterance:
        return _WhisperUtterance(self._model)


def make_recognizer(whisper_model: str = "") -> Recognizer:
    return WhisperRecognizer(whisper_model) if whisper_model else PocketsphinxRecognizer()
