"""Saves a conversation's records in the background, in order, so audio never waits on the database.

When the database is unavailable, what is waiting stays queued, in memory and
in order, and is written once the database answers again.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from voicechat import services
from voicechat.realtime.recorder import Record

logger = logging.getLogger(__name__)

# How long the end of a conversation waits for its last writes before the socket
# lets go; what is still unwritten then goes on being retried in the background.
DRAIN_TIMEOUT = 8.0
# Waits between attempts while the database is unavailable.
OUTAGE_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
# Attempts for any other error (a bug, a constraint): it will not go away by waiting.
OTHER_ATTEMPTS = 3
# What a database that is down or unreachable raises, as opposed to a bad query.
OUTAGE_ERRORS = (OperationalError, InterfaceError)


class RecordWriter:
    def __init__(
        self,
        conversation_id: int,
        *,
        epoch: int,
        retry_seconds: float = 600.0,
        notify: Callable[[bool], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conversation_id = conversation_id
        self.epoch = epoch  # the conversation's `resumes` count this socket owns
        self.retry_seconds = retry_seconds
        self._notify = notify  # told False when saving stalls on the database, True when it is back
        self._clock = clock
        self._queue: asyncio.Queue[tuple[Callable[..., Any], dict[str, Any]] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name=f"record-writer-{conversation_id}")

    @property
    def pending(self) -> int:
        """Writes queued and not yet done."""
        return self._queue.qsize()

    def put(self, record: Record) -> None:
        self.call(services.record_save, conversation_id=self.conversation_id, record=record)

    def end(self, reason: str, detail: str) -> None:
        self.call(
            services.conversation_end,
            conversation_id=self.conversation_id,
            reason=reason,
            detail=detail,
            epoch=self.epoch,
        )

    def call(self, function: Callable[..., Any], **kwargs: Any) -> None:
        """Queue a write: `function(**kwargs)`, run in the database thread after those queued before it."""
        self._queue.put_nowait((function, kwargs))

    async def close(self) -> None:
        """Write what is queued, then stop; give up waiting (not writing) after DRAIN_TIMEOUT."""
        self._notify = None  # nobody is left to tell
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), DRAIN_TIMEOUT)
        except TimeoutError:
            logger.warning(
                "Conversation %s: %d writes wait for the database; they are retried for up to %gs",
                self.conversation_id,
                self.pending + 1,
                self.retry_seconds,
            )

    async def _run(self) -> None:
        while (entry := await self._queue.get()) is not None:
            function, kwargs = entry
            await self._write(function, kwargs)

    async def _write(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        name = getattr(function, "__name__", repr(function))
        call = database_sync_to_async(functools.partial(function, **kwargs))
        first_failure: float | None = None
        outages = others = 0
        while True:
            try:
                await call()
            except OUTAGE_ERRORS as error:
                if first_failure is None:
                    first_failure = self._clock()
                    logger.warning(
                        "Conversation %s: the database is unavailable (%s); keeping the records",
                        self.conversation_id,
                        error,
                    )
                    await self._tell(False)
                if self._clock() - first_failure > self.retry_seconds:
                    logger.error(
                        "Conversation %s: gave up saving %s(%r) after %gs without the database",
                        self.conversation_id,
                        name,
                        kwargs,
                        self.retry_seconds,
                    )
                    return
                await asyncio.sleep(OUTAGE_DELAYS[min(outages, len(OUTAGE_DELAYS) - 1)])
                outages += 1
            except Exception:
                others += 1
                if others >= OTHER_ATTEMPTS:
                    logger.exception("Conversation %s: could not save %s(%r)", self.conversation_id, name, kwargs)
                    return
                await asyncio.sleep(OUTAGE_DELAYS[0])
            else:
                if first_failure is not None:
                    logger.info("Conversation %s: the database is back; saving again", self.conversation_id)
                    await self._tell(True)
                return

    async def _tell(self, saving: bool) -> None:
        if self._notify is not None:
            try:
                await self._notify(saving)
            except Exception:
                logger.exception("Conversation %s: could not tell the page about saving", self.conversation_id)
