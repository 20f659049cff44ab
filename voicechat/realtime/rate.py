"""How fast a browser may send, counted without sockets: a token bucket and a sliding window."""

from collections import deque


class TokenBucket:
    """Allows `rate` events per second on average, and bursts of up to `burst` at once."""

    def __init__(self, rate: float, *, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def allow(self, now: float) -> bool:
        if self.rate <= 0:
            return True  # no limit
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class WindowCounter:
    """Counts events in the last `seconds`; `over` once there are more than `limit`."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._times.append(now)
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        if len(self._times) > self.limit + 1:  # only whether it is over matters, not by how much
            self._times.popleft()

    def count(self) -> int:
        return len(self._times)

    @property
    def over(self) -> bool:
        return self.limit > 0 and len(self._times) > self.limit
