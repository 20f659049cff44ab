"""Turn detection on speech clips."""

from tests.local_engine.audio import clip_24k, silence, to_16k
from voicechat.local_engine.turn_detection import SpeechAudio, SpeechStarted, SpeechStopped, TurnDetector


def detect(pcm16_16k: bytes, chunk_ms: int = 40, **kwargs) -> list:
    detector = TurnDetector(**kwargs)
    step = 16000 * chunk_ms // 1000 * 2
    events = []
    for offset in range(0, len(pcm16_16k), step):
        events.extend(detector.feed(pcm16_16k[offset : offset + step]))
    return events


def test_two_utterances_are_two_turns():
    events = detect(to_16k(clip_24k("two_utterances_24k.wav") + silence(600)), silence_ms=500)
    marks = [e for e in events if not isinstance(e, SpeechAudio)]
    assert [type(e) for e in marks] == [SpeechStarted, SpeechStopped, SpeechStarted, SpeechStopped]
    first_start, first_stop, second_start, second_stop = marks
    # The clip has speech at about 0.76-2.95 s and 4.58-6.1 s.
    assert 600 <= first_start.start_ms <= 900
    assert 2800 <= first_stop.end_ms <= 3100
    assert 4400 <= second_start.start_ms <= 4700
    assert 5900 <= second_stop.end_ms <= 6300


def test_the_turn_keeps_audio_from_before_the_start():
    events = detect(to_16k(silence(1000) + clip_24k("hello_24k.wav") + silence(800)), prefix_padding_ms=300)
    started = next(e for e in events if isinstance(e, SpeechStarted))
    # The pre-roll reaches back about 300 ms before the detection window.
    assert len(started.audio) >= 16000 * 2 * 300 // 1000
    spoken = started.audio + b"".join(e.audio for e in events if isinstance(e, SpeechAudio))
    assert len(spoken) >= 16000 * 2 * 1.5


def test_a_shorter_silence_ends_the_turn_sooner():
    audio = to_16k(clip_24k("hello_24k.wav") + silence(1000))
    slow = next(e for e in detect(audio, silence_ms=800) if isinstance(e, SpeechStopped))
    fast = next(e for e in detect(audio, silence_ms=200) if isinstance(e, SpeechStopped))
    assert fast.end_ms <= slow.end_ms


def test_silence_and_odd_chunk_sizes():
    assert detect(to_16k(silence(2000)), chunk_ms=7) == []
    events = detect(to_16k(clip_24k("hello_24k.wav") + silence(800)), chunk_ms=7)
    assert [type(e) for e in events if not isinstance(e, SpeechAudio)] == [SpeechStarted, SpeechStopped]
