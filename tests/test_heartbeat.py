"""This process's heartbeat: one write for every conversation it holds, and the abandoned ones ended."""

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.utils import timezone

from tests.test_consumer import ended, started
from voicechat import heartbeat, ledger, services
from voicechat.models import Conversation, UsageEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_connections_closed")]


@database_sync_to_async
def open_conversation(user, **fields) -> tuple[int, int]:
    """A conversation as a socket opens one, changed by `fields`; its id and its time entry's."""
    found = Conversation.objects.create(
        user=user, engine="x", deployment="x", endpoint_shape="ga", voice="alloy", last_seen_at=timezone.now()
    )
    Conversation.objects.filter(pk=found.pk).update(**fields)
    return found.pk, ledger.open_time(conversation_id=found.pk)


@database_sync_to_async
def seen_and_seconds(conversation_id: int, entry_id: int):
    conversation = Conversation.objects.get(pk=conversation_id)
    return conversation.last_seen_at, conversation.end_reason, UsageEntry.objects.get(pk=entry_id).seconds


@pytest.fixture
def holding():
    """Hold conversations in the heartbeat for a test, and let them all go after it."""
    held = []

    def hold(conversation_id: int, entry_id: int | None, *, connected: float) -> heartbeat.Held:
        one = heartbeat.Held(conversation_id, entry_id, started=asyncio.get_running_loop().time() - connected)
        heartbeat.hold(one)
        held.append(one)
        return one

    yield hold
    for one in held:
        heartbeat.release(one)


async def test_one_beat_writes_every_held_conversation_and_ends_those_left_by_a_stopped_process(user, holding):
    long_ago = timezone.now() - services.STALE_AFTER - timedelta(minutes=1)
    first, second, left = [await open_conversation(user, last_seen_at=long_ago) for _ in range(3)]
    before = timezone.now()
    holding(*first, connected=42)
    holding(*second, connected=7.5)

    await heartbeat.beat()

    seen, reason, seconds = await seen_and_seconds(*first)
    assert seen >= before and reason == ""
    assert Decimal("42") <= seconds < Decimal("43")
    seen, reason, seconds = await seen_and_seconds(*second)
    assert seen >= before and reason == ""
    assert Decimal("7.5") <= seconds < Decimal("8.5")
    seen, reason, seconds = await seen_and_seconds(*left)  # no process holds it
    assert (seen, reason, seconds) == (long_ago, "interrupted", Decimal("0"))


async def test_a_beat_never_lowers_the_time_a_socket_saved_at_its_end(user, holding):
    conversation_id, entry_id = await open_conversation(user)
    await database_sync_to_async(ledger.update_times)({entry_id: 50})
    holding(conversation_id, entry_id, connected=10)

    await heartbeat.beat()

    assert (await seen_and_seconds(conversation_id, entry_id))[2] == Decimal("50")


async def test_a_beat_writes_many_conversations_in_slices_with_a_pause_between_them(user, holding, monkeypatch):
    monkeypatch.setattr(heartbeat, "PER_CALL", 2)
    monkeypatch.setattr(heartbeat, "PAUSE", 0.05)
    write, slices = services.conversations_alive, []

    def counted(alive):
        slices.append(sorted(conversation_id for conversation_id, _, _ in alive))
        write(alive)

    monkeypatch.setattr(services, "conversations_alive", counted)
    opened = [await open_conversation(user) for _ in range(5)]
    for conversation_id, entry_id in opened:
        holding(conversation_id, entry_id, connected=30)
    loop = asyncio.get_running_loop()
    began = loop.time()

    await heartbeat.beat()

    assert loop.time() - began >= 2 * 0.05  # two pauses, between three slices
    assert sorted(len(one) for one in slices) == [1, 2, 2]
    written = [conversation_id for one in slices for conversation_id in one]
    assert sorted(written) == sorted(conversation_id for conversation_id, _ in opened)
    for one in opened:
        assert (await seen_and_seconds(*one))[2] >= Decimal("30")


async def test_the_beat_repeats_while_conversations_are_held_and_stops_with_the_last(user, holding, monkeypatch):
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0.05)
    conversation_id, entry_id = await open_conversation(user)
    held = holding(conversation_id, entry_id, connected=1)
    beats = []
    for _ in range(100):  # up to 5 s
        await asyncio.sleep(0.05)
        seconds = (await seen_and_seconds(conversation_id, entry_id))[2]
        if not beats or seconds > beats[-1]:
            beats.append(seconds)
        if len(beats) >= 3:
            break
    assert len(beats) >= 3, beats  # the time written grows, beat after beat

    heartbeat.release(held)

    assert heartbeat._beating is None
    last = (await seen_and_seconds(conversation_id, entry_id))[2]
    await asyncio.sleep(0.3)
    assert (await seen_and_seconds(conversation_id, entry_id))[2] == last


async def test_a_failed_beat_is_logged_and_the_next_one_writes(user, holding, monkeypatch, caplog):
    conversation_id, entry_id = await open_conversation(user)
    holding(conversation_id, entry_id, connected=20)
    write = services.conversations_alive

    def down(alive):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "conversations_alive", down)
    with caplog.at_level(logging.ERROR, logger="voicechat.heartbeat"):
        await heartbeat.beat()
    assert "The heartbeat of 1 conversations could not be written" in caplog.text
    assert (await seen_and_seconds(conversation_id, entry_id))[2] == Decimal("0")

    monkeypatch.setattr(services, "conversations_alive", write)
    await heartbeat.beat()
    assert (await seen_and_seconds(conversation_id, entry_id))[2] >= Decimal("20")


async def test_a_socket_is_held_while_its_conversation_is_open_and_saves_its_time_at_the_end(fake_service, user):
    browser, conversation_id = await started(user)
    held = [one for one in heartbeat._held if one.conversation_id == conversation_id]
    assert len(held) == 1 and held[0].time_entry_id is not None

    await browser.disconnect()
    await ended(conversation_id)

    assert all(one.conversation_id != conversation_id for one in heartbeat._held)
    entry = await database_sync_to_async(UsageEntry.objects.get)(pk=held[0].time_entry_id)
    assert entry.seconds > 0
