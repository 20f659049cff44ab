"""Saves a conversation's records in the background, in order, so audio never waits on the database."""

import asyncio
import logging

from channels.db import database_sync_to_async

from voicechat import services
from voicechat.realtime.recorder import Record

logger = logging.getLogger(__name__)

# How long the end of a conversation may wait for its last writes.
DRAIN_TIMEOUT = 8.0
RETRY_DELAYS = (0.2, 0.5, 1.0)


class RecordWriter:
    def __init__(self, conversation_id: int, *, epoch: int) -> None:
        self.conversation_id = conversation_id
        self.epoch = epoch  # the conversation's `resumes` count this socket owns
        self._queue: asyncio.Queue[tuple[str, object] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name=f"record-writer-{conversation_id}")

    def put(self, record: Record) -> None:
        self._queue.put_nowait(("record", record))

    def end(self, reason: str, detail: str) -> None:
        self._queue.put_nowait(("end", (reason, detail)))

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), DRAIN_TIMEOUT)
        except TimeoutError:
            logger.error("Conversation %s: records still unwritten after %ss", self.conversation_id, DRAIN_TIMEOUT)

    async def _run(self) -> None:
        while (entry := await self._queue.get()) is not None:
            kind, payload = entry
            await self._write(kind, payload)

    async def _write(self, kind: str, payload: object) -> None:
        for delay in (*RETRY_DELAYS, None):
            try:
                if kind == "record":
                    await database_sync_to_async(services.record_save)(
                        conversation_id=self.conversation_id, record=payload
                    )
                else:
                    reason, detail = payload
                    await database_sync_to_async(services.conversation_end)(
                        conversation_id=self.conversation_id, reason=reason, detail=detail, epoch=self.epoch
                    )
                return
            except Exception:
                if delay is None:
                    logger.exception("Conversation %s: could not save a %s", self.conversation_id, kind)
                    return
                await asyncio.sleep(delay)
