"""Limits on a socket and on a user, enforced by the consumer against the fake service."""

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from tests.test_consumer import APPEND, conversation, ended, open_socket, saved_turns, spoken_turn, started
from voicechat import ledger
from voicechat.models import Conversation, UsageEntry

pytestmark = pytest.mark.django_db(transaction=True)


async def closed_with_error(browser) -> dict:
    """The error event the socket was closed with."""
    events = await browser.until_closed()
    errors = [e for e in events if e["type"] == "error"]
    assert errors, events
    return errors[-1]["error"]


# Per socket: how fast and how badly it may send


async def test_events_beyond_the_rate_are_refused_and_not_forwarded(fake_service, user, settings):
    settings.REALTIME_MAX_CLIENT_EVENTS_PER_SECOND = 10  # a burst of 20 at once
    settings.REALTIME_MAX_REFUSED_FRAMES = 0  # no closing: only the rate is tested here
    browser, _ = await started(user)
    for _ in range(40):
        await browser.send(APPEND)
    await asyncio.sleep(0.3)  # the bucket refills: three more events may pass
    await browser.send({"type": "input_audio_buffer.commit"})
    events = await browser.until("input_audio_buffer.committed")  # the socket is still open
    errors = [e["error"] for e in events if e["type"] == "error"]
    forwarded = len(fake_service.of_type("input_audio_buffer.append"))
    assert forwarded >= 20  # the burst, and what the rate refilled meanwhile
    assert len(errors) == 40 - forwarded > 0
    assert {e["code"] for e in errors} == {"client_rate_limited"}
    assert "at most 10 per second" in errors[0]["message"]
    await browser.disconnect()


async def test_repeated_abuse_closes_the_socket_and_keeps_the_conversation(fake_service, user, settings):
    settings.REALTIME_MAX_REFUSED_FRAMES = 5
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    for _ in range(6):
        await browser.send("not json")
    error = await closed_with_error(browser)
    assert error["code"] == "policy"
    assert "6 messages in a minute were refused" in error["message"]
    assert browser.close_code == 4008
    found = await ended(conversation_id)
    assert found.end_reason == "policy"
    assert len(await saved_turns(conversation_id, 2)) == 2


# Per user: how many at once


async def test_a_user_may_hold_only_so_many_conversations_at_once(fake_service, user, other_user, settings):
    settings.REALTIME_MAX_SESSIONS_PER_USER = 1
    first, first_id = await started(user)
    second = await open_socket(user)
    error = await closed_with_error(second)
    assert second.close_code == 4409
    assert "You already have 1 conversation open" in error["message"]
    assert len(fake_service.paths) == 1  # no upstream session for the refused one
    assert await Conversation.objects.filter(user=user).acount() == 1

    someone_else, _ = await started(other_user)  # the limit is per user
    await someone_else.disconnect()
    await first.disconnect()
    await ended(first_id)
    again, _ = await started(user)  # a closed conversation no longer counts
    await again.disconnect()


async def test_a_conversation_left_by_a_stopped_server_does_not_count(fake_service, user, settings):
    settings.REALTIME_MAX_SESSIONS_PER_USER = 1
    await Conversation.objects.acreate(
        user=user,
        engine="x",
        deployment="x",
        endpoint_shape="ga",
        voice="alloy",
        last_seen_at=timezone.now() - timedelta(minutes=5),
    )
    browser, _ = await started(user)
    await browser.disconnect()


# Per conversation: how long


async def test_the_session_length_limit_ends_and_saves_the_conversation(fake_service, user, settings):
    settings.REALTIME_MAX_SESSION_MINUTES = 1.5 / 60  # a second and a half
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    error = await closed_with_error(browser)
    assert error["code"] == "session_limit"
    assert "maximum length of 0.025 minutes" in error["message"]
    assert browser.close_code == 4001
    found = await ended(conversation_id)
    assert found.end_reason == "session_limit"
    assert found.duration >= timedelta(seconds=1.5)
    assert len(await saved_turns(conversation_id, 2)) == 2


async def test_idle_conversation_is_ended_and_activity_keeps_it_open(fake_service, user, settings):
    settings.REALTIME_IDLE_TIMEOUT_MINUTES = 1 / 60  # a second
    browser, conversation_id = await started(user)
    for _ in range(8):  # two seconds of audio: never a second without a message
        await browser.send(APPEND)
        await asyncio.sleep(0.25)
    assert (await conversation(conversation_id)).ended_at is None
    error = await closed_with_error(browser)
    assert error["code"] == "idle"
    assert browser.close_code == 4408
    assert (await ended(conversation_id)).end_reason == "idle"


# Per user: the daily budget


async def test_over_the_token_budget_a_user_is_refused_before_any_upstream_connection(fake_service, user, settings):
    settings.BUDGET_DAILY_TOKENS = 100  # each fake response uses 120
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    error = await closed_with_error(browser)  # the response that crossed the budget ends the conversation
    assert error["code"] == "budget"
    assert browser.close_code == 4402
    assert (await ended(conversation_id)).end_reason == "budget"
    assert len(await saved_turns(conversation_id, 2)) == 2

    again = await open_socket(user)
    error = await closed_with_error(again)
    assert error["code"] == "budget"
    assert "budget" in error["message"]
    assert again.close_code == 4402
    assert len(fake_service.paths) == 1  # refused before any upstream connection
    assert await Conversation.objects.filter(user=user).acount() == 1

    await database_sync_to_async(ledger.budget_reset)(user=user, by=None)  # what staff do in the admin
    browser, _ = await started(user)
    await browser.disconnect()


async def test_the_time_budget_caps_the_conversation(fake_service, user, settings):
    settings.BUDGET_DAILY_MINUTES = 2 / 60  # two seconds a day
    browser, conversation_id = await started(user)
    error = await closed_with_error(browser)
    assert error["code"] == "budget"
    assert "conversation time" in error["message"]
    found = await ended(conversation_id)
    assert found.end_reason == "budget"
    time_entry = await UsageEntry.objects.aget(conversation_id=conversation_id, kind="time")
    assert time_entry.seconds >= 2  # counted in the ledger, so the next connection is refused
    again = await open_socket(user)
    assert (await closed_with_error(again))["code"] == "budget"
