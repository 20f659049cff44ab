"""The load generator of bench/relay.py: logged-in pages streaming microphone audio at real-time pace.

Each session sends a chunk of PCM16 24 kHz mono audio (100 ms by default) as often, as
`input_audio_buffer.append` JSON text frames with base64 audio, compact as the
page's JSON.stringify writes them. The first 9 bytes of each chunk's audio
carry the session's number and the chunk's: the service echoes the audio in a
`response.output_audio.delta`, which the app relays unchanged, so each echo is
matched to its chunk and timed here, in this process alone.
"""

import asyncio
import base64
import contextlib
import gc
import heapq
import math
import os
import random
import re
import struct
import subprocess
import time
from dataclasses import dataclass

import httpx
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

SAMPLE_RATE = 24000
MARK = struct.Struct("<IIx")  # session, chunk, padding: 9 bytes are 12 base64 characters
MARK_CHARS = 12
APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
DELTA_HEAD = b'{"type":"response.output_audio.delta"'
DELTA_MEMBER = b'"delta":"'
# The session is open: the app says so first; the service, straight.
READY_TYPE = re.compile(rb'"type": ?"(voicechat\.conversation|session\.created)"')
ERROR_TYPE = re.compile(rb'"type": ?"error"')
# How long echoes of the last chunks are waited for once sending stops.
GRACE_SECONDS = 3.0
CLOSE_SECONDS = 10.0
CONNECT_CONCURRENCY = 16
# Sends in a row, when late, before the echoes waiting are read.
BURST = 32


class Audio:
    """The chunks a page sends: `chunk_ms` of a 440 Hz sine each, the first 9 bytes taken by the mark."""

    def __init__(self, chunk_ms: int) -> None:
        self.period_ns = chunk_ms * 1_000_000
        count = SAMPLE_RATE * chunk_ms // 1000
        samples = (int(6000 * math.sin(2 * math.pi * 440 * n / SAMPLE_RATE)) for n in range(count))
        # A chunk is 48 bytes a millisecond: it and the 9-byte mark are whole base64 groups of 3
        # bytes, so the mark's encoding and the rest's concatenate as one.
        self.tone = base64.b64encode(struct.pack(f"<{count}h", *samples)[MARK.size :]).decode()

    def frame(self, session: int, chunk: int) -> str:
        mark = base64.b64encode(MARK.pack(session, chunk)).decode()
        return APPEND_HEAD + mark + self.tone + '"}'


@dataclass(frozen=True)
class Target:
    """Where one session connects, and with what a page (or the app's own client) would send."""

    url: str
    headers: dict[str, str]
    origin: str | None = None


@dataclass
class LevelResult:
    sessions: int
    latencies_ns: list[int]  # echo time minus send time, of the chunks sent in the measured window
    lags_ns: list[int]  # how late this process sent each measured chunk: its own share of any delay
    sent: int
    lost: int  # chunks sent in the window whose echo never came
    errors: list[str]  # error events received, the first few
    error_count: int
    seconds: float  # the measured window
    cpu: dict[str, float]  # CPU seconds per process name over the window
    rss_before: int  # bytes, of the process named "app", before the sessions opened
    rss_open: int  # ... once every session is open, before any audio
    open_seconds: float  # to open every session, CONNECT_CONCURRENCY at a time, as after a restart
    rss_streaming: int  # ... at the end of the window, every session streaming (and any backlog queued)
    machine_busy: float  # share of all cores busy over the window, every process counted
    loadavg: str
    window_at: tuple[float, float]  # the measured window, on the wall clock (time.time())


# Processes, read from /proc: CPU time, resident memory, and the machine as a whole.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_stat(pid: int) -> tuple[str, int, int]:
    """A process's name, parent's pid, and user and system CPU ticks (every thread)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (every thread), in seconds."""
    return process_stat(pid)[2] / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_ticks() -> list[int]:
    """The whole machine's CPU ticks since boot: user, nice, system, idle, iowait, irq, softirq, steal, ..."""
    with open("/proc/stat") as stat:
        return [int(v) for v in stat.readline().split()[1:]]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    values = cpu_ticks()
    idle = values[3] + values[4]  # idle and iowait
    total = sum(values[:8])  # guest time is already counted in user time
    return total - idle, total


def loadavg() -> str:
    with open("/proc/loadavg") as load:
        return " ".join(load.read().split()[:3])


# Logging in through the real form, as a browser would.

_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


async def log_in(client: httpx.AsyncClient, base: str, username: str, password: str) -> str:
    """The session cookie the login form gives this user."""
    page = await client.get(f"{base}/accounts/login/")
    page.raise_for_status()
    token = _CSRF_INPUT.search(page.text)
    csrf_cookie = page.cookies.get("csrftoken")
    if token is None or csrf_cookie is None:
        raise RuntimeError(f"the login page at {base} has no CSRF token")
    answer = await client.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1), "next": "/"},
        # Set by hand: with DEBUG off the cookies are Secure, which a client keeps off plain HTTP.
        headers={"Cookie": f"csrftoken={csrf_cookie}", "Origin": base, "Referer": f"{base}/accounts/login/"},
    )
    session = answer.cookies.get("sessionid")
    if answer.status_code != 302 or session is None:
        raise RuntimeError(f"logging in {username} failed: HTTP {answer.status_code} without a session cookie")
    return session


def log_in_all(base: str, users: list[str], password: str, concurrency: int) -> dict[str, str]:
    """Log every user in, `concurrency` at a time; username -> session cookie."""

    async def run() -> dict[str, str]:
        gate = asyncio.Semaphore(concurrency)
        cookies: dict[str, str] = {}

        async def one(username: str) -> None:
            # A client of its own, as each user has a browser of their own: no cookie crosses over.
            async with gate, httpx.AsyncClient(timeout=120, follow_redirects=False, trust_env=False) as client:
                cookies[username] = await log_in(client, base, username, password)

        await asyncio.gather(*(one(username) for username in users))
        return cookies

    return asyncio.run(run())


# Sessions, each a plain asyncio Protocol on websockets' sans-I/O layer: no task per socket,
# and an echo is timed the moment its bytes arrive.


class Echoes:
    """How many measured chunks still wait for their echo, over every page; set once none does."""

    def __init__(self) -> None:
        self.waiting = 0
        self.sending = True
        self.none_waiting = asyncio.Event()

    def arrived(self) -> None:
        self.waiting -= 1
        if not self.waiting and not self.sending:
            self.none_waiting.set()


class Page(asyncio.Protocol):
    """One session's socket: sends what it is told, times the echoes of its chunks."""

    def __init__(self, index: int, target: Target, connected: asyncio.Future, echoes: "Echoes", audio: Audio) -> None:
        self.index = index
        self.audio = audio
        self.echoes = echoes
        self.target = target
        self.ws = ClientProtocol(
            parse_uri(target.url),
            origin=Origin(target.origin) if target.origin else None,
            # A browser offers per-message deflate; whether it is used is the server's choice.
            extensions=enable_client_permessage_deflate(None),
            max_size=2**22,
        )
        self.connected = connected  # set once the app (or the service) says the session is open
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.parts: list[bytes] = []
        self.sent: dict[int, int] = {}  # chunk -> send time (ns); negative: sent outside the window
        self.latencies: list[int] = []
        self.lags: list[int] = []
        self.measured = 0
        self.errors: list[str] = []
        self.error_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        request = self.ws.connect()
        for name, value in self.target.headers.items():
            request.headers[name] = value
        self.ws.send_request(request)
        self.flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.fail(f"handshake refused: {self.ws.handshake_exc}")
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                self.parts.append(event.data)
                if event.fin:
                    message = b"".join(self.parts)
                    self.parts.clear()
                    self.message(message, now)
        self.flush()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self.flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost before the session opened (close code {self.ws.close_code})")
        if not self.closed.done():
            self.closed.set_result(None)

    def fail(self, reason: str) -> None:
        if not self.connected.done():
            self.connected.set_exception(RuntimeError(reason))

    def message(self, message: bytes, now: int) -> None:
        if message.startswith(DELTA_HEAD):
            start = message.find(DELTA_MEMBER, 0, 400) + len(DELTA_MEMBER)
            index, chunk = MARK.unpack(base64.b64decode(message[start : start + MARK_CHARS]))
            sent = self.sent.pop(chunk, None)
            if index != self.index:
                self.error_count += 1
                self.errors.append(f"session {self.index} received session {index}'s audio")
            elif sent is not None and sent > 0:
                self.latencies.append(now - sent)
                self.echoes.arrived()
        elif ERROR_TYPE.search(message, 0, 40):
            self.error_count += 1
            if len(self.errors) < 3:
                self.errors.append(message[:300].decode(errors="replace"))
            self.fail(message[:300].decode(errors="replace"))
        elif not self.connected.done() and READY_TYPE.search(message, 0, 60):
            self.connected.set_result(self)

    def send_chunk(self, chunk: int, due: int, window: tuple[int, int]) -> None:
        frame = self.audio.frame(self.index, chunk)
        now = time.perf_counter_ns()
        if window[0] <= now < window[1]:
            self.sent[chunk] = now
            self.lags.append(now - due)
            self.measured += 1
            self.echoes.waiting += 1
        else:
            self.sent[chunk] = -now  # not measured: its echo is read and dropped
        self.ws.send_text(frame.encode())
        self.flush()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self.flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()


async def _open(index: int, target: Target, echoes: "Echoes", audio: Audio, within: float) -> Page:
    loop = asyncio.get_running_loop()
    uri = parse_uri(target.url)
    connected = loop.create_future()
    page = None
    try:
        async with asyncio.timeout(within):
            _, page = await loop.create_connection(
                lambda: Page(index, target, connected, echoes, audio), uri.host, uri.port
            )
            await connected
    except BaseException:
        if page is not None:
            page.abort()
        raise
    return page


async def _open_all(targets: list[Target], echoes: "Echoes", audio: Audio, within: float) -> list[Page]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int, target: Target) -> Page:
        async with gate:
            return await _open(index, target, echoes, audio, within)

    results = await asyncio.gather(*(one(i, t) for i, t in enumerate(targets)), return_exceptions=True)
    pages = [r for r in results if isinstance(r, Page)]
    failures = [r for r in results if not isinstance(r, Page)]
    if failures:
        await _close_all(pages)
        reasons = sorted({f"{type(f).__name__}: {f}"[:200] for f in failures})
        raise RuntimeError(f"{len(failures)} of {len(targets)} sessions did not open: {'; '.join(reasons[:3])}")
    return pages


async def _close_all(pages: list[Page]) -> None:
    """Close every socket cleanly, as a page does; abort those that take too long."""
    for page in pages:
        page.close()
    pending = [page.closed for page in pages if not page.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=CLOSE_SECONDS)
    for page in pages:
        if not page.closed.done():
            page.abort()


async def _stream(pages: list[Page], start: int, window: tuple[int, int], rng: random.Random, period: int) -> None:
    """Send each page a chunk every `period` ns from its own random offset until the window ends."""
    schedule = [(start + rng.randrange(period), page.index, 0) for page in pages]
    heapq.heapify(schedule)
    by_index = {page.index: page for page in pages}
    chunks = len(pages) * ((window[1] - start) // period + 2)
    in_a_row = 0
    for _ in range(4 * chunks):  # sends and sleeps; the window's end stops it first
        due, index, chunk = schedule[0]
        if due >= window[1]:
            return
        delay = due - time.perf_counter_ns()
        if delay > 0 or in_a_row >= BURST:
            # Echoes are read while waiting; after a burst of late sends, they are read first.
            await asyncio.sleep(max(0, delay) / 1e9)
            in_a_row = 0
            continue
        heapq.heapreplace(schedule, (due + period, index, chunk + 1))
        by_index[index].send_chunk(chunk, due, window)
        in_a_row += 1


async def _run_level(
    targets: list[Target],
    warmup: float,
    measure: float,
    pids: dict[str, int],
    seed: int,
    chunk_ms: int,
    profile: list[str] | None,
) -> LevelResult:
    rng = random.Random(seed)
    audio = Audio(chunk_ms)
    app = pids.get("app")
    rss_before = rss_bytes(app) if app else 0
    echoes = Echoes()
    opening = time.perf_counter()
    pages = await _open_all(targets, echoes, audio, within=30 + len(targets) * 0.2)
    open_seconds = time.perf_counter() - opening
    # A full collection of this process's objects stopped it for ~0.1 s, a stall it would
    # have timed as the app's: no collection while it streams.
    gc.collect()
    gc.disable()
    rss_open = rss_bytes(app) if app else 0
    start = time.perf_counter_ns() + 200_000_000
    window = (start + int(warmup * 1e9), start + int((warmup + measure) * 1e9))
    wall = time.time() - time.perf_counter_ns() / 1e9
    streaming = asyncio.create_task(_stream(pages, start, window, rng, audio.period_ns))

    async def sample_at(at_ns: int) -> tuple[dict[str, float], tuple[int, int], int]:
        await asyncio.sleep(max(0, at_ns - time.perf_counter_ns()) / 1e9)
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        return cpu, machine_ticks(), rss_bytes(app) if app else 0

    try:
        cpu_first, ticks_first, _ = await sample_at(window[0])
        profiler = None
        if profile:
            duration = ["--duration", str(max(1, int(measure)))]
            profiler = await asyncio.create_subprocess_exec(
                *profile, *duration, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        cpu_last, ticks_last, rss_streaming = await sample_at(window[1])
        load = loadavg()
        await asyncio.wait_for(streaming, timeout=5)
        if profiler is not None:
            await asyncio.wait_for(profiler.wait(), 60)
        echoes.sending = False
        if echoes.waiting:  # some are still on their way
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(echoes.none_waiting.wait(), GRACE_SECONDS)
    finally:
        streaming.cancel()
        await _close_all(pages)
        gc.enable()
    busy = (ticks_last[0] - ticks_first[0]) / max(1, ticks_last[1] - ticks_first[1])
    return LevelResult(
        sessions=len(pages),
        latencies_ns=[v for page in pages for v in page.latencies],
        lags_ns=[v for page in pages for v in page.lags],
        sent=sum(page.measured for page in pages),
        lost=sum(1 for page in pages for v in page.sent.values() if v > 0),
        errors=[e for page in pages for e in page.errors][:5],
        error_count=sum(page.error_count for page in pages),
        seconds=(window[1] - window[0]) / 1e9,
        cpu={name: cpu_last[name] - cpu_first[name] for name in pids},
        rss_before=rss_before,
        rss_open=rss_open,
        open_seconds=open_seconds,
        rss_streaming=rss_streaming,
        machine_busy=busy,
        loadavg=load,
        window_at=(wall + window[0] / 1e9, wall + window[1] / 1e9),
    )


def run_level(
    targets: list[Target],
    warmup: float,
    measure: float,
    pids: dict[str, int],
    seed: int,
    chunk_ms: int = 100,
    profile: list[str] | None = None,
) -> LevelResult:
    """Open a session per target, stream for `warmup` then `measure` seconds, close; the figures.

    `profile`, a py-spy command, is run over the measured window.
    """
    return asyncio.run(_run_level(targets, warmup, measure, pids, seed, chunk_ms, profile))
