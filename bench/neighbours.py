"""Bursts of CPU from the machine's other processes while a level is measured.

The machine may run services the bench does not use. Here RabbitMQ checks its epmd
every minute by starting a whole Erlang VM: 0.15 to 0.25 s of CPU at once. With the app's
core 80% busy at 300 sessions, such a burst leaves a queue that takes several times
its length to drain, and the generator times it as the app's latency. A level one lands
in is measured again (bench/relay.py).

What the bench runs itself (the generator, the service, the app and their children),
the app's database and Redis, and the kernel's threads (loopback traffic is theirs) are
the system under test, never neighbours.

The machine may be a virtual one whose host runs other guests on the same cores: the time
it takes from this one is the cores' steal time in /proc/stat. Here it was nearly nothing
in some runs and 5 to 15% of each core, for minutes, in others; with the app's core 80%
busy, the added p99 of such a window at 300 sessions went from 40 ms to 180 ms. A level
whose window lost more than STEAL_SHARE of its time to the host is measured again too.
"""

import os
import threading
import time
from dataclasses import dataclass, replace

from load import CLOCK_TICKS, cpu_ticks, process_stat

SYSTEM_UNDER_TEST = {"postgres", "redis-server"}
BURST_SECONDS = 0.05  # CPU a single process takes within one sampling interval
INTERVAL = 0.25
QUEUE_SECONDS = 1.0  # a burst this long before the window still delays what is sent in it
KTHREADD = 2  # the parent of every kernel thread
STEAL_SHARE = 0.02  # of the cores' time in a window, taken by the host for other guests


@dataclass(frozen=True)
class Burst:
    at: float  # wall clock, the end of the interval it was seen in
    name: str
    pid: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}) {self.seconds:.2f} s of CPU"


def _processes() -> dict[int, tuple[str, int, int]]:
    """Every process now: pid -> (name, parent pid, CPU ticks)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            found[int(entry)] = process_stat(int(entry))
        except OSError:  # it ended meanwhile
            continue
    return found


def _steal_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the whole machine since boot."""
    values = cpu_ticks()[:8]  # guest time is already counted in user time
    return values[7], sum(values)


def _ours(processes: dict[int, tuple[str, int, int]], root: int) -> set[int]:
    """`root` and its descendants."""
    ours, added = {root}, True
    while added:
        children = {pid for pid, (_, parent, _) in processes.items() if parent in ours} - ours
        ours |= children
        added = bool(children)
    return ours


class Watch(threading.Thread):
    """Note other processes' bursts of CPU, from start() until stop(); at most `limit` seconds."""

    def __init__(self, limit: float = 3600) -> None:
        super().__init__(name="neighbours", daemon=True)
        self.limit = limit
        self.bursts: list[Burst] = []
        self.steal: list[tuple[float, int, int]] = []  # (wall clock, steal ticks, all ticks) per interval
        self._stopped = threading.Event()

    def run(self) -> None:
        before, steal_before = _processes(), _steal_ticks()
        for _ in range(int(self.limit / INTERVAL)):
            if self._stopped.wait(INTERVAL):
                return
            now, at, steal_now = _processes(), time.time(), _steal_ticks()
            self.steal.append((at, steal_now[0] - steal_before[0], steal_now[1] - steal_before[1]))
            steal_before = steal_now
            ours = _ours(now, os.getpid())
            for pid, (name, parent, ticks) in now.items():
                if pid in ours or name in SYSTEM_UNDER_TEST or KTHREADD in (pid, parent):
                    continue
                seconds = (ticks - before[pid][2] if pid in before else ticks) / CLOCK_TICKS
                if seconds >= BURST_SECONDS:
                    self.bursts.append(Burst(at, name, pid, seconds))
            before = now

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def within(self, start: float, end: float) -> list[Burst]:
        """Each process's bursts from `start` to `end` (wall clock), or so shortly before that their queue remains."""
        merged: dict[int, Burst] = {}
        for burst in self.bursts:
            if start - QUEUE_SECONDS <= burst.at <= end + INTERVAL:
                seen = merged.get(burst.pid)
                merged[burst.pid] = burst if seen is None else replace(seen, seconds=seen.seconds + burst.seconds)
        return list(merged.values())

    def stolen(self, start: float, end: float) -> float:
        """The share of the cores' time from `start` to `end` (wall clock) that the host took."""
        inside = [(steal, total) for at, steal, total in self.steal if start < at <= end + INTERVAL]
        return sum(steal for steal, _ in inside) / max(1, sum(total for _, total in inside))
