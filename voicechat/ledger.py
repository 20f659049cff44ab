"""The cost ledger, and the daily budget counted from it.

One row per response, per transcription, and per socket's connected time. Rows
outlive their conversation (the link is emptied), so deleting one gives no budget back.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import DecimalField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from voicechat import budget, pricing
from voicechat.models import BudgetReset, Conversation, Turn, UsageEntry
from voicechat.realtime.recorder import TranscriptionUsage, Usage


def add_response(*, conversation_id: int, usage: Usage) -> UsageEntry:
    """A response's usage, priced, linked to its assistant turn if that is saved already."""
    conversation = Conversation.objects.get(pk=conversation_id)
    return UsageEntry.objects.create(
        user_id=conversation.user_id,
        conversation=conversation,
        turn=_turn_of(conversation_id, usage.item_id),
        kind=UsageEntry.Kind.RESPONSE,
        engine=conversation.engine,
        item_id=usage.item_id,
        response_id=usage.response_id,
        input_text_tokens=usage.input_text_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        input_cached_text_tokens=usage.cached_text_tokens,
        input_cached_audio_tokens=usage.cached_audio_tokens,
        output_text_tokens=usage.output_text_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        total_tokens=usage.total_tokens,
        cost=pricing.cost_of(usage, pricing.Prices.for_deployment(conversation.deployment)),
    )


def add_transcription(*, conversation_id: int, usage: TranscriptionUsage) -> UsageEntry:
    """A user turn's transcription usage, priced, linked to the turn if that is saved already."""
    conversation = Conversation.objects.get(pk=conversation_id)
    return UsageEntry.objects.create(
        user_id=conversation.user_id,
        conversation=conversation,
        turn=_turn_of(conversation_id, usage.item_id),
        kind=UsageEntry.Kind.TRANSCRIPTION,
        engine=conversation.engine,
        item_id=usage.item_id,
        input_text_tokens=usage.input_text_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        output_text_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        seconds=_seconds(usage.seconds),
        cost=pricing.cost_of(usage, pricing.Prices.for_deployment(conversation.deployment)),
    )


def open_time(*, conversation_id: int) -> int:
    """Start counting a socket's connected time (when its upstream session starts); the entry's id."""
    conversation = Conversation.objects.get(pk=conversation_id)
    entry = UsageEntry.objects.create(
        user_id=conversation.user_id,
        conversation=conversation,
        kind=UsageEntry.Kind.TIME,
        engine=conversation.engine,
    )
    return entry.pk


# A statement's parameters are bounded (SQLite 32,766, PostgreSQL 65,535): two a row.
_ROWS_PER_STATEMENT = 400


def update_times(seconds_by_entry: dict[int, float]) -> None:
    """Set the connected time so far of several sockets at once, never below what is saved."""
    # One statement for them all, in SQL that SQLite and PostgreSQL both take: the ORM's
    # CASE of a few hundred entries took 0.1 s of CPU, and a statement per entry as many
    # round trips, each taking the GIL back from the relay (heartbeat.py).
    # Never lower: a socket's own last write, at its end, may have come first.
    quote = connection.ops.quote_name
    table, seconds, pk, kind = (quote(name) for name in (UsageEntry._meta.db_table, "seconds", "id", "kind"))
    entries = [(entry_id, _seconds(value)) for entry_id, value in seconds_by_entry.items()]
    with connection.cursor() as cursor:
        for start in range(0, len(entries), _ROWS_PER_STATEMENT):
            rows = entries[start : start + _ROWS_PER_STATEMENT]
            cursor.execute(
                f"UPDATE {table} SET {seconds} = v.column2 FROM (VALUES {', '.join(['(%s, %s)'] * len(rows))}) AS v "
                f"WHERE {table}.{pk} = v.column1 AND {table}.{kind} = %s AND {table}.{seconds} < v.column2",
                [value for row in rows for value in row] + [UsageEntry.Kind.TIME.value],
            )


@dataclass(frozen=True)
class UsageTotals:
    tokens: int
    cost: Decimal
    seconds: Decimal  # connected time

    @property
    def minutes(self) -> float:
        return float(self.seconds) / 60


def usage_totals(entries: QuerySet[UsageEntry]) -> UsageTotals:
    """Tokens and cost of every entry, and the connected time of the time entries."""
    return _totals(entries.aggregate(**_TOTALS))


def conversation_usage(*, conversation_id: int) -> UsageTotals:
    return usage_totals(UsageEntry.objects.filter(conversation_id=conversation_id))


def with_usage(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Annotate each conversation with its ledger's `usage_cost` and `usage_seconds` (connected time)."""
    entries = UsageEntry.objects.filter(conversation=OuterRef("pk")).order_by().values("conversation")
    costs = entries.annotate(total=Sum("cost")).values("total")
    seconds = entries.filter(kind=UsageEntry.Kind.TIME).annotate(total=Sum("seconds")).values("total")
    return conversations.annotate(
        usage_cost=Coalesce(Subquery(costs), _ZERO_COST, output_field=_ZERO_COST.output_field),
        usage_seconds=Coalesce(Subquery(seconds), _ZERO_SECONDS, output_field=_ZERO_SECONDS.output_field),
    )


@dataclass(frozen=True)
class DayUsage:
    day: date  # in settings.TIME_ZONE
    user_id: int
    username: str
    totals: UsageTotals


def usage_by_day(*, first: date, last: date, user_id: int | None = None) -> list[DayUsage]:
    """Each user's usage on each day from first to last (inclusive, in TIME_ZONE), newest first."""
    zone = ZoneInfo(settings.TIME_ZONE)
    entries = UsageEntry.objects.filter(
        created_at__gte=datetime.combine(first, time(0), tzinfo=zone),
        created_at__lt=datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone),
    )
    if user_id is not None:
        entries = entries.filter(user_id=user_id)
    rows = (
        entries.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "user_id", "user__username")
        .annotate(**_TOTALS)
        .order_by("-day", "user__username")
    )
    return [
        DayUsage(
            day=row["day"],
            user_id=row["user_id"],
            username=row["user__username"],
            totals=_totals(row),
        )
        for row in rows
    ]


# The daily budget


def day_start(*, now: datetime | None = None) -> datetime:
    """The last midnight in TIME_ZONE."""
    return budget.day_start(now or timezone.now(), ZoneInfo(settings.TIME_ZONE))


def budget_since(user: AbstractBaseUser, *, now: datetime | None = None) -> datetime:
    """Where the user's budget count starts: the last midnight in TIME_ZONE, or a later reset by staff."""
    last_reset = BudgetReset.objects.filter(user=user).aggregate(at=Max("at"))["at"]
    return budget.period_start(now or timezone.now(), ZoneInfo(settings.TIME_ZONE), last_reset)


@dataclass(frozen=True)
class BudgetToday:
    since: datetime
    used: UsageTotals
    limits: budget.Limits
    status: budget.BudgetStatus


def budget_today(user: AbstractBaseUser, *, now: datetime | None = None) -> BudgetToday:
    """What counts against the user's budget today, and whether it leaves any."""
    since = budget_since(user, now=now)
    used = usage_totals(UsageEntry.objects.filter(user=user, created_at__gte=since))
    limits = budget.Limits.from_settings()
    status = budget.budget_status(
        limits, used_seconds=float(used.seconds), used_tokens=used.tokens, zone_name=settings.TIME_ZONE
    )
    return BudgetToday(since=since, used=used, limits=limits, status=status)


def budget_check(user: AbstractBaseUser) -> budget.BudgetStatus:
    """Whether the user may talk now (a refusal, or None) and the seconds and tokens left today."""
    return budget_today(user).status


def budget_reset(*, user: AbstractBaseUser, by: AbstractBaseUser | None) -> BudgetReset:
    """Give the user a fresh budget for today: what was used before now no longer counts."""
    return BudgetReset.objects.create(user=user, by=by)


_ZERO_COST = Value(Decimal(0), output_field=DecimalField(max_digits=14, decimal_places=6))
_ZERO_SECONDS = Value(Decimal(0), output_field=DecimalField(max_digits=12, decimal_places=3))
_TOTALS = {
    "sum_tokens": Coalesce(Sum("total_tokens"), 0),
    "sum_cost": Coalesce(Sum("cost"), _ZERO_COST),
    "sum_seconds": Coalesce(Sum("seconds", filter=Q(kind=UsageEntry.Kind.TIME)), _ZERO_SECONDS),
}


def _totals(row: dict) -> UsageTotals:
    # SQLite sums decimals as floats: back to the ledger's own precision.
    return UsageTotals(
        tokens=row["sum_tokens"],
        cost=Decimal(row["sum_cost"]).quantize(pricing.MICRODOLLAR),
        seconds=Decimal(row["sum_seconds"]).quantize(_MILLISECOND),
    )


def _turn_of(conversation_id: int, item_id: str) -> Turn | None:
    if not item_id:
        return None
    return Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).first()


_MILLISECOND = Decimal("0.001")


def _seconds(seconds: float) -> Decimal:
    return Decimal(str(max(0.0, seconds))).quantize(_MILLISECOND)
