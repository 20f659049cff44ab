"""The cost ledger, written through the services into a real database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count

from voicechat import ledger, services
from voicechat.models import Conversation, Turn, UsageEntry
from voicechat.realtime.recorder import TranscriptionUsage, TurnRecord, Usage

pytestmark = pytest.mark.django_db

ENGINE = "Azure OpenAI · gpt-realtime (GA)"


def start(user, deployment="gpt-realtime", engine=ENGINE) -> Conversation:
    return Conversation.objects.create(
        user=user, engine=engine, deployment=deployment, endpoint_shape="ga", voice="alloy"
    )


def turn_record(item_id: str, seq: int, role: str = "assistant", text: str = "Hello") -> TurnRecord:
    return TurnRecord(
        item_id=item_id,
        seq=seq,
        role=role,
        text=text,
        status="completed",
        detail="",
        heard_ms=None,
        started_at=1_700_000_000.0,
        completed_at=1_700_000_001.0,
    )


REPLY = Usage(
    response_id="resp_1",
    item_id="item_2",
    item_ids=("item_2",),
    input_tokens=80,
    output_tokens=40,
    total_tokens=120,
    input_text_tokens=20,
    input_audio_tokens=60,
    output_text_tokens=10,
    output_audio_tokens=30,
)


def test_a_response_is_one_priced_row_linked_to_its_turn(user):
    conversation = start(user)
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_2", 2))
    services.record_save(conversation_id=conversation.pk, record=REPLY)
    services.record_save(conversation_id=conversation.pk, record=REPLY)  # a second response, same shape
    entries = list(UsageEntry.objects.order_by("id"))
    assert len(entries) == 2
    first = entries[0]
    assert (first.kind, first.user, first.conversation, first.engine) == ("response", user, conversation, ENGINE)
    assert (first.turn.item_id, first.item_id, first.response_id) == ("item_2", "item_2", "resp_1")
    assert (first.input_text_tokens, first.input_audio_tokens, first.output_text_tokens) == (20, 60, 10)
    assert (first.output_audio_tokens, first.total_tokens) == (30, 120)
    assert first.cost == Decimal("0.004080")
    conversation.refresh_from_db()
    assert (conversation.input_tokens, conversation.output_tokens, conversation.total_tokens) == (160, 80, 240)


def test_a_turn_saved_after_its_usage_is_linked_then(user):
    conversation = start(user)
    services.record_save(conversation_id=conversation.pk, record=REPLY)
    entry = UsageEntry.objects.get()
    assert entry.turn is None
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_2", 2, text="Hel"))
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_2", 2, text="Hello"))
    entry.refresh_from_db()
    assert entry.turn == Turn.objects.get(item_id="item_2")


def test_the_same_item_in_another_conversation_is_not_linked(user):
    mine, other = start(user), start(user)
    services.record_save(conversation_id=mine.pk, record=REPLY)
    services.record_save(conversation_id=other.pk, record=turn_record("item_2", 1))
    assert UsageEntry.objects.get().turn is None


def test_cached_input_in_the_ledger(user):
    conversation = start(user)
    usage = Usage(input_tokens=1000, input_text_tokens=1000, cached_text_tokens=600, total_tokens=1000)
    services.record_save(conversation_id=conversation.pk, record=usage)
    entry = UsageEntry.objects.get()
    assert (entry.input_text_tokens, entry.input_cached_text_tokens, entry.turn) == (1000, 600, None)
    assert entry.cost == Decimal("0.001840")  # 400 * 4 + 600 * 0.4


def test_the_local_engine_costs_nothing(user):
    conversation = start(user, deployment="local", engine="Local engine")
    services.record_save(conversation_id=conversation.pk, record=REPLY)
    entry = UsageEntry.objects.get()
    assert (entry.cost, entry.total_tokens, entry.engine) == (Decimal(0), 120, "Local engine")


def test_a_transcription_is_linked_to_the_user_turn(user):
    conversation = start(user)
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_1", 1, role="user"))
    usage = TranscriptionUsage(
        item_id="item_1",
        kind="tokens",
        input_tokens=50,
        output_tokens=6,
        total_tokens=56,
        input_text_tokens=8,
        input_audio_tokens=42,
    )
    services.record_save(conversation_id=conversation.pk, record=usage)
    entry = UsageEntry.objects.get()
    assert (entry.kind, entry.turn.role, entry.item_id) == ("transcription", "user", "item_1")
    assert (entry.input_text_tokens, entry.input_audio_tokens, entry.output_text_tokens) == (8, 42, 6)
    assert entry.cost == Decimal("0.000332")  # 42 * 6 + 8 * 2.5 + 6 * 10 = 332
    conversation.refresh_from_db()
    assert conversation.total_tokens == 0  # the conversation's own counts are the responses'


def test_a_transcription_by_the_minute(user):
    conversation = start(user)
    usage = TranscriptionUsage(item_id="item_1", kind="duration", seconds=30.25)
    services.record_save(conversation_id=conversation.pk, record=usage)
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_1", 1, role="user"))
    entry = UsageEntry.objects.get()
    assert (entry.seconds, entry.cost, entry.turn.item_id) == (Decimal("30.250"), Decimal("0.003025"), "item_1")


def test_connected_time(user):
    conversation = start(user)
    entry_id = ledger.open_time(conversation_id=conversation.pk)
    entry = UsageEntry.objects.get(pk=entry_id)
    assert (entry.kind, entry.seconds, entry.user, entry.conversation, entry.cost) == (
        "time",
        Decimal(0),
        user,
        conversation,
        Decimal(0),
    )
    ledger.update_times({entry_id: 30.0004})
    ledger.update_times({entry_id: 47.25})
    entry.refresh_from_db()
    assert entry.seconds == Decimal("47.250")


def test_totals_of_a_conversation(user):
    conversation, other = start(user), start(user)
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_1", 1, role="user"))
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_2", 2))
    services.record_save(conversation_id=conversation.pk, record=REPLY)
    services.record_save(
        conversation_id=conversation.pk,
        record=TranscriptionUsage(item_id="item_1", kind="duration", seconds=60, total_tokens=0),
    )
    for seconds in (90, 30):
        ledger.update_times({ledger.open_time(conversation_id=conversation.pk): seconds})
    services.record_save(conversation_id=other.pk, record=REPLY)
    totals = ledger.conversation_usage(conversation_id=conversation.pk)
    assert (totals.tokens, totals.cost, totals.seconds, totals.minutes) == (
        120,
        Decimal("0.010080"),
        Decimal("120.000"),
        2.0,
    )
    # Annotated beside a count of turns: neither multiplies the other.
    found = ledger.with_usage(Conversation.objects.annotate(turn_count=Count("turns"))).get(pk=conversation.pk)
    assert (found.turn_count, found.usage_cost, found.usage_seconds) == (2, Decimal("0.010080"), Decimal("120.000"))
    empty = ledger.with_usage(Conversation.objects.filter(pk=start(user).pk)).get()
    assert (empty.usage_cost, empty.usage_seconds) == (0, 0)


def test_deleting_a_conversation_keeps_its_ledger(user):
    conversation = start(user)
    services.record_save(conversation_id=conversation.pk, record=turn_record("item_2", 2))
    services.record_save(conversation_id=conversation.pk, record=REPLY)
    conversation.delete()
    entry = UsageEntry.objects.get()
    assert (entry.conversation, entry.turn, entry.user, entry.cost) == (None, None, user, Decimal("0.004080"))


def test_usage_per_user_per_day(user, other_user, settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")

    def entry(who, at, **values):
        created = UsageEntry.objects.create(user=who, **values)
        UsageEntry.objects.filter(pk=created.pk).update(created_at=at)

    # 23:30 UTC on 1 July is 01:30 on 2 July in Paris.
    entry(user, datetime(2026, 7, 1, 23, 30, tzinfo=UTC), kind="time", seconds=300)
    entry(user, datetime(2026, 7, 2, 9, 0, tzinfo=UTC), kind="response", total_tokens=100, cost=Decimal("0.5"))
    entry(user, datetime(2026, 7, 1, 12, 0, tzinfo=UTC), kind="response", total_tokens=7, cost=Decimal("0.25"))
    entry(other_user, datetime(2026, 7, 2, 10, 0, tzinfo=paris), kind="time", seconds=60)
    entry(user, datetime(2026, 7, 3, 0, 0, tzinfo=paris), kind="time", seconds=999)  # the day after the range
    rows = ledger.usage_by_day(first=date(2026, 7, 1), last=date(2026, 7, 2))
    assert [(r.day, r.username, r.totals.seconds, r.totals.tokens, r.totals.cost) for r in rows] == [
        (date(2026, 7, 2), "alice", Decimal("300.000"), 100, Decimal("0.500000")),
        (date(2026, 7, 2), "bob", Decimal("60.000"), 0, Decimal("0.000000")),
        (date(2026, 7, 1), "alice", Decimal("0.000"), 7, Decimal("0.250000")),
    ]
    only_bob = ledger.usage_by_day(first=date(2026, 7, 1), last=date(2026, 7, 2), user_id=other_user.pk)
    assert [(r.username, r.user_id) for r in only_bob] == [("bob", other_user.pk)]
    assert ledger.usage_by_day(first=date(2026, 7, 4), last=date(2026, 7, 4) + timedelta(days=3)) == []
