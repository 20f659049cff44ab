"""How fast the host runs each core, second by second: read it before trusting a bench run.

    .venv/bin/python bench/host_speed.py [--seconds 10]

On a virtual machine the same code on the same vCPU does not always run at the same speed,
and what it loses is not steal time: the host's other guests share the physical cores (their
hyperthreads, their clock). Here a fixed loop of Python took 28 to 30 ms on a core for
seconds at a time, then 50 to 57 ms, from one second to the next, on an otherwise idle
machine; the app's CPU per session at 300 sessions was 0.13 to 0.18% of a core in the
runs of one session and 0.26% in those of the session before, with the same relay code.
This runs the loop on every core at once, as the bench keeps them busy, and prints its time
for each half second: steady figures near the fastest mean the host lets the bench run at
full speed.
"""

import argparse
import os
import statistics
import subprocess
import sys

# Bytecode like the relay's own: calls, dict access, small objects.
LOOP = """
import time

def step(state, i):
    state["n"] = state.get("n", 0) + (i & 7)
    return [i, state]

times = []  # printed at the end: a full pipe would stop the loop while another core's is read
deadline = time.perf_counter() + {seconds}
while time.perf_counter() < deadline:
    start = time.perf_counter()
    state = {{}}
    for i in range(20_000):
        step(state, i)
    end = time.perf_counter()
    times.append((end, (end - start) * 10_000))  # ms per 200,000 steps
for end, ms in times:
    print(end, ms)
"""
BUCKET = 0.5  # seconds per printed figure


def run(seconds: float) -> dict[int, list[float]]:
    """Each core's loop times, a median per BUCKET seconds."""
    code = LOOP.format(seconds=seconds)
    cores = sorted(os.sched_getaffinity(0))
    runs = {
        core: subprocess.Popen(
            ["taskset", "--cpu-list", str(core), sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        for core in cores
    }
    figures = {}
    for core, process in runs.items():
        output, _ = process.communicate(timeout=seconds + 30)
        if process.returncode:
            raise RuntimeError(f"the loop failed on core {core} (exit code {process.returncode})")
        samples = [tuple(map(float, line.split())) for line in output.splitlines()]
        start = samples[0][0] if samples else 0.0
        buckets: dict[int, list[float]] = {}
        for at, ms in samples:
            buckets.setdefault(int((at - start) / BUCKET), []).append(ms)
        figures[core] = [statistics.median(times) for _, times in sorted(buckets.items())]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run the loop (default 10)")
    args = parser.parse_args()
    figures = run(args.seconds)
    print(f"ms per 200,000 steps of the loop, each {BUCKET:g} s; lower is faster")
    for core, times in figures.items():
        print(f"core {core}: {' '.join(f'{ms:.0f}' for ms in times)}")
        fastest = min(times)
        full = sum(ms <= fastest * 1.1 for ms in times) / len(times)
        print(
            f"        fastest {fastest:.0f}, median {statistics.median(times):.0f}, slowest {max(times):.0f}; "
            f"within 10% of the fastest {full:.0%} of the time"
        )


if __name__ == "__main__":
    main()
