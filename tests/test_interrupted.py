"""Conversations a crashed server left open are ended as interrupted, and only those."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from voicechat.models import Conversation

pytestmark = pytest.mark.django_db


def conversation(user, **fields) -> Conversation:
    found = Conversation.objects.create(user=user, engine="x", deployment="x", endpoint_shape="ga", voice="alloy")
    Conversation.objects.filter(pk=found.pk).update(**fields)
    return Conversation.objects.get(pk=found.pk)


def test_the_command_ends_only_conversations_no_server_holds(user):
    now = timezone.now()
    left = conversation(user, last_seen_at=now - timedelta(minutes=10))
    never_seen = conversation(user, started_at=now - timedelta(minutes=10), last_seen_at=None)
    live = conversation(user, last_seen_at=now - timedelta(seconds=10))  # another process holds it
    finished = conversation(user, ended_at=now - timedelta(hours=1), end_reason="client_closed")

    out = StringIO()
    call_command("close_interrupted", stdout=out)
    assert out.getvalue().strip() == "Ended 2 conversations left open by a stopped server."

    left.refresh_from_db()
    assert (left.end_reason, left.ended_at) == ("interrupted", left.last_seen_at)  # its last sign of life
    never_seen.refresh_from_db()
    assert (never_seen.end_reason, never_seen.ended_at) == ("interrupted", never_seen.started_at)
    live.refresh_from_db()
    assert live.ended_at is None
    finished.refresh_from_db()
    assert finished.end_reason == "client_closed"


def test_the_staleness_can_be_chosen(user):
    live = conversation(user, last_seen_at=timezone.now() - timedelta(seconds=10))
    call_command("close_interrupted", "--stale-seconds", "5", stdout=StringIO())
    live.refresh_from_db()
    assert live.end_reason == "interrupted"
