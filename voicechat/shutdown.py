"""Ending every live conversation of this process when the server stops.

uvicorn closes each socket with code 1012 and waits for the application, which
then ends its conversation itself. daphne stops its Twisted reactor instead, so
the conversations are ended from one of the reactor's own shutdown triggers.
"""

import asyncio
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# Each live socket's way to end its conversation as a shutdown.
_live: "weakref.WeakSet[Ending]" = weakref.WeakSet()
_hooked = False


class Ending:
    """What a live socket registers: how to end its conversation."""

    def __init__(self, end: Callable[[], Awaitable[None]]) -> None:
        self.end = end


def register(ending: Ending) -> None:
    _live.add(ending)
    _hook_twisted()


def unregister(ending: Ending) -> None:
    _live.discard(ending)


async def end_all() -> None:
    endings = list(_live)
    if endings:
        logger.info("Server stopping: ending %d conversations", len(endings))
        await asyncio.gather(*(ending.end() for ending in endings), return_exceptions=True)


async def _end_all_then_tasks() -> None:
    """End the conversations, then cancel and wait for every other task left on the loop.

    daphne stops the loop with the applications' tasks still pending; collected at
    exit, a coroutine suspended in asyncio.Queue.get crashed CPython 3.11 (SIGSEGV).
    """
    await end_all()
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


def _hook_twisted() -> None:
    global _hooked
    if _hooked or "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import defer, reactor

    def before_shutdown() -> defer.Deferred:
        # The reactor waits for the Deferred: the conversations are saved before the loop stops.
        return defer.Deferred.fromFuture(asyncio.ensure_future(_end_all_then_tasks()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    _hooked = True
