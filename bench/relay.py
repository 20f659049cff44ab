"""Figures for the relay under load: added latency, CPU and memory per session, under daphne and uvicorn.

Run by hand: `.venv/bin/python bench/relay.py` (see --help). N logged-in pages
stream 100 ms audio chunks at real-time pace through one app process to a
loopback service that echoes each chunk back as an audio delta; the same load
sent straight to that service is the baseline. Added latency is the app path's
percentile minus the direct path's at the same load. The service and the load
generator run in processes of their own; only the generator times anything.
"""

import argparse
import functools
import hashlib
import json
import math
import multiprocessing
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
import neighbours
from echo_service import API_KEY

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(tempfile.gettempdir()) / "voicechat-bench"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/voicechat_bench"
REDIS_URL = "redis://127.0.0.1:6379/1"
# The bench database's own key and password: fixed, so that its sessions outlive a run.
SECRET_KEY = "bench-only-key-for-a-loopback-database-2f8c1e97b4d6a35c0e7f9a1b"
PASSWORD = "bench-voice-pass-4815"
USERNAME = "bench-{:04d}"

SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "{args}", "{app}"],
    "uvicorn": ["-m", "uvicorn", "{app}", "--host", "127.0.0.1", "--port", "{port}", "{args}"],
}
DEFAULT_ARGS = {
    "daphne": "--access-log /dev/null",
    "uvicorn": "--no-access-log --ws-per-message-deflate false --loop uvloop",
}

# Targets, for one app process on the 2-core development machine.
TARGET_LEVEL = 100
TARGET_P50_MS = 1.0
TARGET_P99_MS = 10.0
BREAK_P99_MS = 50.0
TARGET_SESSIONS = 300
TARGET_MEMORY_MB = 0.5
# Before each level, wait for the rest of the machine to use less than this many cores.
QUIET_CORES = 0.3

CREATE_USERS = """
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
User = get_user_model()
names = [{template!r}.format(i) for i in range(1, {count} + 1)]
have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
password = make_password({password!r})  # hashed once: every bench user has the same password
User.objects.bulk_create([User(username=name, password=password) for name in names if name not in have])
"""

VALID_SESSIONS = """
import json, os
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone
cookies = json.load(open(os.environ["BENCH_SESSIONS"]))
owners = {key: name for name, key in cookies.items()}
users = {user.username: user for user in get_user_model().objects.filter(username__in=list(cookies))}
valid = []
for session in Session.objects.filter(session_key__in=list(owners), expire_date__gt=timezone.now()):
    data, user = session.get_decoded(), users.get(owners[session.session_key])
    if user is None or data.get("_auth_user_id") != str(user.pk):
        continue
    if data.get("_auth_user_hash") == user.get_session_auth_hash():
        valid.append(user.username)
print(json.dumps(valid))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(process: subprocess.Popen, port: int, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout * 10)):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen within {timeout:g} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settle(seconds: float, cores_busy: float = QUIET_CORES) -> None:
    """Wait (at most `seconds`) for a second in which the machine's other work is under `cores_busy` cores.

    The machine may be shared: a level measured while other processes take its cores
    times them, not the app. What other work remains shows in the tables' 'rest' column.
    """
    deadline = time.monotonic() + seconds
    waited = 0
    for waited in range(int(seconds) + 1):  # noqa: B007 (how long it waited is told after)
        first = load.machine_ticks()
        time.sleep(1)
        last = load.machine_ticks()
        busy = (last[0] - first[0]) / max(1, last[1] - first[1]) * os.cpu_count()
        if busy < cores_busy or time.monotonic() >= deadline:
            break
    if waited:
        progress(f"  (waited {waited} s for a quieter machine: {busy:.2f} cores busy)")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.disturbed: list[str] = []  # each measurement another process or the host took CPU from
        STATE.mkdir(exist_ok=True)
        self.logs = Path(tempfile.mkdtemp(prefix="run-", dir=STATE))
        self.echo_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONASYNCIODEBUG")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DEBUG": "false",
                "SECRET_KEY": SECRET_KEY,
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "false",
                "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{self.echo_port}",
                "AZURE_OPENAI_API_KEY": API_KEY,
                "AZURE_OPENAI_API_VERSION": "",
                # Nothing but the relay itself may end or refuse a session while it is measured.
                "REALTIME_MAX_SESSIONS_PER_USER": "0",
                "REALTIME_MAX_SESSION_MINUTES": "0",
                "REALTIME_IDLE_TIMEOUT_MINUTES": "0",
                "BUDGET_DAILY_MINUTES": "0",
                "BUDGET_DAILY_TOKENS": "0",
                "OPENAI_API_KEY": "",  # the Azure endpoint above is the service
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        if args.sqlite:
            env["DATABASE_URL"] = f"sqlite:///{STATE / 'bench.sqlite3'}"
            env.pop("REDIS_URL", None)
        else:
            env["DATABASE_URL"] = args.database_url
            env["REDIS_URL"] = args.redis_url
        self.env = env
        self.users = [USERNAME.format(i) for i in range(1, max(self.levels_all()) + 1)]
        self.all_cpus = sorted(os.sched_getaffinity(0))
        self.app_cpus = self.all_cpus
        if args.pin:
            # The app's process on a core of its own, the generator and the service (which this
            # process starts, and so pins too) on the others: they would take turns with the app
            # on its core, and their share of its latency is no part of the app's cost.
            self.app_cpus = self.all_cpus[-1:]
            os.sched_setaffinity(0, self.all_cpus[:-1])

    def levels_all(self) -> list[int]:
        return self.args.levels + self.ramp()

    def ramp(self) -> list[int]:
        top = max(self.args.levels)
        return list(range(top + self.args.ramp_step, self.args.ramp_max + 1, self.args.ramp_step))

    def manage(self, *args: str, env: dict | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def prepare_database(self) -> None:
        url = self.env["DATABASE_URL"]
        if url.startswith("postgres"):
            import psycopg

            parts = urlsplit(url)
            name = parts.path.lstrip("/")
            admin = urlunsplit(parts._replace(path="/postgres", query=""))
            with psycopg.connect(admin, autocommit=True) as db:
                if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    progress(f"Creating the database {name}")
                    db.execute(f'CREATE DATABASE "{name}"')
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("shell", "-c", CREATE_USERS.format(template=USERNAME, count=len(self.users), password=PASSWORD))

    def start_server(self, name: str, extra: str, log_name: str, cpus: list[int]) -> tuple[subprocess.Popen, int]:
        port = free_port()
        command = ["taskset", "--cpu-list", ",".join(map(str, cpus)), sys.executable]
        for part in SERVERS[name]:
            command += shlex.split(extra) if part == "{args}" else [part.format(port=port, app=self.args.app)]
        log = self.logs / f"{log_name}.log"
        with open(log, "w") as output:
            server = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        wait_listening(server, port, name, log)
        return server, port

    def cookies(self, pool: ProcessPoolExecutor) -> list[str]:
        """A session cookie per bench user, from the login form; kept between runs while the database has them."""
        database = self.env["DATABASE_URL"].split("?")[0]  # options such as conn_max_age change no session
        key = hashlib.sha256(database.encode()).hexdigest()[:12]
        cache = STATE / f"sessions-{key}.json"
        kept = json.loads(cache.read_text()) if cache.exists() else {}
        cookies = {} if self.args.fresh_logins else {name: kept[name] for name in self.users if name in kept}
        if cookies:
            wanted = self.logs / "sessions.json"
            wanted.write_text(json.dumps(cookies))
            env = {**self.env, "BENCH_SESSIONS": str(wanted)}
            valid = set(json.loads(self.manage("shell", "-c", VALID_SESSIONS, env=env).strip().splitlines()[-1]))
            cookies = {name: value for name, value in cookies.items() if name in valid}
        missing = [name for name in self.users if name not in cookies]
        if missing:
            progress(f"Logging in {len(missing)} users through the login form (once; their cookies are kept)")
            started = time.monotonic()
            # Password hashing is the slow part: a process per core for the logins only.
            server, port = self.start_server("uvicorn", "--workers 2 --no-access-log", "login-server", self.all_cpus)
            try:
                cookies |= pool.submit(
                    load.log_in_all, f"http://127.0.0.1:{port}", missing, PASSWORD, self.args.login_concurrency
                ).result()
            finally:
                stop(server)
            progress(f"  {len(missing)} logins in {time.monotonic() - started:.0f} s")
            cache.write_text(json.dumps(kept | cookies))  # a smaller run keeps the others' cookies
        return [cookies[name] for name in self.users]

    def run(self) -> dict:
        args = self.args
        progress(f"Logs in {self.logs}")
        self.prepare_database()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            generator_pid = pool.submit(os.getpid).result()
            cookies = self.cookies(pool) if args.servers else []
            echo_log = self.logs / "echo.log"
            with open(echo_log, "w") as output:
                echo = subprocess.Popen(
                    [sys.executable, str(ROOT / "bench" / "echo_service.py"), str(self.echo_port)],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_listening(echo, self.echo_port, "the echo service", echo_log)
                pids = {"generator": generator_pid, "echo": echo.pid}
                return self.levels(pool, cookies, pids)
            finally:
                stop(echo)

    def levels(self, pool: ProcessPoolExecutor, cookies: list[str], pids: dict[str, int]) -> dict:
        args = self.args
        results: dict = {"direct": {}, **{name: {} for name in args.servers}}
        direct = load.Target(f"ws://127.0.0.1:{self.echo_port}/openai/v1/realtime?model=bench", {"api-key": API_KEY})
        done: set[str] = set()  # servers past the 50 ms mark, or failed: no higher level for them
        for level in self.levels_all():
            ramping = [name for name in args.servers if name not in done]
            if level > max(args.levels) and not ramping:
                break
            progress(f"{level} sessions: direct")
            measure = functools.partial(self.measure_direct, pool, [direct] * level, pids)
            results["direct"][level] = self.measured(f"direct {level}", measure)
            for name in ramping:
                progress(f"{level} sessions: {name}")
                try:
                    measure = functools.partial(self.measure_app, pool, name, cookies[:level], pids)
                    result = self.measured(f"{name} {level}", measure)
                except RuntimeError as error:
                    progress(f"  {name} failed at {level} sessions: {error}")
                    results[name][level] = str(error)
                    done.add(name)
                    continue
                results[name][level] = result
                if level >= max(args.levels) and added(result, results["direct"][level], 99) > BREAK_P99_MS:
                    done.add(name)
        return results

    def measured(self, label: str, measure: Callable[[], load.LevelResult]) -> load.LevelResult:
        """Measure; again, at most --retries times, while another process or the host takes CPU in the window."""
        retries = self.args.retries
        for attempt in range(retries + 1):
            watch = neighbours.Watch()
            watch.start()
            try:
                result = measure()
            finally:
                watch.stop()
            causes = [str(burst) for burst in watch.within(*result.window_at)]
            stolen = watch.stolen(*result.window_at)
            if stolen > neighbours.STEAL_SHARE:
                causes.append(f"the host (steal) {stolen:.1%} of the cores")
            if not causes:
                return result
            kept = "" if attempt < retries else " (kept: the last attempt)"
            p99 = f"p99 {percentile(result.latencies_ns, 99):.1f} ms"
            self.disturbed.append(f"{label}, attempt {attempt + 1}{kept} ({p99}): {', '.join(causes)}")
            progress(f"  CPU taken from the window: {', '.join(causes)}")
        return result

    def measure_direct(
        self, pool: ProcessPoolExecutor, targets: list[load.Target], pids: dict[str, int]
    ) -> load.LevelResult:
        args = self.args
        settle(args.settle)
        return pool.submit(load.run_level, targets, args.warmup, args.measure, pids, args.seed, args.chunk_ms).result()

    def measure_app(self, pool: ProcessPoolExecutor, name: str, cookies: list[str], pids: dict[str, int]):
        server, port = self.start_server(name, self.args.args[name], f"{name}-{len(cookies)}", self.app_cpus)
        try:
            targets = [
                load.Target(
                    f"ws://127.0.0.1:{port}/ws/realtime/",
                    {"Cookie": f"sessionid={cookie}"},
                    origin=f"http://127.0.0.1:{port}",
                )
                for cookie in cookies
            ]
            # One short session first: what the process sets up once is not a session's memory.
            pool.submit(load.run_level, targets[:1], 0.2, 0.5, {}, self.args.seed, self.args.chunk_ms).result()
            settle(self.args.settle)
            pids = {**pids, "app": server.pid}
            profile = self.profile(server.pid, f"{name}-{len(cookies)}")
            args = self.args
            return pool.submit(
                load.run_level, targets, args.warmup, args.measure, pids, args.seed, args.chunk_ms, profile
            ).result()
        finally:
            stop(server)

    def profile(self, pid: int, label: str) -> list[str] | None:
        """With --profile: py-spy (installed by hand) samples the app process over the measured window."""
        if self.args.profile is None:
            return None
        self.args.profile.mkdir(parents=True, exist_ok=True)
        output = self.args.profile / f"{label}.txt"
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
        return [*command, "--rate", "200", "--nonblocking", "--output", str(output)]


# Figures


def percentile(values: list[int], q: float) -> float:
    """Nearest-rank percentile of nanosecond values, in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] / 1e6


def added(app: load.LevelResult, direct: load.LevelResult, q: float) -> float:
    return percentile(app.latencies_ns, q) - percentile(direct.latencies_ns, q)


def memory(result: load.LevelResult, when: str) -> float:
    """MB of the app's resident memory per session: once all are open, or at the end of streaming."""
    rss = result.rss_open if when == "open" else result.rss_streaming
    return (rss - result.rss_before) / result.sessions / 2**20


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def report(bench: Bench, results: dict) -> None:
    args = bench.args
    cores = os.cpu_count()
    database = "SQLite + in-memory channel layer" if args.sqlite else "PostgreSQL + Redis channel layer"
    print(
        f"\nRelay benchmark, {time.strftime('%Y-%m-%d %H:%M')}: {cores} cores, {database}; "
        f"{args.chunk_ms} ms chunks, {1000 / args.chunk_ms:g} a second per session, "
        f"{args.warmup:g} s warm-up + {args.measure:g} s measured per level"
    )
    if args.pin:
        print(f"The app process runs on CPU {bench.app_cpus[0]}; the generator and the service on the others.")
    print("Latency: chunk sent to its echo received, in the generator. Added = app path - direct, same percentile.")
    print(
        "CPU and memory: the app process, from /proc. MB/session: resident memory added per session once all are\n"
        "open; 'streaming': at the end of the window (with whatever backlog an overloaded app has queued).\n"
        f"'Open': seconds to open every session, {load.CONNECT_CONCURRENCY} at a time (as pages reconnect after a\n"
        "restart). 'Rest' is CPU (in cores) that other processes used meanwhile.\n"
    )
    direct_results = results["direct"]
    header = (
        f"{'sessions':>8} {'direct p50/p99':>15} {'app p50/p99':>15} {'added p50':>10} {'added p99':>10} "
        f"{'app CPU':>8} {'CPU/session':>12} {'MB/session':>11} {'streaming':>10} {'open':>7} {'lost':>5} "
        f"{'errors':>6} {'gen lag p99':>12} {'gen/echo CPU':>13} {'rest':>5} {'load avg':>15}"
    )
    print("direct (the generator and the echo service alone, the baseline)")
    print(
        f"{'sessions':>8} {'p50/p99':>15} {'lost':>5} {'gen lag p99':>12} {'gen/echo CPU':>13} "
        f"{'rest':>5} {'load avg':>15}"
    )
    for level, direct in direct_results.items():
        rest = max(0.0, direct.machine_busy * cores - sum(direct.cpu.values()) / direct.seconds)
        print(
            f"{level:>8} {percentile(direct.latencies_ns, 50):>6.2f} /{percentile(direct.latencies_ns, 99):>6.2f} ms "
            f"{direct.lost:>5} {percentile(direct.lags_ns, 99):>9.2f} ms "
            f"{direct.cpu['generator'] / direct.seconds:>5.0%} / {direct.cpu['echo'] / direct.seconds:>4.0%} "
            f"{rest:>5.2f} {direct.loadavg:>15}"
        )
    print()
    summary = {}
    for name in args.servers:
        print(f"{name}: {' '.join(SERVERS[name][:2])} ... {args.args[name]}".replace("{args}", ""))
        print(header)
        for level, result in results[name].items():
            if isinstance(result, str):
                print(f"{level:>8} failed: {result[:200]}")
                continue
            direct = direct_results[level]
            cpu = result.cpu["app"] / result.seconds
            ours = sum(result.cpu.values()) / result.seconds
            rest = max(0.0, result.machine_busy * cores - ours)
            print(
                f"{level:>8} "
                f"{percentile(direct.latencies_ns, 50):>6.2f} /{percentile(direct.latencies_ns, 99):>6.2f} ms "
                f"{percentile(result.latencies_ns, 50):>6.2f} /{percentile(result.latencies_ns, 99):>6.2f} ms "
                f"{added(result, direct, 50):>7.2f} ms {added(result, direct, 99):>7.2f} ms "
                f"{cpu:>7.0%} {cpu / level:>11.2%} "
                f"{memory(result, 'open'):>11.3f} {memory(result, 'streaming'):>10.3f} {result.open_seconds:>5.1f} s "
                f"{result.lost:>5} {result.error_count:>6} "
                f"{percentile(result.lags_ns, 99):>9.2f} ms "
                f"{result.cpu['generator'] / result.seconds:>5.0%} / {result.cpu['echo'] / result.seconds:>4.0%} "
                f"{rest:>5.2f} {result.loadavg:>15}"
            )
            for error in result.errors[:2]:
                print(f"{'':>8} error: {error[:160]}")
        summary[name] = targets(results[name], direct_results)
        print()

    print(f"{'target (one app process)':<44} " + " ".join(f"{name:>18}" for name in args.servers))
    rows = [
        (f"added p50 at {TARGET_LEVEL} sessions <= {TARGET_P50_MS:g} ms", "p50"),
        (f"added p99 at {TARGET_LEVEL} sessions <= {TARGET_P99_MS:g} ms", "p99"),
        (f"sessions when added p99 passes {BREAK_P99_MS:g} ms: > {TARGET_SESSIONS}", "break"),
        (f"memory per open session at {TARGET_SESSIONS} <= {TARGET_MEMORY_MB:g} MB", "memory"),
        (f"CPU per session at {TARGET_LEVEL} sessions (no target)", "cpu"),
    ]
    for label, key in rows:
        print(f"{label:<44} " + " ".join(f"{summary[name][key]:>18}" for name in args.servers))
    if bench.disturbed:
        print(
            f"\nMeasured again (at most {args.retries} more times): another process took a burst of CPU "
            f"(at least {neighbours.BURST_SECONDS:g} s within {neighbours.INTERVAL:g} s) in the window, or the host\n"
            f"took more than {neighbours.STEAL_SHARE:.0%} of the cores' time in it (steal time, for its other guests)"
        )
        for line in bench.disturbed:
            print(f"  {line}")
    else:
        print("\nNo other process took a burst of CPU, nor the host its share, in a measured window.")
    print(f"\nThe generator's direct-path figures are its own floor; logs in {bench.logs}")


def targets(runs: dict, direct: dict) -> dict[str, str]:
    """Each target's figure and verdict, as table cells."""
    cells = {"p50": "n/a", "p99": "n/a", "break": "n/a", "memory": "n/a", "cpu": "n/a"}
    at = runs.get(TARGET_LEVEL)
    if isinstance(at, load.LevelResult):
        p50, p99 = added(at, direct[TARGET_LEVEL], 50), added(at, direct[TARGET_LEVEL], 99)
        cells["p50"] = f"{p50:.2f} ms {mark(p50 <= TARGET_P50_MS)}"
        cells["p99"] = f"{p99:.2f} ms {mark(p99 <= TARGET_P99_MS)}"
        cells["cpu"] = f"{at.cpu['app'] / at.seconds / TARGET_LEVEL:.2%} of a core"
    measured = [level for level, r in runs.items() if isinstance(r, load.LevelResult)]
    passed = [lvl for lvl in measured if added(runs[lvl], direct[lvl], 99) > BREAK_P99_MS]
    failed = [level for level, r in runs.items() if isinstance(r, str)]
    if passed:
        cells["break"] = f"{min(passed)} {mark(min(passed) > TARGET_SESSIONS)}"
    elif failed:
        cells["break"] = f"failed at {min(failed)} {mark(min(failed) > TARGET_SESSIONS)}"
    elif measured:
        cells["break"] = f">{max(measured)} {mark(max(measured) >= TARGET_SESSIONS)}"
    top = runs.get(TARGET_SESSIONS)
    if isinstance(top, load.LevelResult):
        held = memory(top, "open")
        cells["memory"] = f"{held:.3f} MB {mark(held <= TARGET_MEMORY_MB)}"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="daphne,uvicorn", help="comma-separated (default daphne,uvicorn)")
    parser.add_argument("--levels", default="1,50,100,200,300", help="session counts (default 1,50,100,200,300)")
    parser.add_argument("--ramp-step", type=int, default=100, help="then up by this many (default 100) ...")
    parser.add_argument("--ramp-max", type=int, default=600, help="... at most this (default 600), until p99 > 50 ms")
    parser.add_argument(
        "--chunk-ms", type=int, default=100, help="audio per frame, sent as often (default 100; the page sends 40)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds streamed before measuring, while the sessions' first database writes end (default 5)",
    )
    parser.add_argument(
        "--measure",
        type=float,
        default=30.0,
        help="seconds measured per level (default 30: a heartbeat's period, so its writes count at their real rate)",
    )
    parser.add_argument(
        "--settle", type=float, default=60, help="seconds to wait, at most, for a quiet machine before each run"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="measure a level again, at most this often, when another process's burst of CPU or the host's steal "
        "lands in it (default 3)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(os.sched_getaffinity(0)) > 1,
        help="the app process on the last core, everything the bench starts on the others (default: on)",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite and the in-memory channel layer instead")
    parser.add_argument("--database-url", default=POSTGRES_URL, help=f"default {POSTGRES_URL}")
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"default {REDIS_URL}")
    for name, default in DEFAULT_ARGS.items():
        parser.add_argument(
            f"--{name}-args", default=default, help=f"{name}'s options, as --{name}-args='...' (default {default!r})"
        )
    parser.add_argument("--app", default="config.asgi:application", help="the ASGI application the servers run")
    parser.add_argument("--login-concurrency", type=int, default=4, help="logins at once (default 4)")
    parser.add_argument("--fresh-logins", action="store_true", help="log every user in again")
    parser.add_argument("--seed", type=int, default=1, help="of the sessions' random offsets (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="sample each app run with py-spy into this folder")
    args = parser.parse_args()
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))} (choose from {', '.join(SERVERS)})")
    args.levels = sorted({int(level) for level in args.levels.split(",")})
    args.args = {name: getattr(args, f"{name}_args") for name in SERVERS}
    progress(f"Machine: {os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    bench = Bench(args)
    results = bench.run()
    report(bench, results)
    if args.json:
        args.json.write_text(json.dumps({**summary_json(results), "disturbed": bench.disturbed}, indent=1))


def summary_json(results: dict) -> dict:
    out: dict = {}
    for path, runs in results.items():
        out[path] = {}
        for level, r in runs.items():
            if isinstance(r, str):
                out[path][level] = {"failed": r}
                continue
            out[path][level] = {
                "p50_ms": percentile(r.latencies_ns, 50),
                "p99_ms": percentile(r.latencies_ns, 99),
                "lag_p99_ms": percentile(r.lags_ns, 99),
                "sent": r.sent,
                "lost": r.lost,
                "errors": r.error_count,
                "cpu_seconds": r.cpu,
                "seconds": r.seconds,
                "rss_before": r.rss_before,
                "rss_open": r.rss_open,
                "open_seconds": r.open_seconds,
                "rss_streaming": r.rss_streaming,
                "machine_busy": r.machine_busy,
                "loadavg": r.loadavg,
                "window_at": r.window_at,
            }
    return out


if __name__ == "__main__":
    main()
