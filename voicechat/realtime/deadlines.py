"""When a conversation must end: its maximum length, the budget left, and the idle timeout.

Times are seconds on any monotonic clock; the caller passes `now`.
"""

from dataclasses import dataclass

SESSION_LIMIT = "session_limit"
BUDGET = "budget"
IDLE = "idle"


@dataclass
class Deadlines:
    started: float
    max_seconds: float = 0  # the session length limit (0: none)
    budget_seconds: float | None = None  # the daily budget's time left (None: no limit)
    idle_seconds: float = 0  # the idle timeout (0: none)

    def __post_init__(self) -> None:
        self.last_activity = self.started

    def activity(self, now: float) -> None:
        """The browser sent something: the idle time starts again."""
        self.last_activity = now

    def _ends(self) -> list[tuple[float, str]]:
        ends = []
        if self.max_seconds > 0:
            ends.append((self.started + self.max_seconds, SESSION_LIMIT))
        if self.budget_seconds is not None:
            ends.append((self.started + self.budget_seconds, BUDGET))
        if self.idle_seconds > 0:
            ends.append((self.last_activity + self.idle_seconds, IDLE))
        return ends

    def next_due(self) -> float | None:
        """The moment the next limit is reached, if any limit is set."""
        return min((at for at, _ in self._ends()), default=None)

    def due(self, now: float) -> str | None:
        """Which limit has been reached, if one has: the earliest reached wins."""
        reached = sorted(end for end in self._ends() if end[0] <= now)
        return reached[0][1] if reached else None
