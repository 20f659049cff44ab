"""Speech synthesis: espeak-ng by default, piper when configured."""

import sys
import threading
import time
import types
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from voicechat.local_engine import text_to_speech
from voicechat.local_engine.speech_to_text import INPUT_RATE, make_recognizer
from voicechat.local_engine.text_to_speech import OUTPUT_RATE, EspeakSynthesizer, PiperSynthesizer, make_synthesizer

FIXTURES = Path(__file__).parent.parent / "fixtures"


def seconds(pcm16: bytes) -> float:
    return len(pcm16) / 2 / OUTPUT_RATE


def rms(pcm16: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm16, dtype="<i2").astype(np.float64) ** 2)))


def envelope(pcm16: bytes) -> np.ndarray:
    """Loudness every 10 ms at 24 kHz."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    frames = len(samples) // 240
    return np.sqrt(np.mean(samples[: frames * 240].reshape(frames, 240) ** 2, axis=1))


def similarity(pcm16: bytes, other: bytes) -> float:
    """How alike two sounds' loudness contours are, from -1 to 1."""
    first, second = envelope(pcm16), envelope(other)
    frames = min(len(first), len(second))
    return float(np.corrcoef(first[:frames], second[:frames])[0, 1])


def recognize(pcm16_24k: bytes) -> list[str]:
    samples = np.frombuffer(pcm16_24k, dtype="<i2")
    pcm16 = soxr.resample(samples, OUTPUT_RATE, INPUT_RATE).astype(np.int16).tobytes()
    utterance = make_recognizer().start()
    for start in range(0, len(pcm16), 640):
        utterance.feed(pcm16[start : start + 640])
    return utterance.finish().split()


def test_sentence_gives_speech():
    synthesizer = make_synthesizer()
    assert isinstance(synthesizer, EspeakSynthesizer)
    assert synthesizer.name == "espeak-ng (en-us)"
    pcm16 = synthesizer.synthesize("The weather is sunny and warm today.")
    assert len(pcm16) % 2 == 0
    assert 7 * 0.25 <= seconds(pcm16) <= 7 * 0.7
    assert rms(pcm16) > 1000


def test_output_is_espeak_resampled_to_24khz():
    # joke_24k.wav and lights_24k.wav are espeak-ng's en-us voice at 160 words a
    # minute, resampled to 24 kHz: the same voice at the same rate must match
    # them, which it would not at another rate, or at 22050 Hz.
    synthesizer = EspeakSynthesizer("en-us", words_per_minute=160)
    for clip, text in [("joke_24k.wav", "Please tell me a joke."), ("lights_24k.wav", "Turn on the kitchen lights.")]:
        with wave.open(str(FIXTURES / clip)) as reference:
            expected = reference.readframes(reference.getnframes())
        pcm16 = synthesizer.synthesize(text)
        assert seconds(pcm16) == pytest.approx(seconds(expected), abs=0.02)
        assert similarity(pcm16, expected) > 0.95


def test_speaking_rate():
    text = "The kitchen lights are on, and the weather today is sunny and warm."
    default = seconds(make_synthesizer().synthesize(text))
    assert default == pytest.approx(
        seconds(EspeakSynthesizer("en-us", words_per_minute=175).synthesize(text)), abs=0.02
    )
    assert seconds(EspeakSynthesizer("en-us", words_per_minute=260).synthesize(text)) < default * 0.8
    assert seconds(EspeakSynthesizer("en-us", words_per_minute=120).synthesize(text)) > default * 1.3


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\x00\x01\x7f"])
def test_nothing_to_say_gives_no_audio(text):
    assert make_synthesizer().synthesize(text) == b""


def test_control_characters_are_dropped():
    synthesizer = make_synthesizer()
    # A NUL would end the C string: only "kitchen" would be said.
    assert seconds(synthesizer.synthesize("kitchen\x00lights")) == pytest.approx(
        seconds(synthesizer.synthesize("kitchen lights")), abs=0.05
    )
    # \x01 starts an embedded command: "80S" would slow the rest down to 80 words a minute.
    counting = "one {}80S two three four five six seven eight"
    assert seconds(synthesizer.synthesize(counting.format("\x01"))) == pytest.approx(
        seconds(synthesizer.synthesize(counting.format(" "))), abs=0.05
    )


def test_markup_and_phonemes_are_read_as_text():
    synthesizer = make_synthesizer()
    hello = seconds(synthesizer.synthesize("hello"))
    # As SSML or phoneme input, each would say just "hello".
    assert seconds(synthesizer.synthesize("<speak>hello</speak>")) > hello + 0.5
    assert seconds(synthesizer.synthesize("[[h@l'oU]]")) > hello + 0.5


def test_synthesized_speech_is_recognized():
    pcm16 = make_synthesizer().synthesize("What is the weather like today?")
    words = recognize(pcm16)
    assert "weather" in words
    assert len({"what", "is", "the", "weather", "like", "today"} & set(words)) >= 3, words


def test_short_sentence_comes_back_quickly():
    synthesizer = make_synthesizer()
    synthesizer.synthesize("Warm up.")
    started = time.perf_counter()
    synthesizer.synthesize("Sure, I can turn on the kitchen lights for you now.")
    assert time.perf_counter() - started < 0.5  # a few milliseconds, usually


def test_concurrent_synthesis_is_serialized():
    synthesizer = make_synthesizer()
    texts = ["Yes.", "The kitchen lights are on, and the weather today is sunny and warm."]
    expected = {text: synthesizer.synthesize(text) for text in texts}
    results = {text: [] for text in texts}
    start = threading.Barrier(len(texts))

    def run(text):
        start.wait()
        for _ in range(20):
            results[text].append(synthesizer.synthesize(text))

    threads = [threading.Thread(target=run, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for text in texts:
        assert len(results[text]) == 20
        for pcm16 in results[text]:
            # espeak-ng varies its output a little from one call to the next.
            assert seconds(pcm16) == pytest.approx(seconds(expected[text]), abs=0.02)
            assert similarity(pcm16, expected[text]) > 0.95


def test_synthesizers_with_different_voices_share_espeak():
    american = EspeakSynthesizer("en-us")
    british = EspeakSynthesizer("en")
    text = "The kitchen lights are on, and the weather today is sunny and warm."
    first = american.synthesize(text)
    assert similarity(british.synthesize(text), first) < 0.8
    assert similarity(american.synthesize(text), first) > 0.95


def test_unknown_espeak_voice():
    with pytest.raises(ValueError, match="no-such-voice"):
        make_synthesizer(voice="no-such-voice")


def test_piper_needs_a_voice_file():
    with pytest.raises(RuntimeError, match="LOCAL_PIPER_VOICE"):
        make_synthesizer(piper_voice="/nonexistent.onnx")


def voice_file(folder: Path) -> Path:
    voice = folder / "en_US-test-medium.onnx"
    voice.write_bytes(b"")
    (folder / "en_US-test-medium.onnx.json").write_text("{}")
    return voice


def test_piper_needs_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(text_to_speech, "_piper_voices", {})
    monkeypatch.setitem(sys.modules, "piper", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"LOCAL_PIPER_VOICE.*piper-tts"):
        make_synthesizer(piper_voice=str(voice_file(tmp_path)))


def test_piper_output_is_resampled_to_24khz(tmp_path, monkeypatch):
    loaded = []

    class PiperVoice:
        def __init__(self):
            self.texts = []

        @classmethod
        def load(cls, path):
            voice = cls()
            loaded.append((path, voice))
            return voice

        def synthesize(self, text):
            self.texts.append(text)
            tone = (8000 * np.sin(np.arange(22050) * 2 * np.pi * 220 / 22050)).astype(np.int16)
            for sentence in text.split("."):
                if sentence.strip():
                    yield types.SimpleNamespace(sample_rate=22050, audio_int16_array=tone)

    monkeypatch.setattr(text_to_speech, "_piper_voices", {})
    monkeypatch.setitem(sys.modules, "piper", types.SimpleNamespace(PiperVoice=PiperVoice))
    path = voice_file(tmp_path)

    synthesizer = make_synthesizer(piper_voice=str(path))
    assert isinstance(synthesizer, PiperSynthesizer)
    assert synthesizer.name == "piper (en_US-test-medium)"
    pcm16 = synthesizer.synthesize("One second. Two seconds.")
    assert seconds(pcm16) == pytest.approx(2.0, abs=0.01)
    assert rms(pcm16) == pytest.approx(8000 / np.sqrt(2), rel=0.02)
    assert synthesizer.synthesize(" \x00 ") == b""
    synthesizer.synthesize("Say\x07[[h@l'oU]] and [[[x]]].")
    make_synthesizer(piper_voice=str(path))

    [(loaded_path, voice)] = loaded  # loaded once for both synthesizers
    assert loaded_path == str(path)
    assert voice.texts == ["One second. Two seconds.", "Say [h@l'oU] and [x]."]
