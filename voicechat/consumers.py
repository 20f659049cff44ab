"""The browser socket: wires a Bridge, an upstream session and a RecordWriter together."""

import asyncio
import contextlib
import json
import logging
import math
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import DatabaseError

from voicechat import heartbeat, ledger, live, services, session_log, shutdown
from voicechat.conf import RealtimeConfig, realtime_config
from voicechat.models import EndReason
from voicechat.realtime import deadlines
from voicechat.realtime.bridge import Bridge
from voicechat.realtime.client_events import error_event
from voicechat.realtime.deadlines import Deadlines
from voicechat.realtime.failures import (
    SERVER_RESTART,
    Failure,
    failure_abuse,
    failure_budget,
    failure_database,
    failure_expired,
    failure_idle,
    failure_lost,
    failure_session_limit,
    failure_shutdown,
    failure_staff_ended,
    failure_too_many_sessions,
)
from voicechat.realtime.recorder import ServiceError, TranscriptionUsage, Usage
from voicechat.realtime.retry import retry_delay
from voicechat.upstream import Upstream, UpstreamError
from voicechat.upstream.local import open_local
from voicechat.upstream.service import open_service
from voicechat.writer import DRAIN_TIMEOUT, RecordWriter

logger = logging.getLogger(__name__)

SHUTDOWN_DETAIL = "The server was stopped."


async def open_upstream(config: RealtimeConfig) -> Upstream:
    if config.uses_local_engine:
        return await open_local(config)
    return await open_service(config)


class RealtimeConsumer(AsyncWebsocketConsumer):
    upstream: Upstream | None = None
    writer: RecordWriter | None = None
    pump: asyncio.Task | None = None
    watchdog: asyncio.Task | None = None
    held: heartbeat.Held | None = None  # in this process's heartbeat
    time_entry_id: int | None = None
    listening = False  # to requests to end the conversation from the admin (voicechat.live)
    ended = False

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.run(scope, receive, send)
        except asyncio.CancelledError:
            # A server cancels its applications when it stops (daphne does on SIGTERM): end
            # the conversation, save what was said, and tell the page (4012) before letting go.
            await self.fail(failure_shutdown(), detail=SHUTDOWN_DETAIL)
            raise

    async def run(self, scope, receive, send) -> None:
        """Channels' `AsyncConsumer.__call__`, with the socket's messages awaited in this task.

        Channels waits on the socket and the channel layer at once with a new task and
        `asyncio.wait` for each message: for the page's frames that took a tenth of the
        relay's CPU (bench/relay.py). The channel layer, which only brings the admin's
        request to end the conversation, is listened to in a task of its own.
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        listener = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            listener = asyncio.create_task(self.listen())
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if listener is not None:
                if self.ended and self.writer is not None:
                    await self.finished.wait()  # an end begun by the listener saves before it goes
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def listen(self) -> None:
        """Dispatch what the channel layer brings, beside the socket's frames."""
        try:
            while True:
                await self.dispatch(await self.channel_layer.receive(self.channel_name))
        except Exception:
            # The conversation goes on; only the admin can no longer end it.
            logger.exception("The channel layer failed: this socket no longer hears from it")

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before each message, a hop to the
        # database thread and back: for the page's frames (25 a second each), which use no
        # connection of this thread, that hop took a third of the relay's CPU (bench/relay.py).
        # The writer's database calls close theirs, as every database_sync_to_async call does.
        if message["type"] == "websocket.receive":
            await self.receive(message.get("text"), message.get("bytes"))
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.config = config = realtime_config()
        self.limits = limits = config.limits
        self.service_error: ServiceError | None = None
        self.tokens_used = 0
        await self.accept()
        try:
            budget = await database_sync_to_async(ledger.budget_check)(user)
            if budget.refusal:
                await self.refuse(failure_budget(budget.refusal))
                return
            conversation, earlier_turns = await self.open_conversation(user)
            self.time_entry_id = await database_sync_to_async(ledger.open_time)(conversation_id=conversation.pk)
        except services.TooManyConversations:
            await self.refuse(failure_too_many_sessions(limits.max_sessions_per_user))
            return
        except DatabaseError:
            logger.exception("No conversation started for user %s: the database failed", user.pk)
            await self.refuse(failure_database())
            return
        self.tokens_left = budget.tokens_left
        self.user_id = user.pk
        self.listening = await live.join(conversation.pk, self.channel_name)
        session_log.started(
            conversation_id=conversation.pk,
            user_id=user.pk,
            engine=config.engine_label,
            resumed=conversation.resumes > 0,
        )
        loop = asyncio.get_running_loop()
        self.deadlines = Deadlines(
            started=loop.time(),
            max_seconds=limits.max_session_minutes * 60,
            budget_seconds=budget.seconds_left,
            idle_seconds=limits.idle_timeout_minutes * 60,
        )
        self.resumes_left = config.max_resumes
        self.bridge = Bridge(
            shape=config.shape,
            session=config.session,
            max_client_frame_bytes=config.max_client_frame_bytes,
            earlier_turns=earlier_turns,
            max_events_per_second=limits.max_events_per_second,
            max_refused_per_minute=limits.max_refused_per_minute,
        )
        self.finished = asyncio.Event()  # set once end() has saved what it could
        self.writer = RecordWriter(
            conversation.pk, epoch=conversation.resumes, retry_seconds=limits.save_retry_seconds, notify=self.saving
        )
        self.watchdog = asyncio.create_task(self.watch())
        # This process tells the database, now and then, that it holds the conversation.
        self.held = heartbeat.Held(conversation.pk, self.time_entry_id, started=self.deadlines.started)
        heartbeat.hold(self.held)
        self.shutdown = shutdown.Ending(self.end_at_shutdown)
        shutdown.register(self.shutdown)
        try:
            self.upstream = await self.connect_upstream()
        except UpstreamError as error:
            await self.fail(error.failure)
            return
        if self.ended:  # a limit was reached while connecting
            await self.upstream.close()
            return
        self.bridge.start()
        await self.flush_upstream()
        await self.send_json_event(
            "voicechat.conversation",
            conversation_id=conversation.pk,
            engine=config.engine_label,
            resumed=conversation.resumes > 0,
            mode="hands_free" if self.bridge.hands_free else "push_to_talk",
        )
        self.pump = asyncio.create_task(self.relay_upstream())

    async def open_conversation(self, user):
        """The conversation the page asks to go on with (after its socket dropped), or a new one."""
        query = parse_qs(self.scope.get("query_string", b"").decode())
        wanted = query.get("conversation", [""])[0]
        max_open = self.limits.max_sessions_per_user
        if wanted.isdigit():
            resumed = await database_sync_to_async(services.conversation_resume)(
                user=user, conversation_id=int(wanted), window=self.config.resume_window, max_open=max_open
            )
            if resumed is not None:
                return resumed
        conversation = await database_sync_to_async(services.conversation_start)(
            user=user,
            engine=self.config.engine_label,
            deployment=self.config.deployment_name,
            endpoint_shape=self.config.shape.value,
            voice=self.config.session.voice,
            max_open=max_open,
        )
        return conversation, []

    async def connect_upstream(self) -> Upstream:
        """Open the upstream session, trying again after throttling or a transient failure."""
        retries = self.limits.connect_retries
        for attempt in range(1, retries + 2):
            try:
                return await open_upstream(self.config)
            except UpstreamError as error:
                failure = error.failure
                if not failure.retryable or attempt > retries or self.ended:
                    raise
                delay = retry_delay(
                    attempt,
                    base=self.limits.retry_base_seconds,
                    cap=self.limits.retry_max_seconds,
                    retry_after=failure.retry_after,
                )
                logger.info(
                    "Upstream connection failed (%s); retry %d of %d in %.1fs", failure.reason, attempt, retries, delay
                )
                await self.send_json_event(
                    "voicechat.notice",
                    message=f"{EndReason(failure.reason).label}. Trying again in {math.ceil(delay)} s "
                    f"(attempt {attempt + 1} of {retries + 1})…",
                    retry_in=round(delay, 2),
                    attempt=attempt + 1,
                    attempts=retries + 1,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.upstream is None or self.ended:
            return
        self.deadlines.activity(asyncio.get_running_loop().time())
        self.bridge.receive_client(text_data, bytes_data)
        await self.flush_upstream()
        await self.flush_client()
        self.save_records()
        if self.bridge.abusive:
            logger.warning("Conversation %s: closed for abuse", self.writer.conversation_id)
            await self.fail(failure_abuse(self.bridge.recent_refusals))

    async def disconnect(self, code: int) -> None:
        if code == SERVER_RESTART:  # uvicorn stopping: a browser may not send it
            await self.end(EndReason.SERVER_SHUTDOWN, SHUTDOWN_DETAIL)
        else:
            await self.end(EndReason.CLIENT_CLOSED, f"The browser closed the socket (code {code}).")

    async def conversation_end(self, message: dict) -> None:
        """Staff ended the conversation from the admin, in whichever process they were served."""
        by = str(message.get("by", ""))[:150]
        logger.info("Conversation %s: ended by staff (%s)", self.writer.conversation_id if self.writer else "-", by)
        failure = failure_staff_ended()
        await self.fail(failure, detail=f"Ended by staff ({by}) in the admin.")

    async def relay_upstream(self) -> None:
        """Forward every service frame to the browser, in order, and record what it says.

        When the service session ends on its own, the conversation goes on in a
        new one (a bounded number of times) with the earlier turns re-sent.
        """
        try:
            while True:
                async for frame in self.upstream:
                    if isinstance(frame, bytes):
                        logger.warning("Ignored a binary frame from the voice service (%d bytes)", len(frame))
                        continue
                    self.bridge.receive_upstream(frame)
                    await self.flush_client()
                    self.save_records()
                    if self.tokens_left is not None and self.tokens_used >= self.tokens_left:
                        await self.fail(
                            failure_budget(
                                "This conversation used the rest of today's token budget and was ended; it is saved."
                            )
                        )
                        return
                if self.ended:
                    return
                failure = self.upstream_failure()
                if (
                    failure.reason not in (EndReason.SESSION_EXPIRED, EndReason.UPSTREAM_CLOSED)
                    or not self.resumes_left
                ):
                    # The service's own fatal error was relayed as it came; an expiry was not.
                    await self.fail(failure, relayed=failure.reason == EndReason.UPSTREAM_ERROR)
                    return
                await self.resume_upstream(failure)
        except UpstreamError as error:
            await self.fail(error.failure)
        except Exception:
            # Never leave the conversation open behind a dead relay.
            logger.exception("Conversation %s: the relay failed", self.writer.conversation_id)
            await self.fail(failure_lost("relay error"))

    def upstream_failure(self) -> Failure:
        error = self.service_error
        if error is not None and error.code == "session_expired":
            return failure_expired()
        if error is not None:
            return Failure(EndReason.UPSTREAM_ERROR, error.message, 4502)
        return failure_lost(self.upstream.close_detail)

    async def resume_upstream(self, failure: Failure) -> None:
        """Open a new service session for the same conversation and re-send what was said."""
        self.resumes_left -= 1
        self.service_error = None
        self.bridge.finish(failure.reason.replace("_", " "))
        self.save_records()
        await self.upstream.close()
        await self.send_json_event(
            "voicechat.notice", message="The voice service session ended; reconnecting and restoring the conversation…"
        )
        self.upstream = await self.connect_upstream()
        # Counted through the writer, in order before any later end, and the epoch changed
        # at once: a socket that goes meanwhile still ends the conversation it owns.
        self.writer.epoch += 1
        self.writer.call(services.conversation_count_resume, conversation_id=self.writer.conversation_id)
        self.bridge.start()
        await self.flush_upstream()
        turns = len(self.bridge.history())
        await self.send_json_event("voicechat.notice", message=f"Reconnected: the assistant remembers {turns} turns.")
        logger.info("Conversation %s resumed in a new session (%s)", self.writer.conversation_id, failure.reason)

    async def watch(self) -> None:
        """End the conversation at its limits (this process's heartbeat says it is held)."""
        loop = asyncio.get_running_loop()
        while not self.ended:
            now = loop.time()
            due = self.deadlines.due(now)
            if due is not None:
                logger.info("Conversation %s: %s reached", self.writer.conversation_id, due)
                await self.fail(self.limit_failure(due))
                return
            wake = self.deadlines.next_due()
            if wake is None:
                return  # no limit is set
            await asyncio.sleep(max(0.05, wake - now))

    def limit_failure(self, due: str) -> Failure:
        if due == deadlines.SESSION_LIMIT:
            return failure_session_limit(self.limits.max_session_minutes)
        if due == deadlines.IDLE:
            return failure_idle(self.limits.idle_timeout_minutes)
        return failure_budget(
            "This conversation used the rest of today's conversation time and was ended; it is saved. "
            "The budget renews at midnight; staff can reset it."
        )

    async def saving(self, ok: bool) -> None:
        """Tell the page when its turns cannot be saved for now, and when they are again."""
        if self.ended:
            return
        if ok:
            message = "The database is back: every turn so far is saved."
        else:
            message = "The server cannot reach its database: turns are kept and will be saved when it is back."
        await self.send_json_event("voicechat.notice", message=message, saving=ok)

    async def send_to_browser(self, text: str) -> None:
        """Send a frame to the page; one that has gone meanwhile is told by its own disconnect."""
        try:
            # The ASGI message itself, not through Channels' send(): two calls fewer a frame.
            await self.base_send({"type": "websocket.send", "text": text})
        except OSError:  # uvicorn's ClientDisconnected: the socket closed under the relay
            logger.debug("The browser had gone before a frame could reach it")

    async def send_json_event(self, event_type: str, **members) -> None:
        await self.send_to_browser(json.dumps({"type": event_type, **members}))

    async def flush_upstream(self) -> None:
        for frame in self.bridge.data_to_send_upstream():
            await self.upstream.send(frame)

    async def flush_client(self) -> None:
        for frame in self.bridge.data_to_send_client():
            await self.send_to_browser(frame)

    def save_records(self) -> None:
        for record in self.bridge.records():
            if isinstance(record, ServiceError):
                self.service_error = record
            elif isinstance(record, Usage | TranscriptionUsage):  # both count in the daily token budget
                self.tokens_used += record.total_tokens
            self.writer.put(record)

    async def refuse(self, failure: Failure) -> None:
        """Say why no conversation starts, and close; nothing was opened or recorded."""
        self.ended = True
        await self.send_to_browser(error_event(failure.message, code=failure.reason))
        with contextlib.suppress(OSError):
            await self.close(code=failure.close_code)

    async def fail(self, failure: Failure, *, relayed: bool = False, detail: str | None = None) -> None:
        """Tell the browser what went wrong (unless the service's own error already did), end, close.

        `detail` is recorded instead of the user's message, for what only staff should read.
        """
        if self.ended:
            return
        if not relayed:
            await self.send_to_browser(error_event(failure.message, code=failure.reason))
        await self.end(failure.reason, detail or failure.message)
        with contextlib.suppress(OSError):
            await self.close(code=failure.close_code)

    async def end_at_shutdown(self) -> None:
        """End as the server stops, and return only once the conversation is saved.

        The end may have begun elsewhere (daphne also cancels the application): the
        server must not tear the loop down under it.
        """
        await self.fail(failure_shutdown())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT + 2):
                await self.finished.wait()

    async def end(self, reason: str, detail: str) -> None:
        """End the conversation once: stop relaying, close the upstream, save what is left."""
        if self.ended or self.writer is None:
            self.ended = True
            return
        self.ended = True
        try:
            await self._end(reason, detail)
        finally:
            self.finished.set()

    async def _end(self, reason: str, detail: str) -> None:
        current = asyncio.current_task()
        for task in (self.pump, self.watchdog):
            if task is not None and task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.upstream is not None:
            await self.upstream.close()
        self.bridge.finish(EndReason(reason).label.lower())
        self.save_records()
        if self.held is not None:
            heartbeat.release(self.held)
        # The socket's connected time, to the end: the heartbeat's own write, for this one.
        seconds = asyncio.get_running_loop().time() - self.deadlines.started
        alive = [(self.writer.conversation_id, self.time_entry_id, seconds)]
        self.writer.call(services.conversations_alive, alive=alive)
        self.writer.end(reason, detail)
        session_log.ended(
            conversation_id=self.writer.conversation_id,
            user_id=self.user_id,
            duration_s=asyncio.get_running_loop().time() - self.deadlines.started,
            turns=len(self.bridge.history()),
            tokens=self.tokens_used,
            end_reason=reason,
        )
        if self.listening:
            await live.leave(self.writer.conversation_id, self.channel_name)
        await self.writer.close()
        shutdown.unregister(self.shutdown)
