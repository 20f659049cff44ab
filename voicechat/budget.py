"""A user's daily budget: the limits, when today's count starts, and whether what was used leaves any."""

import math
from dataclasses import dataclass
from datetime import datetime, time, tzinfo

from django.conf import settings


@dataclass(frozen=True)
class Limits:
    """Per user and per day; 0 is no limit."""

    minutes: float
    tokens: int

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(minutes=settings.BUDGET_DAILY_MINUTES, tokens=settings.BUDGET_DAILY_TOKENS)


@dataclass(frozen=True)
class BudgetStatus:
    """Whether a user may talk now: a refusal to show, or None; and what is left (None: no limit)."""

    refusal: str | None
    seconds_left: float | None
    tokens_left: int | None


def day_start(now: datetime, zone: tzinfo) -> datetime:
    """The last midnight in the zone, at or before now."""
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)


def period_start(now: datetime, zone: tzinfo, last_reset: datetime | None) -> datetime:
    """Where today's count starts: midnight, or a reset by staff since."""
    midnight = day_start(now, zone)
    return max(midnight, last_reset) if last_reset is not None else midnight


def budget_status(limits: Limits, *, used_seconds: float, used_tokens: int, zone_name: str) -> BudgetStatus:
    seconds_left = max(0.0, limits.minutes * 60 - used_seconds) if limits.minutes > 0 else None
    tokens_left = max(0, limits.tokens - used_tokens) if limits.tokens > 0 else None
    refusal = None
    if seconds_left == 0:
        used = f"{amount(used_seconds / 60)} of {amount(limits.minutes)} minutes"
        refusal = f"You have used today's conversation budget ({used})."
    elif tokens_left == 0:
        used = f"{amount(used_tokens)} of {amount(limits.tokens)} tokens"
        refusal = f"You have used today's token budget ({used})."
    if refusal is not None:
        refusal += f" It renews at midnight ({zone_name}); staff can reset it."
    return BudgetStatus(refusal=refusal, seconds_left=seconds_left, tokens_left=tokens_left)


def amount(value: float) -> str:
    """A count for people: "1,000,000", "120", "12.5" (minutes rounded down to a tenth)."""
    tenths = math.floor(value * 10 + 1e-9) / 10
    return f"{tenths:,.1f}".removesuffix(".0")
