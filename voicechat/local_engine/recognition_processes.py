"""Pocketsphinx in worker processes, one per core, shared by the sessions.

Its decoder holds the GIL for as long as it works (a tenth of the audio's
length), so in the server's own process every session's recognition would
queue on one core's worth of GIL, and the event loop with it. In worker
processes the decoders run on every core, and the server process only passes
audio along.
"""

import atexit
import contextlib
import itertools
import multiprocessing
import os
import threading
import weakref
from multiprocessing.connection import Connection
from typing import Any


def _serve(connection: Connection) -> None:
    """A worker's loop: recognizers by key, an utterance each at a time."""
    from voicechat.local_engine.speech_to_text import PocketsphinxRecognizer

    recognizers: dict[int, PocketsphinxRecognizer] = {}
    utterances: dict[int, Any] = {}
    failures: dict[int, str] = {}
    while True:
        try:
            op, key, payload = connection.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "open":
                recognizers[key] = PocketsphinxRecognizer()
            elif op == "start":
                failures.pop(key, None)
                utterances[key] = recognizers[key].start()
            elif op == "feed" and key in utterances:
                utterances[key].feed(payload)
            elif op == "finish":
                if key in failures:
                    raise RuntimeError(failures.pop(key))
                connection.send(("ok", utterances.pop(key).finish()))
            elif op == "close":
                recognizers.pop(key, None)
                utterances.pop(key, None)
            if op == "open":
                connection.send(("ok", None))
        except Exception as error:
            if op in ("open", "finish"):
                connection.send(("error", f"{type(error).__name__}: {error}"))
            else:
                failures[key] = f"{type(error).__name__}: {error}"


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="local-engine-recognition")
        self.process.start()
        child.close()
        self.lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self.lock:
            self.connection.send(message)

    def call(self, message: tuple) -> Any:
        with self.lock:
            try:
                self.connection.send(message)
                status, value = self.connection.recv()
            except (EOFError, OSError) as error:
                raise RuntimeError("the speech recognition process has stopped") from error
        if status == "error":
            raise RuntimeError(value)
        return value

    def stop(self) -> None:
        self.connection.close()
        self.process.join(2)


class _ProcessUtterance:
    def __init__(self, worker: _Worker, key: int) -> None:
        self._worker = worker
        self._key = key

    def feed(self, pcm16: bytes) -> None:
        self._worker.send(("feed", self._key, pcm16))

    def finish(self) -> str:
        return self._worker.call(("finish", self._key, None))


class ProcessRecognizer:
    """A PocketsphinxRecognizer that lives in a worker process."""

    name = "pocketsphinx (en-us)"

    def __init__(self, worker: _Worker, key: int) -> None:
        self._worker = worker
        self._key = key
        worker.call(("open", key, None))
        weakref.finalize(self, _close_quietly, worker, key)

    def start(self) -> _ProcessUtterance:
        self._worker.send(("start", self._key, None))
        return _ProcessUtterance(self._worker, self._key)


def _close_quietly(worker: _Worker, key: int) -> None:
    with contextlib.suppress(OSError):  # the worker is gone already
        worker.send(("close", key, None))


_workers: list[_Worker] = []
_keys = itertools.count(1)
_lock = threading.Lock()


def process_recognizer() -> ProcessRecognizer:
    """A recognizer in one of the worker processes, started on first use; blocks while it loads."""
    with _lock:
        if not _workers:
            context = multiprocessing.get_context("spawn")
            _workers.extend(_Worker(context) for _ in range(max(2, os.cpu_count() or 2)))
            atexit.register(_stop_workers)
        key = next(_keys)
        worker = _workers[key % len(_workers)]
    return ProcessRecognizer(worker, key)


def _stop_workers() -> None:
    for worker in _workers:
        worker.stop()
    _workers.clear()
