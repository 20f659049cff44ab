"""How long to wait before connecting to the voice service again."""

import math
import random
from collections.abc import Callable, Mapping


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before retry number `attempt` (from 1): what the service asked, or a doubling wait; at most `cap`.

    The doubling wait is jittered between half and all of it, so that sessions
    throttled together do not all come back in the same instant.
    """
    if retry_after is not None:
        return max(0.0, min(retry_after, cap))
    wanted = min(base * 2 ** (attempt - 1), cap)
    return wanted * (0.5 + rand() / 2)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a refusal asks for: Azure's `retry-after-ms`, or `Retry-After` in seconds (dates are ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None
