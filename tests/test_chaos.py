"""Faults of the voice service and of browsers, on the full ASGI stack, with the fake service on 127.0.0.1.

Whatever fails, every turn that was completed is in the database: a turn is
completed when the service sent the user's transcription, a typed message's
item, or a response.done whose status is "completed" (FakeSession.completed).
"""

import asyncio
import base64
import contextlib
import json
import logging
import random
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from tests import tally
from tests.browser_socket import BrowserSocket
from tests.conftest import session_cookie
from tests.fake_service import FakeRealtimeService, tone
from tests.test_consumer import APPEND, conversation, ended, open_socket, saved_turns, spoken_turn, started, turns_of
from voicechat.models import Conversation, Turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_connections_closed")]


REPLY = "I am fine, thank you for asking."
TRANSCRIPT = "Hello there, how are you?"


async def events_until(browser: BrowserSocket, event_type: str, timeout: float = 5) -> tuple[list[dict], list]:
    """The JSON object events up to the first of this type, and every other frame (garbage) met on the way."""
    events, others = [], []
    while True:
        message = await browser.communicator.receive_output(timeout)
        assert message["type"] == "websocket.send", f"closed before {event_type}: {message}"
        if message.get("text") is None:
            others.append(message.get("bytes"))
            continue
        browser.frames.append(message["text"])
        try:
            event = json.loads(message["text"])
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            others.append(message["text"])
            continue
        events.append(event)
        if event["type"] == event_type:
            return events, others


async def until_count(browser: BrowserSocket, event_type: str, count: int) -> list[dict]:
    """The events up to the count-th of this type."""
    events = []
    while sum(e["type"] == event_type for e in events) < count:
        event = await browser.receive()
        assert event is not None, f"the socket closed (code {browser.close_code})"
        events.append(event)
    return events


@database_sync_to_async
def saved_by_item(conversation_ids: list[int]) -> dict[tuple[int, str], Turn]:
    turns = Turn.objects.filter(conversation_id__in=conversation_ids)
    return {(turn.conversation_id, turn.item_id): turn for turn in turns}


async def check_completed_saved(completed: dict[int, list[tuple[str, str, str]]], labels: dict | None = None) -> None:
    """Each completed (role, item_id, text), by conversation, is saved as a completed turn with those words."""
    saved = await saved_by_item(list(completed))
    expected = [(conversation_id, turn) for conversation_id, turns in completed.items() for turn in turns]
    missing = []
    for conversation_id, (role, item_id, text) in expected:
        turn = saved.get((conversation_id, item_id))
        if turn is None or (turn.role, turn.status, turn.text) != (role, "completed", text):
            found = turn and (turn.role, turn.status, turn.text, turn.detail)
            missing.append(((labels or {}).get(conversation_id, conversation_id), role, item_id, text, found))
    tally.add(turns_expected=len(expected), turns_saved=len(expected) - len(missing))
    assert not missing, f"{len(missing)} of {len(expected)} completed turns not saved as such: {missing[:10]}"


def app_errors(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


# The service stalls


async def test_a_stalled_reply_completes_and_is_saved_once_the_service_goes_on(fake_service, user, caplog):
    fake_service.script.reply_ms = 1000
    fake_service.script.stall_after_ms = 300
    browser, conversation_id = await started(user)
    await browser.send(APPEND)
    await browser.send({"type": "input_audio_buffer.commit"})
    await asyncio.wait_for(fake_service.stalled.wait(), 5)

    # While the service says nothing: the socket stays open, no error, the user's words are saved.
    meanwhile = await until_count(browser, "response.output_audio.delta", 3)  # what came before the stall
    for _ in range(10):  # and its words, then nothing
        if await browser.communicator.receive_nothing(timeout=0.5):
            break
        event = await browser.receive()
        assert event is not None, f"the socket closed during the stall (code {browser.close_code})"
        meanwhile.append(event)
    kinds = [e["type"] for e in meanwhile]
    assert (kinds.count("response.output_audio.delta"), kinds.count("error"), kinds.count("response.done")) == (3, 0, 0)
    assert [(t.role, t.status, t.text) for t in await saved_turns(conversation_id, 1)] == [
        ("user", "completed", TRANSCRIPT)
    ]
    assert (await conversation(conversation_id)).ended_at is None

    fake_service.release_stall()
    events = await browser.until("response.done")
    assert events[-1]["response"]["status"] == "completed"
    assert sum(e["type"] == "response.output_audio.delta" for e in meanwhile + events) == 10
    await browser.communicator.disconnect(timeout=5)
    await check_completed_saved({conversation_id: fake_service.connections[0].completed})
    assert [(t.role, t.status, t.text) for t in await turns_of(conversation_id)] == [
        ("user", "completed", TRANSCRIPT),
        ("assistant", "completed", REPLY),
    ]
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == ["stall"]
    assert not app_errors(caplog)


async def test_a_stall_that_times_out_on_its_own_loses_nothing(fake_service, user):
    fake_service.script.stall_after_ms = 200
    fake_service.script.stall_seconds = 0.5
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    await spoken_turn(browser)
    await browser.communicator.disconnect(timeout=5)
    await check_completed_saved({conversation_id: fake_service.connections[0].completed})
    assert len(await turns_of(conversation_id)) == 4
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == ["stall", "stall"]


# The service sends garbage


async def test_garbage_from_the_service_is_not_taken_for_turns(fake_service, user, caplog):
    fake_service.script.garbage_after_ms = 200
    browser, conversation_id = await started(user)
    for _ in range(2):
        await browser.send(APPEND)
        await browser.send({"type": "input_audio_buffer.commit"})
        events, garbage = await events_until(browser, "response.done")
        assert events[-1]["response"]["status"] == "completed"  # the relay went on through it
        assert garbage and not [frame for frame in garbage if isinstance(frame, bytes)]  # binary frames stop here
    await browser.communicator.disconnect(timeout=5)
    found = await ended(conversation_id)
    assert found.end_reason == "client_closed"
    await check_completed_saved({conversation_id: fake_service.connections[0].completed})
    turns = await turns_of(conversation_id)
    assert [(t.seq, t.role, t.status) for t in turns] == [
        (1, "user", "completed"),
        (2, "assistant", "completed"),
        (3, "user", "completed"),
        (4, "assistant", "completed"),
    ]
    assert not {"item_9998", "item_9999"} & {t.item_id for t in turns}
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == ["garbage", "garbage"]
    assert not app_errors(caplog)


# The service connection ends in the middle of a reply


@pytest.mark.parametrize("fault", ["close", "reset"])
async def test_a_connection_lost_mid_reply_goes_on_in_a_new_session(fake_service, user, fault, caplog):
    fake_service.script.reply_ms = 1000
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    setattr(fake_service.script, f"{fault}_after_ms", 400)
    await browser.send(APPEND)
    await browser.send({"type": "input_audio_buffer.commit"})
    events = await browser.until("session.updated")  # the new session's
    setattr(fake_service.script, f"{fault}_after_ms", None)
    heard = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    notices = [e["message"] for e in events if e["type"] == "voicechat.notice"]
    assert "reconnecting" in notices[0]
    assert notices[-1] == "Reconnected: the assistant remembers 4 turns."
    assert "response.done" not in [e["type"] for e in events]  # the reply was cut
    await spoken_turn(browser)
    await browser.communicator.disconnect(timeout=5)

    found = await ended(conversation_id)
    assert (found.resumes, found.end_reason) == (1, "client_closed")
    await check_completed_saved({conversation_id: [t for s in fake_service.connections for t in s.completed]})
    turns = await turns_of(conversation_id)
    assert [(t.seq, t.role, t.status) for t in turns] == [
        (1, "user", "completed"),
        (2, "assistant", "completed"),
        (3, "user", "completed"),
        (4, "assistant", "interrupted"),
        (5, "user", "completed"),
        (6, "assistant", "completed"),
    ]
    cut = turns[3]
    assert cut.text == heard and heard and heard.strip() != REPLY
    assert "cut off" in cut.detail
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == [fault]
    assert not app_errors(caplog)


@pytest.mark.parametrize(("fault", "detail"), [("close", "code 1011"), ("reset", "code 1006")])
async def test_a_connection_lost_mid_reply_ends_the_conversation_when_no_resumption_is_left(
    fake_service, user, settings, fault, detail
):
    settings.REALTIME_MAX_RESUMES = 0
    fake_service.script.reply_ms = 1000
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    setattr(fake_service.script, f"{fault}_after_ms", 400)
    await browser.send(APPEND)
    await browser.send({"type": "input_audio_buffer.commit"})
    events = await browser.until_closed()
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "upstream_closed"
    assert "connection to the voice service was lost" in events[-1]["error"]["message"]
    assert detail in events[-1]["error"]["message"]
    assert browser.close_code == 4502

    found = await ended(conversation_id)
    assert found.end_reason == "upstream_closed"
    await check_completed_saved({conversation_id: fake_service.connections[0].completed})
    turns = await turns_of(conversation_id)
    assert [(t.role, t.status) for t in turns] == [
        ("user", "completed"),
        ("assistant", "completed"),
        ("user", "completed"),
        ("assistant", "interrupted"),
    ]
    assert "cut off" in turns[3].detail
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == [fault]


# The service throttles new sessions


def retry_notices(events: list[dict]) -> list[dict]:
    """The notices of a new attempt to connect, checked for what every one of them holds."""
    notices = [e for e in events if e["type"] == "voicechat.notice" and "retry_in" in e]
    assert notices
    attempts = [n["attempt"] for n in notices]
    assert attempts == list(range(attempts[0], attempts[0] + len(notices)))  # counted one by one
    assert len({n["attempts"] for n in notices}) == 1
    assert all(n["attempt"] <= n["attempts"] and n["message"] for n in notices)
    return notices


@pytest.mark.parametrize(("status", "retry_after"), [(429, "1"), (503, None)])
async def test_a_throttled_connection_is_tried_again_and_the_conversation_works(
    fake_service, user, settings, status, retry_after
):
    settings.REALTIME_CONNECT_RETRIES = 3
    settings.REALTIME_RETRY_BASE_SECONDS = 0.02
    settings.REALTIME_RETRY_MAX_SECONDS = 2.0
    fake_service.throttle_handshakes = 2
    fake_service.throttle_status = status
    fake_service.retry_after = retry_after
    browser = await open_socket(user)
    events = await browser.until("session.updated", timeout=10)
    notices = retry_notices(events)
    assert len(notices) == 2
    if retry_after is not None:
        # What the service asked for, within REALTIME_RETRY_MAX_SECONDS (the doubling alone would wait 0.04 s).
        assert [n["retry_in"] for n in notices] == [1, 1]
    else:
        assert all(0 < n["retry_in"] <= 0.04 for n in notices)  # 0.02 s, then 0.04 s, jittered down
    assert not [e for e in events if e["type"] == "error"]
    assert len(fake_service.paths) == 3
    conversation_id = next(e["conversation_id"] for e in events if e["type"] == "voicechat.conversation")
    await spoken_turn(browser)
    await browser.communicator.disconnect(timeout=5)
    found = await ended(conversation_id)
    assert found.end_reason == "client_closed"
    await check_completed_saved({conversation_id: fake_service.connections[0].completed})
    assert len(await turns_of(conversation_id)) == 2
    tally.add(faults=len(fake_service.faults))
    assert fake_service.faults == [f"handshake {status}"] * 2


@database_sync_to_async
def latest_conversation_id(user) -> int:
    return user.conversations.latest("pk").pk


async def test_more_throttling_than_retries_closes_with_the_rate_limit_error(fake_service, user, settings):
    settings.REALTIME_CONNECT_RETRIES = 2
    settings.REALTIME_RETRY_BASE_SECONDS = 0.02
    settings.REALTIME_RETRY_MAX_SECONDS = 0.1
    fake_service.throttle_handshakes = 5
    fake_service.retry_after = "30"
    browser = await open_socket(user)
    events = await browser.until_closed(timeout=10)
    notices = retry_notices(events)
    assert [n["retry_in"] for n in notices] == [0.1, 0.1]  # Retry-After, held to REALTIME_RETRY_MAX_SECONDS
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "rate_limited"
    assert "throttling requests (HTTP 429)" in events[-1]["error"]["message"]
    assert browser.close_code == 4429
    assert len(fake_service.paths) == 3  # the first attempt and REALTIME_CONNECT_RETRIES more
    assert fake_service.connections == []
    found = await conversation(await latest_conversation_id(user))
    assert found.end_reason == "rate_limited"
    tally.add(faults=len(fake_service.faults))
    assert len(fake_service.faults) == 3


# Many sessions at once, half of them killed


SESSIONS = 50
TURNS = 3
USERS = 5
KILLS = ("browser", "upstream", "both")


@dataclass
class Plan:
    index: int
    kill: str | None  # None: the session is left alone
    kill_turn: int = 0  # the turn during which it is killed...
    kill_delay: float = 0.0  # ...this long after the turn was sent


@dataclass
class ChaosSession:
    """One browser's conversation: TURNS spoken turns, unless it is killed."""

    plan: Plan
    browser: BrowserSocket
    service: FakeRealtimeService
    audio: str  # base64 audio of this session alone, which tells its service sessions apart
    conversation_id: int | None = None
    responses: int = 0  # replies completed, as the browser saw them
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # turns the browser saw completed
    kill_turn_reached: asyncio.Event = field(default_factory=asyncio.Event)
    faults: int = 0
    probes: int = 0
    closed_by_server: bool = False

    async def run(self) -> None:
        assert await self.browser.connect()
        play = asyncio.create_task(self.play())
        if self.plan.kill is None:
            await play
            await self.browser.communicator.disconnect(timeout=10)
            return
        reached = asyncio.create_task(self.kill_turn_reached.wait())
        await asyncio.wait({play, reached}, return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
        await asyncio.sleep(self.plan.kill_delay)
        if self.plan.kill in ("upstream", "both"):
            await self.reset_upstream()
        if self.plan.kill in ("browser", "both"):
            play.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await play
            self.faults += 1
            # A browser gone without a closing handshake: the server reports code 1006.
            await self.browser.communicator.disconnect(code=1006, timeout=10)
            return
        await play
        await self.browser.communicator.disconnect(timeout=10)

    async def play(self) -> None:
        events = await self.browser.until("session.updated", timeout=20)
        self.conversation_id = next(e["conversation_id"] for e in events if e["type"] == "voicechat.conversation")
        turn = 0
        while self.responses < TURNS:
            if turn == self.plan.kill_turn:
                self.kill_turn_reached.set()
            turn += 1
            await self.speak()
            if not await self.until_reply():
                return

    async def speak(self) -> None:
        await self.browser.send({"type": "input_audio_buffer.append", "audio": self.audio})
        await self.browser.send({"type": "input_audio_buffer.commit"})

    async def until_reply(self) -> bool:
        """Wait for a completed reply, speaking again if the turn was lost with its service session."""
        while True:
            event = await self.browser.receive(timeout=20)
            if event is None:
                self.closed_by_server = True
                return False
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                self.seen.append(("user", event["item_id"], event["transcript"]))
            elif event["type"] == "voicechat.notice" and event["message"].startswith("Reconnected"):
                if not await self.turn_in_new_session():
                    await self.speak()  # what was said went with the lost session: say it again
            elif event["type"] == "response.done" and event["response"]["status"] == "completed":
                for item in event["response"]["output"]:
                    self.seen.append(("assistant", item["id"], item["content"][0]["transcript"]))
                self.responses += 1
                return True

    async def turn_in_new_session(self) -> bool:
        """Whether the turn being waited for reached the new service session (so that its reply is coming).

        A probe sent after it reaches the new session after it, if at all: frames keep their order.
        """
        self.probes += 1
        probe = f"probe-{self.plan.index}-{self.probes}"
        await self.browser.send({"type": "input_audio_buffer.clear", "event_id": probe})
        for _ in range(250):
            for session in self.service.connections:
                if any(e.get("event_id") == probe for e in session.received):
                    return any(e.get("audio") == self.audio for e in session.received)
            await asyncio.sleep(0.02)
        raise AssertionError(f"session {self.plan.index}: the new service session never got {probe}")

    async def reset_upstream(self) -> None:
        for _ in range(200):  # the turn's audio is on its way to the service
            session = self.service.session_with_audio(self.audio)
            if session is not None:
                await session.reset()
                self.faults += 1
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"session {self.plan.index}: no service session received its audio")

    def service_completed(self) -> list[tuple[str, str, str]]:
        """What the service completed in every session that heard this browser."""
        return [
            turn
            for session in self.service.connections
            if any(e.get("audio") == self.audio for e in session.received)
            for turn in session.completed
        ]


@database_sync_to_async
def chaos_users() -> list:
    model = get_user_model()
    return [model.objects.create_user(username=f"chaos{n}", password="s3cret-pass") for n in range(USERS)]


@database_sync_to_async
def conversations_of(ids: list[int]) -> dict[int, Conversation]:
    return {found.pk: found for found in Conversation.objects.filter(pk__in=ids)}


async def test_fifty_sessions_with_half_of_them_killed_lose_no_completed_turn(fake_service, settings):
    settings.REALTIME_MAX_SESSIONS_PER_USER = 0  # no limit: ten sessions per user at once
    settings.REALTIME_MAX_RESUMES = 3
    fake_service.script.chunk_delay = 0.02  # replies take a moment, so that kills land inside them too
    rng = random.Random(5)
    killed = set(rng.sample(range(SESSIONS), SESSIONS // 2))
    plans = [
        Plan(n, rng.choice(KILLS), rng.randrange(TURNS), rng.uniform(0, 0.3)) if n in killed else Plan(n, None)
        for n in range(SESSIONS)
    ]
    users = await chaos_users()
    cookies = [await database_sync_to_async(session_cookie)(u) for u in users]
    sessions = [
        ChaosSession(
            plan,
            BrowserSocket(cookies[plan.index % USERS]),
            fake_service,
            base64.b64encode(tone(200, 300 + 7 * plan.index)).decode(),
        )
        for plan in plans
    ]
    assert len({s.audio for s in sessions}) == SESSIONS

    await asyncio.wait_for(asyncio.gather(*(s.run() for s in sessions)), 90)

    tally.add(faults=sum(s.faults for s in sessions))
    assert sum(s.faults for s in sessions) >= SESSIONS // 2
    # A browser that vanished took the frames still on their way to it: its completed turns are those it saw.
    vanished = {s.conversation_id for s in sessions if s.plan.kill in ("browser", "both")}
    await check_completed_saved(
        {s.conversation_id: s.seen if s.conversation_id in vanished else s.service_completed() for s in sessions},
        {s.conversation_id: (s.conversation_id, s.plan, s.responses, s.faults) for s in sessions},
    )

    found = await conversations_of([s.conversation_id for s in sessions])
    for session in sessions:
        conversation_found = found[session.conversation_id]
        state = (session.plan, conversation_found.resumes, conversation_found.end_reason, conversation_found.end_detail)
        assert conversation_found.ended_at is not None, state
        assert conversation_found.end_reason == "client_closed", state
        if session.conversation_id not in vanished:
            # Left alone, or its service connection reset and the conversation went on: every turn spoken.
            assert (session.responses, session.closed_by_server) == (TURNS, False), state
    survivors = [s for s in sessions if s.plan.kill is None]
    saved = await saved_by_item([s.conversation_id for s in survivors])
    for session in survivors:
        theirs = sorted((t for (c, _), t in saved.items() if c == session.conversation_id), key=lambda t: t.seq)
        assert [(t.role, t.status) for t in theirs] == [("user", "completed"), ("assistant", "completed")] * TURNS
