"""Recognition of the shared speech clips, fed as the engine feeds it: 20 ms at a time."""

import re
import sys
import threading
import types
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from voicechat.local_engine import speech_to_text
from voicechat.local_engine.speech_to_text import INPUT_RATE, PocketsphinxRecognizer, WhisperRecognizer, make_recognizer

FIXTURES = Path(__file__).parent.parent / "fixtures"
CHUNK_BYTES = INPUT_RATE * 2 * 20 // 1000


def speech(name: str) -> bytes:
    """A fixture clip (PCM16 mono 24 kHz WAV) as PCM16 mono 16 kHz."""
    with wave.open(str(FIXTURES / name)) as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2, 24000)
        samples = np.frombuffer(clip.readframes(clip.getnframes()), dtype=np.int16)
    return soxr.resample(samples, 24000, INPUT_RATE).astype(np.int16).tobytes()


def recognize(recognizer, pcm16: bytes, chunk_bytes: int = CHUNK_BYTES) -> str:
    utterance = recognizer.start()
    for start in range(0, len(pcm16), chunk_bytes):
        utterance.feed(pcm16[start : start + chunk_bytes])
    return utterance.finish()


def two_utterances() -> tuple[bytes, bytes]:
    """The two utterances of two_utterances_24k.wav, cut in the 1.7 s of silence between them."""
    pcm16 = speech("two_utterances_24k.wav")
    middle = int(3.6 * INPUT_RATE) * 2
    samples = np.frombuffer(pcm16, dtype=np.int16)
    assert np.abs(samples[middle // 2 - 8000 : middle // 2 + 8000]).max() < 100
    return pcm16[:middle], pcm16[middle:]


@pytest.mark.parametrize(
    ("clip", "key_words"),
    [
        # "Hello, what is the weather like today?" (flite)
        ("hello_flite_24k.wav", {"hello", "what", "weather", "today"}),
        # "Please tell me a joke." (flite)
        ("joke_flite_24k.wav", {"please", "tell", "joke"}),
        # "Turn on the kitchen lights." (flite)
        ("lights_flite_24k.wav", {"turn", "kitchen", "lights"}),
        # espeak-ng's voice is much harder for pocketsphinx: these words come through.
        ("hello_24k.wav", {"what", "weather"}),
        ("joke_24k.wav", {"please"}),
    ],
)
def test_key_words_are_recognized(clip, key_words):
    transcript = recognize(make_recognizer(), speech(clip))
    assert key_words <= set(transcript.split()), transcript


def test_transcript_is_lowercase_words():
    # The clip has silence before, between and after its sentences: the
    # decoder's <sil> and sentence markers stay out of the transcript.
    transcript = recognize(make_recognizer(), speech("two_utterances_24k.wav"))
    assert "weather" in transcript.split()
    assert re.fullmatch(r"[a-z']+( [a-z']+)*", transcript), transcript


def test_recognizer_reused_for_utterances_in_a_row():
    recognizer = make_recognizer()
    first, second = two_utterances()
    first_transcript = recognize(recognizer, first)
    second_transcript = recognize(recognizer, second)
    assert "weather" in first_transcript.split()
    assert second_transcript
    assert "weather" not in second_transcript.split()


def test_recognizer_reused_for_a_conversation():
    recognizer = make_recognizer()
    assert {"hello", "weather"} <= set(recognize(recognizer, speech("hello_flite_24k.wav")).split())
    assert {"please", "tell"} <= set(recognize(recognizer, speech("joke_flite_24k.wav")).split())
    assert {"kitchen", "lights"} <= set(recognize(recognizer, speech("lights_flite_24k.wav")).split())


def test_chunk_size_does_not_matter():
    pcm16 = speech("hello_flite_24k.wav")
    in_chunks = recognize(make_recognizer(), pcm16)
    assert recognize(make_recognizer(), pcm16, chunk_bytes=len(pcm16)) == in_chunks
    assert recognize(make_recognizer(), pcm16, chunk_bytes=CHUNK_BYTES * 2) == in_chunks


def test_start_abandons_an_unfinished_utterance():
    recognizer = make_recognizer()
    abandoned = recognizer.start()
    abandoned.feed(two_utterances()[0][: 16000 * 2])
    assert "joke" in recognize(recognizer, speech("joke_flite_24k.wav")).split()
    with pytest.raises(RuntimeError):
        abandoned.finish()


def test_finished_utterance_is_spent():
    utterance = make_recognizer().start()
    utterance.feed(speech("joke_flite_24k.wav"))
    assert utterance.finish()
    with pytest.raises(RuntimeError):
        utterance.feed(bytes(CHUNK_BYTES))
    with pytest.raises(RuntimeError):
        utterance.finish()


def test_silence_or_nothing_gives_empty_transcript():
    recognizer = make_recognizer()
    assert recognize(recognizer, bytes(INPUT_RATE * 2)) == ""
    utterance = recognizer.start()
    utterance.feed(b"")
    assert utterance.finish() == ""


def test_recognizers_run_concurrently_in_threads():
    clips = {"hello_flite_24k.wav": "weather", "lights_flite_24k.wav": "kitchen", "joke_flite_24k.wav": "joke"}
    recognizers = {clip: make_recognizer() for clip in clips}
    audio = {clip: speech(clip) for clip in clips}
    transcripts = {}
    start = threading.Barrier(len(clips))

    def run(clip):
        start.wait()
        transcripts[clip] = [recognize(recognizers[clip], audio[clip]) for _ in range(2)]

    threads = [threading.Thread(target=run, args=(clip,)) for clip in clips]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for clip, word in clips.items():
        assert all(word in transcript.split() for transcript in transcripts[clip]), transcripts[clip]


def test_make_recognizer_defaults_to_pocketsphinx():
    recognizer = make_recognizer()
    assert isinstance(recognizer, PocketsphinxRecognizer)
    assert recognizer.name == "pocketsphinx (en-us)"


def test_whisper_needs_a_model_folder():
    with pytest.raises(RuntimeError, match="LOCAL_WHISPER_MODEL"):
        make_recognizer("/nonexistent")


def test_whisper_needs_the_package(tmp_path, monkeypatch):
    (tmp_path / "model.bin").write_bytes(b"")
    monkeypatch.setattr(speech_to_text, "_whisper_models", {})
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"LOCAL_WHISPER_MODEL.*faster-whisper"):
        make_recognizer(str(tmp_path))


def test_whisper_transcribes_the_buffered_audio_with_one_model(tmp_path, monkeypatch):
    models = []

    class WhisperModel:
        def __init__(self, path, **options):
            self.path, self.options, self.calls = path, options, []
            models.append(self)

        def transcribe(self, audio, **options):
            self.calls.append((audio, options))
            segments = [types.SimpleNamespace(text=" Turn on"), types.SimpleNamespace(text=" the lights. ")]
            return iter(segments), None

    monkeypatch.setattr(speech_to_text, "_whisper_models", {})
    monkeypatch.setitem(sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=WhisperModel))
    folder = tmp_path / "whisper-base.en"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")

    recognizer = make_recognizer(str(folder))
    assert isinstance(recognizer, WhisperRecognizer)
    assert recognizer.name == "faster-whisper (whisper-base.en)"
    samples = np.array([0, 16384, -32768, 32767], dtype="<i2")
    utterance = recognizer.start()
    utterance.feed(samples[:1].tobytes())
    utterance.feed(samples[1:].tobytes())
    assert utterance.finish() == "Turn on the lights."
    assert make_recognizer(str(folder)).start().finish() == ""  # nothing fed: no transcription

    [model] = models  # loaded once for both recognizers
    assert model.path == str(folder)
    assert model.options == {"device": "cpu", "compute_type": "int8"}
    [(audio, options)] = model.calls
    assert audio.dtype == np.float32
    assert audio.tolist() == [0.0, 0.5, -1.0, 32767 / 32768]
    assert options == {"language": "en", "beam_size": 1, "vad_filter": False}
