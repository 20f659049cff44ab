"""The daily budget: the pure rules, then counted from the ledger in a real database."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from voicechat import ledger
from voicechat.budget import BudgetStatus, Limits, amount, budget_status, day_start, period_start
from voicechat.models import BudgetReset, Conversation, UsageEntry

PARIS = ZoneInfo("Europe/Paris")


# The rules


def test_within_budget_tells_what_is_left():
    status = budget_status(Limits(minutes=120, tokens=1000), used_seconds=600, used_tokens=250, zone_name="UTC")
    assert status == BudgetStatus(refusal=None, seconds_left=6600.0, tokens_left=750)


def test_minutes_used_up():
    status = budget_status(Limits(minutes=120, tokens=1000), used_seconds=7200, used_tokens=10, zone_name="UTC")
    assert status.refusal == (
        "You have used today's conversation budget (120 of 120 minutes). "
        "It renews at midnight (UTC); staff can reset it."
    )
    assert (status.seconds_left, status.tokens_left) == (0.0, 990)


def test_tokens_used_up_past_the_limit():
    status = budget_status(
        Limits(minutes=120, tokens=1_000_000), used_seconds=60, used_tokens=1_000_450, zone_name="Europe/Paris"
    )
    assert status.refusal == (
        "You have used today's token budget (1,000,450 of 1,000,000 tokens). "
        "It renews at midnight (Europe/Paris); staff can reset it."
    )
    assert (status.seconds_left, status.tokens_left) == (7140.0, 0)


def test_zero_is_no_limit():
    status = budget_status(Limits(minutes=0, tokens=0), used_seconds=10**6, used_tokens=10**9, zone_name="UTC")
    assert status == BudgetStatus(refusal=None, seconds_left=None, tokens_left=None)


def test_amounts_for_people():
    assert [amount(120), amount(119.99), amount(12.5), amount(1_000_000), amount(0)] == [
        "120",
        "119.9",
        "12.5",
        "1,000,000",
        "0",
    ]


def test_the_day_starts_at_midnight_in_the_zone():
    # 23:30 UTC on 1 July is already 2 July in Paris (UTC+2).
    now = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert day_start(now, PARIS) == datetime(2026, 7, 2, 0, 0, tzinfo=PARIS)
    assert day_start(now, PARIS).astimezone(UTC) == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    assert day_start(now, UTC) == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def test_a_reset_later_than_midnight_starts_the_count():
    now = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    this_morning = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    yesterday = datetime(2026, 6, 30, 20, 0, tzinfo=UTC)
    assert period_start(now, UTC, this_morning) == this_morning
    assert period_start(now, UTC, yesterday) == datetime(2026, 7, 1, tzinfo=UTC)
    assert period_start(now, UTC, None) == datetime(2026, 7, 1, tzinfo=UTC)


# From the ledger


@pytest.fixture
def limits(settings):
    settings.BUDGET_DAILY_MINUTES = 10
    settings.BUDGET_DAILY_TOKENS = 5000
    settings.TIME_ZONE = "UTC"


def conversation_of(user) -> Conversation:
    return Conversation.objects.create(
        user=user,
        engine="Azure OpenAI · gpt-realtime (GA)",
        deployment="gpt-realtime",
        endpoint_shape="ga",
        voice="alloy",
    )


def entry(user, *, kind=UsageEntry.Kind.RESPONSE, tokens=0, seconds=0, at=None, conversation=None) -> UsageEntry:
    created = UsageEntry.objects.create(
        user=user, conversation=conversation, kind=kind, total_tokens=tokens, seconds=seconds
    )
    if at is not None:
        UsageEntry.objects.filter(pk=created.pk).update(created_at=at)
    return created


def midnight() -> datetime:
    return day_start(timezone.now(), ZoneInfo("UTC"))


@pytest.mark.django_db
def test_budget_counts_todays_time_and_tokens(user, other_user, limits):
    entry(user, kind=UsageEntry.Kind.TIME, seconds=240)
    entry(user, tokens=1200)
    entry(user, kind=UsageEntry.Kind.TRANSCRIPTION, tokens=300, seconds=30)  # audio seconds are not connected time
    entry(user, kind=UsageEntry.Kind.TIME, seconds=3600, at=midnight() - timedelta(minutes=1))  # yesterday
    entry(other_user, tokens=4000)
    status = ledger.budget_check(user)
    assert status == BudgetStatus(refusal=None, seconds_left=360.0, tokens_left=3500)


@pytest.mark.django_db
def test_budget_used_up_is_refused(user, limits):
    entry(user, kind=UsageEntry.Kind.TIME, seconds=601.5)
    status = ledger.budget_check(user)
    assert status.refusal.startswith("You have used today's conversation budget (10 of 10 minutes).")
    assert status.seconds_left == 0


@pytest.mark.django_db
def test_a_reset_gives_a_fresh_budget_from_then_on(user, other_user, limits):
    entry(user, tokens=5000)
    assert ledger.budget_check(user).tokens_left == 0
    reset = ledger.budget_reset(user=user, by=other_user)
    assert (reset.user, reset.by) == (user, other_user)
    assert ledger.budget_check(user) == BudgetStatus(refusal=None, seconds_left=600.0, tokens_left=5000)
    entry(user, tokens=700)
    assert ledger.budget_check(user).tokens_left == 4300


@pytest.mark.django_db
def test_a_reset_made_yesterday_counts_from_midnight(user, limits):
    reset = BudgetReset.objects.create(user=user)
    BudgetReset.objects.filter(pk=reset.pk).update(at=midnight() - timedelta(hours=2))
    entry(user, tokens=100, at=midnight() - timedelta(hours=1))
    entry(user, tokens=200)
    assert ledger.budget_check(user).tokens_left == 4800


@pytest.mark.django_db
def test_deleting_a_conversation_gives_no_budget_back(user, limits):
    conversation = conversation_of(user)
    entry(user, kind=UsageEntry.Kind.TIME, seconds=600, conversation=conversation)
    conversation.delete()
    assert UsageEntry.objects.get().conversation is None
    assert ledger.budget_check(user).refusal is not None


@pytest.mark.django_db
def test_midnight_in_the_configured_zone(user, settings, limits):
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: its midnight is far from UTC's
    zone = ZoneInfo("Pacific/Kiritimati")
    start = day_start(timezone.now(), zone)
    entry(user, tokens=100, at=start - timedelta(minutes=1))
    entry(user, tokens=10, at=start + timedelta(minutes=1))
    assert ledger.budget_today(user).used.tokens == 10
    assert ledger.budget_since(user) == start


@pytest.mark.django_db
def test_users_see_their_own_usage_today_on_their_history(client, user, other_user, limits):
    entry(user, kind=UsageEntry.Kind.TIME, seconds=330)
    entry(user, tokens=1234)
    entry(other_user, tokens=999)
    client.force_login(user)
    html = client.get(reverse("conversation_list")).content.decode()
    assert "<dd>5.5 of 10</dd>" in html
    assert "<dd>1,234 of 5,000</dd>" in html
    assert "You have used" not in html
    entry(user, kind=UsageEntry.Kind.TIME, seconds=300)
    html = client.get(reverse("conversation_list")).content.decode()
    assert "You have used today&#x27;s conversation budget (10.5 of 10 minutes)." in html


@pytest.mark.django_db
def test_without_limits_the_history_shows_plain_counts(client, user, settings):
    settings.BUDGET_DAILY_MINUTES = 0
    settings.BUDGET_DAILY_TOKENS = 0
    entry(user, kind=UsageEntry.Kind.TIME, seconds=120)
    client.force_login(user)
    html = client.get(reverse("conversation_list")).content.decode()
    assert "<dd>2</dd>" in html
    assert "<dd>0</dd>" in html
