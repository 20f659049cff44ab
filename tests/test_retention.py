"""`manage.py purge_conversations`: ended conversations past the retention period go, with their turns."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from voicechat.models import Conversation, Turn, UsageEntry

pytestmark = pytest.mark.django_db


def conversation(user, days_ago: float, ended: bool = True, turns: int = 2) -> Conversation:
    """A conversation that started this many days ago, with its turns."""
    started = timezone.now() - timedelta(days=days_ago)
    created = Conversation.objects.create(
        user=user, deployment="gpt-realtime", endpoint_shape="ga", voice="alloy", engine="Azure OpenAI"
    )
    Conversation.objects.filter(pk=created.pk).update(
        started_at=started, ended_at=started + timedelta(minutes=5) if ended else None
    )
    for seq in range(1, turns + 1):
        Turn.objects.create(
            conversation=created,
            seq=seq,
            role="user" if seq % 2 else "assistant",
            text=f"words {seq}",
            item_id=f"item_{created.pk}_{seq}",
            started_at=started,
            completed_at=started,
        )
    return created


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_conversations", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[int]:
    return set(Conversation.objects.values_list("pk", flat=True))


@pytest.fixture
def history(user, other_user) -> dict[str, Conversation]:
    return {
        "old": conversation(user, days_ago=40, turns=3),
        "old_other_user": conversation(other_user, days_ago=31, turns=2),
        "old_but_open": conversation(user, days_ago=40, ended=False),
        "recent": conversation(user, days_ago=29),
        "fresh": conversation(user, days_ago=2),
    }


def test_ended_conversations_past_the_retention_period_are_deleted(settings, history, user):
    settings.CONVERSATION_RETENTION_DAYS = 30
    entry = UsageEntry.objects.create(user=user, conversation=history["old"], kind="response", total_tokens=90)

    output = purge()

    assert "Deleted 2 conversations (5 turns) that started before" in output
    assert "(30 days ago)" in output
    assert remaining() == {history[name].pk for name in ("old_but_open", "recent", "fresh")}
    assert not Turn.objects.filter(conversation_id__in=[history["old"].pk, history["old_other_user"].pk]).exists()
    assert Turn.objects.count() == 6
    entry.refresh_from_db()
    assert entry.conversation is None and entry.total_tokens == 90  # the cost ledger keeps it


def test_a_dry_run_only_tells(settings, history):
    settings.CONVERSATION_RETENTION_DAYS = 30
    output = purge("--dry-run")
    assert "Would delete 2 conversations (5 turns) that started before" in output
    assert remaining() == {conversation.pk for conversation in history.values()}
    assert Turn.objects.count() == 11


def test_days_on_the_command_line_win_over_the_setting(settings, history):
    settings.CONVERSATION_RETENTION_DAYS = 0
    output = purge("--days", "7")
    assert "Deleted 3 conversations (7 turns)" in output and "(7 days ago)" in output
    assert remaining() == {history["old_but_open"].pk, history["fresh"].pk}

    settings.CONVERSATION_RETENTION_DAYS = 1
    assert "nothing was deleted" in purge("--days", "0")
    assert remaining() == {history["old_but_open"].pk, history["fresh"].pk}


def test_with_no_retention_period_nothing_is_deleted(settings, history):
    settings.CONVERSATION_RETENTION_DAYS = 0
    output = purge()
    assert "No retention period is set (0 days: keep everything), so nothing was deleted." in output
    assert remaining() == {conversation.pk for conversation in history.values()}


def test_open_conversations_are_never_deleted(settings, user):
    settings.CONVERSATION_RETENTION_DAYS = 1
    open_for_long = conversation(user, days_ago=400, ended=False)
    assert "Deleted 0 conversations (0 turns)" in purge()
    assert remaining() == {open_for_long.pk}


def test_nothing_to_delete_and_a_negative_period(settings, user):
    settings.CONVERSATION_RETENTION_DAYS = 30
    assert "Deleted 0 conversations (0 turns)" in purge()
    with pytest.raises(CommandError, match="--days must be 0 or more"):
        purge("--days", "-1")


def test_a_long_backlog_is_deleted_in_batches(settings, user, monkeypatch):
    monkeypatch.setattr("voicechat.management.commands.purge_conversations.BATCH", 2)
    settings.CONVERSATION_RETENTION_DAYS = 10
    for n in range(5):
        conversation(user, days_ago=20 + n, turns=1)
    kept = conversation(user, days_ago=1)
    assert "Deleted 5 conversations (5 turns)" in purge()  # in three statements
    assert remaining() == {kept.pk}
