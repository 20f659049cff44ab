"""This process's sign of life for the conversations it holds: a few database calls for all of them.

Every HEARTBEAT_SECONDS the process notes in the database that it still holds its
conversations (`last_seen_at`), each socket's connected time so far (its time entry),
and ends the conversations that a stopped process left open. A call per conversation
was ten a second at 300 conversations: each took the database thread, and the GIL with
it, from the relay, whose latency climbed past 300 ms (bench/relay.py). A beat writes
PER_CALL conversations per call.
"""

import asyncio
import logging
from dataclasses import dataclass

from channels.db import database_sync_to_async

from voicechat import services

logger = logging.getLogger(__name__)


@dataclass(eq=False)  # each conversation's socket holds its own, compared by identity
class Held:
    conversation_id: int
    time_entry_id: int | None
    started: float  # on the event loop's clock, when the socket's connected time began


PER_CALL = 50  # conversations written per database call
PAUSE = 0.05  # seconds between two calls of one beat

_held: set[Held] = set()
_beating: asyncio.Task | None = None


def hold(held: Held) -> None:
    """This process holds the conversation until `release`; the beat starts with the first one."""
    global _beating
    _held.add(held)
    loop = asyncio.get_running_loop()
    if _beating is None or _beating.done() or _beating.get_loop() is not loop:
        _beating = loop.create_task(_beat_while_held(), name="heartbeat")


def release(held: Held) -> None:
    """The conversation ended here; with none left, the beat stops."""
    global _beating
    _held.discard(held)
    if not _held and _beating is not None:
        _beating.cancel()
        _beating = None


async def beat() -> None:
    """Write the sign of life now; a failure is logged, and the next beat tries again."""
    now = asyncio.get_running_loop().time()
    alive = [(held.conversation_id, held.time_entry_id, now - held.started) for held in _held]
    try:
        # In slices, with a pause between them: the database thread takes the GIL for as
        # long as a call runs, and 300 conversations at once (30 ms of CPU under load) held
        # back every relayed frame long enough to show in the p99 (bench/relay.py).
        for start in range(0, len(alive), PER_CALL):
            if start:
                await asyncio.sleep(PAUSE)
            await database_sync_to_async(services.conversations_alive)(alive[start : start + PER_CALL])
        await database_sync_to_async(services.conversations_close_interrupted)()
    except Exception:
        # Nothing is lost: the end of each conversation writes its own time, and a
        # conversation is only taken for abandoned after three missed beats.
        logger.exception("The heartbeat of %d conversations could not be written", len(alive))


async def _beat_while_held() -> None:
    while _held:
        await asyncio.sleep(services.HEARTBEAT_SECONDS)
        await beat()
