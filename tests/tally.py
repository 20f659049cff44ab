"""What the fault and fuzz tests tried, added up over a test run and printed at its end."""

from collections import Counter

counts: Counter[str] = Counter()

# The summary's parts, in order: (key, how it reads).
PARTS = (
    ("bad_frames", "bad frames sent"),
    ("faults", "faults injected"),
    ("turns_expected", "turns expected"),
    ("turns_saved", "turns saved"),
)


def add(*, bad_frames: int = 0, faults: int = 0, turns_expected: int = 0, turns_saved: int = 0) -> None:
    counts.update(bad_frames=bad_frames, faults=faults, turns_expected=turns_expected, turns_saved=turns_saved)


def summary() -> str | None:
    """`chaos: 1234 bad frames sent, 57 faults injected, ...`, or None when no such test ran."""
    if not any(counts.values()):
        return None
    return "chaos: " + ", ".join(f"{counts[key]} {label}" for key, label in PARTS)
