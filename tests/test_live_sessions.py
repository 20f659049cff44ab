"""Staff see the live sessions in the admin and end one; each socket session logs a start and an end line."""

import asyncio
import json
import logging
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests.test_admin import client_for
from tests.test_consumer import conversation, ended, saved_turns, spoken_turn, started
from voicechat import services
from voicechat.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = reverse("admin:voicechat_livesession_changelist")


@database_sync_to_async
def admin_get(user, url: str):
    return client_for(user).get(url)


@database_sync_to_async
def end_from_admin(user, *conversation_ids: int):
    return client_for(user).post(
        LIVE, {"action": "end_sessions", "_selected_action": [str(pk) for pk in conversation_ids]}, follow=True
    )


async def test_live_sessions_are_listed_with_the_process_holding_them(fake_service, user, staff):
    browser, live_id = await started(user)
    finished = await database_sync_to_async(Conversation.objects.create)(
        user=user, engine="e", deployment="d", endpoint_shape="ga", voice="alloy", ended_at=timezone.now()
    )
    stale = await database_sync_to_async(Conversation.objects.create)(
        user=user, engine="e", deployment="d", endpoint_shape="ga", voice="alloy",
        last_seen_at=timezone.now() - services.STALE_AFTER - timedelta(seconds=5),
    )  # fmt: skip

    page = await admin_get(staff, LIVE)

    assert page.status_code == 200
    shown = [row.pk for row in page.context["cl"].result_list]
    assert shown == [live_id], (finished.pk, stale.pk)
    body = page.content.decode()
    assert services.server_name() in body
    assert reverse("admin:voicechat_conversation_change", args=[live_id]) in body
    await browser.disconnect()
    await ended(live_id)
    assert [row.pk for row in (await admin_get(staff, LIVE)).context["cl"].result_list] == []


async def test_staff_end_a_live_session_and_what_was_said_is_saved(fake_service, user, staff):
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    await saved_turns(conversation_id, 2)

    page = await end_from_admin(staff, conversation_id)

    assert "Asked 1 session to end" in page.content.decode()
    events = await browser.until_closed()
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "staff_ended"
    assert "staff" in events[-1]["error"]["message"]
    assert "root" not in events[-1]["error"]["message"]  # who did it is for staff only
    assert browser.close_code == 4410
    record = await ended(conversation_id)
    assert record.end_reason == "staff_ended"
    assert record.end_detail == "Ended by staff (root) in the admin."
    assert [(t.role, t.status) for t in await saved_turns(conversation_id, 2)] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    await asyncio.wait_for(fake_service.closed.wait(), 2)  # the upstream was closed too


async def test_ending_a_session_needs_the_permission(fake_service, user, django_user_model):
    browser, conversation_id = await started(user)
    viewer = await database_sync_to_async(django_user_model.objects.create_user)(
        username="viewer", password="s3cret-pass", is_staff=True
    )
    view = await database_sync_to_async(Permission.objects.get)(codename="view_livesession")
    await database_sync_to_async(viewer.user_permissions.add)(view)

    page = await admin_get(viewer, LIVE)
    assert page.status_code == 200
    assert [row.pk for row in page.context["cl"].result_list] == [conversation_id]
    assert "end_sessions" not in page.content.decode()  # no action offered

    await end_from_admin(viewer, conversation_id)
    assert (await conversation(conversation_id)).ended_at is None
    await browser.send({"type": "input_audio_buffer.clear"})
    assert (await browser.until("input_audio_buffer.cleared"))[-1]["type"] == "input_audio_buffer.cleared"
    await browser.disconnect()
    await ended(conversation_id)


async def test_a_channel_layer_that_does_not_answer_is_reported(fake_service, user, staff, settings):
    browser, conversation_id = await started(user)
    # From here on the layer points at a closed loopback port.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:9/0", "socket_connect_timeout": 0.5}]},
        }
    }

    page = await end_from_admin(staff, conversation_id)

    assert "could not be reached: the channel layer (REDIS_URL) did not answer" in page.content.decode()
    assert (await conversation(conversation_id)).ended_at is None
    await browser.disconnect()
    await ended(conversation_id)


class FailingLayer(InMemoryChannelLayer):
    """A channel layer that breaks once a socket listens to it."""

    async def receive(self, channel):
        raise ConnectionError("the channel layer went away")


async def test_a_failing_channel_layer_leaves_the_conversation_going(fake_service, user, settings, caplog):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_live_sessions.FailingLayer"}}
    browser, conversation_id = await started(user)

    await spoken_turn(browser)

    assert [(t.role, t.status) for t in await saved_turns(conversation_id, 2)] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert "The channel layer failed: this socket no longer hears from it" in caplog.text
    await browser.disconnect()
    assert (await ended(conversation_id)).end_reason == "client_closed"


async def test_each_session_logs_a_start_and_an_end_line(fake_service, user, caplog):
    caplog.set_level(logging.INFO, logger="voicechat")  # LOG_LEVEL's default
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    await saved_turns(conversation_id, 2)
    await browser.disconnect()
    await ended(conversation_id)

    lines = [r for r in caplog.records if r.name == "voicechat.sessions"]
    assert [r.event for r in lines] == ["session_started", "session_ended"]
    start, end = lines
    assert (start.conversation_id, start.user_id, start.resumed) == (conversation_id, user.pk, False)
    assert start.getMessage() == (
        f'session_started conversation_id={conversation_id} user_id={user.pk} engine="{start.engine}" resumed=false'
    )
    assert (end.conversation_id, end.user_id, end.turns, end.tokens, end.end_reason) == (
        conversation_id,
        user.pk,
        2,
        120,
        "client_closed",
    )
    assert 0 < end.duration_s < 30
    # No transcript text, audio or key in anything the app logged at its usual level.
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for secret in (fake_service.script.transcript, fake_service.script.reply, fake_service.api_key, '"audio"'):
        assert secret not in logged
