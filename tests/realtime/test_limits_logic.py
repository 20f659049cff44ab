"""The pure parts of the limits: the rate bucket, the refusal window, the deadlines and the retry waits."""

import json

import pytest

from voicechat.realtime.bridge import Bridge
from voicechat.realtime.deadlines import BUDGET, IDLE, SESSION_LIMIT, Deadlines
from voicechat.realtime.failures import failure_for_status, failure_timeout
from voicechat.realtime.rate import TokenBucket, WindowCounter
from voicechat.realtime.retry import retry_after_seconds, retry_delay
from voicechat.realtime.session_config import SessionSettings, Shape


def test_the_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(10, burst=20, now=0.0)
    assert sum(bucket.allow(0.0) for _ in range(30)) == 20
    assert not bucket.allow(0.05)  # half a token has come back
    assert bucket.allow(0.1)
    assert sum(bucket.allow(10.0) for _ in range(30)) == 20  # never more than the burst


def test_a_rate_of_zero_is_no_limit():
    bucket = TokenBucket(0, burst=0, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(1000))


def test_the_window_forgets_what_is_older_than_it():
    window = WindowCounter(3, 60.0)
    for second in (0, 10, 20, 30):
        window.add(second)
    assert window.over
    window.add(65)  # 0 has left the window: 10, 20, 30, 65
    assert window.over
    window.add(85)  # 30, 65, 85
    assert not window.over


def test_a_window_limit_of_zero_never_is_over():
    window = WindowCounter(0, 60.0)
    for second in range(100):
        window.add(second * 0.01)
    assert not window.over


def bridge(clock, **limits) -> Bridge:
    """A bridge whose service session is open, its configuration sent."""
    session = SessionSettings(voice="alloy", instructions="", transcription_model="whisper-1", vad_silence_ms=200)
    relay = Bridge(shape=Shape.GA, session=session, max_client_frame_bytes=1000, clock=clock, **limits)
    relay.start()
    relay.data_to_send_upstream()
    return relay


def test_the_bridge_refuses_frames_beyond_the_rate_and_turns_abusive():
    now = [0.0]
    relay = bridge(lambda: now[0], max_events_per_second=2, max_refused_per_minute=3)
    commit = json.dumps({"type": "input_audio_buffer.commit"})
    for _ in range(6):
        relay.receive_client(commit)
    assert len(relay.data_to_send_upstream()) == 4  # the burst of two seconds' worth
    errors = [json.loads(frame)["error"] for frame in relay.data_to_send_client()]
    assert [e["code"] for e in errors] == ["client_rate_limited"] * 2
    assert not relay.abusive
    now[0] = 10.0
    relay.receive_client("nonsense")
    relay.receive_client("nonsense")
    assert relay.abusive and relay.recent_refusals == 4
    now[0] = 100.0  # a minute later the old refusals no longer count
    relay.receive_client("nonsense")
    assert not relay.abusive


def test_deadlines_take_the_earliest_limit():
    clock = Deadlines(started=100.0, max_seconds=60, budget_seconds=30, idle_seconds=20)
    assert clock.next_due() == 120.0
    clock.activity(115.0)
    assert clock.next_due() == 130.0
    assert clock.due(129.0) is None
    assert clock.due(130.0) == BUDGET
    assert Deadlines(started=0.0, max_seconds=60, idle_seconds=100).due(61.0) == SESSION_LIMIT
    assert Deadlines(started=0.0, max_seconds=60, idle_seconds=10).due(61.0) == IDLE  # reached first


def test_no_limits_no_deadline():
    clock = Deadlines(started=0.0)
    assert clock.next_due() is None
    assert clock.due(1e9) is None


def test_retry_waits_double_with_jitter_and_honour_the_service_within_the_cap():
    assert [retry_delay(n, base=1, cap=8, rand=lambda: 1.0) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    assert [retry_delay(n, base=1, cap=8, rand=lambda: 0.0) for n in range(1, 4)] == [0.5, 1, 2]
    assert retry_delay(1, base=1, cap=8, retry_after=3) == 3
    assert retry_delay(1, base=1, cap=8, retry_after=60) == 8


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "4"}, 4.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_from_the_refusal(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def test_only_transient_failures_are_retried():
    assert failure_for_status(429, deployment="d", retry_after=2).retryable
    assert failure_for_status(429, deployment="d", retry_after=2).retry_after == 2
    assert failure_for_status(503, deployment="d").retryable
    assert not failure_for_status(401, deployment="d").retryable
    assert not failure_for_status(404, deployment="d").retryable
    assert not failure_for_status(400, deployment="d").retryable
    assert failure_timeout("host", 5).retryable
