"""Recognition in worker processes, as the engine's sessions use it."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.local_engine.audio import clip_24k, to_16k
from voicechat.local_engine.recognition_processes import process_recognizer


def recognise(recognizer, clip: str) -> str:
    audio = to_16k(clip_24k(clip))
    utterance = recognizer.start()
    for offset in range(0, len(audio), 640):
        utterance.feed(audio[offset : offset + 640])
    return utterance.finish()


def test_a_clip_is_recognised_in_a_worker_process():
    recognizer = process_recognizer()
    assert recognise(recognizer, "lights_flite_24k.wav") == "turn on the kitchen lights"
    # The same recognizer takes the next turn.
    assert recognise(recognizer, "joke_flite_24k.wav") == "please tell me a joke"


def test_sessions_recognise_at_once_without_mixing_their_audio():
    recognizers = [process_recognizer() for _ in range(4)]
    clips = ["lights_flite_24k.wav", "joke_flite_24k.wav", "hello_flite_24k.wav", "lights_flite_24k.wav"]
    with ThreadPoolExecutor(4) as pool:
        heard = list(pool.map(recognise, recognizers, clips))
    assert heard == [
        "turn on the kitchen lights",
        "please tell me a joke",
        "hello what is the weather like today",
        "turn on the kitchen lights",
    ]


def test_a_failure_in_the_worker_is_reported_and_the_recognizer_goes_on():
    recognizer = process_recognizer()
    utterance = recognizer.start()
    assert utterance.finish() == ""
    with pytest.raises(RuntimeError, match="KeyError"):  # an utterance ends once
        utterance.finish()
    assert recognise(recognizer, "joke_flite_24k.wav") == "please tell me a joke"
