"""The browser socket: wires a Bridge, an upstream session and a RecordWriter together."""

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from voicechat import services
from voicechat.conf import RealtimeConfig, realtime_config
from voicechat.models import EndReason
from voicechat.realtime.bridge import Bridge
from voicechat.realtime.client_events import error_event
from voicechat.realtime.failures import UpstreamFailure, failure_expired, failure_lost
from voicechat.realtime.recorder import ServiceError
from voicechat.upstream import Upstream, UpstreamError
from voicechat.upstream.azure import open_azure
from voicechat.upstream.local import open_local
from voicechat.writer import RecordWriter

logger = logging.getLogger(__name__)


async def open_upstream(config: RealtimeConfig) -> Upstream:
    if config.uses_local_engine:
        return await open_local(config)
    return await open_azure(config)


class RealtimeConsumer(AsyncWebsocketConsumer):
    upstream: Upstream | None = None
    writer: RecordWriter | None = None
    pump: asyncio.Task | None = None
    ended = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.config = config = realtime_config()
        self.service_error: ServiceError | None = None
        await self.accept()
        conversation, earlier_turns = await self.open_conversation(user)
        self.resumes_left = config.max_resumes
        self.bridge = Bridge(
            shape=config.shape,
            session=config.session,
            max_client_frame_bytes=config.max_client_frame_bytes,
            earlier_turns=earlier_turns,
        )
        self.writer = RecordWriter(conversation.pk, epoch=conversation.resumes)
        try:
            self.upstream = await open_upstream(config)
        except UpstreamError as error:
            await self.fail(error.failure)
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
        logger.info("Conversation %s started for user %s (%s)", conversation.pk, user.pk, config.engine_label)

    async def open_conversation(self, user):
        """The conversation the page asks to go on with (after its socket dropped), or a new one."""
        query = parse_qs(self.scope.get("query_string", b"").decode())
        wanted = query.get("conversation", [""])[0]
        if wanted.isdigit():
            resumed = await database_sync_to_async(services.conversation_resume)(
                user=user, conversation_id=int(wanted), window=self.config.resume_window
            )
            if resumed is not None:
                return resumed
        conversation = await database_sync_to_async(services.conversation_start)(
            user=user,
            engine=self.config.engine_label,
            deployment=self.config.deployment_name,
            endpoint_shape=self.config.shape.value,
            voice=self.config.session.voice,
        )
        return conversation, []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.upstream is None or self.ended:
            return
        self.bridge.receive_client(text_data, bytes_data)
        await self.flush_upstream()
        await self.flush_client()
        self.save_records()

    async def disconnect(self, code: int) -> None:
        await self.end(EndReason.CLIENT_CLOSED, f"The browser closed the socket (code {code}).")

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

    def upstream_failure(self) -> UpstreamFailure:
        error = self.service_error
        if error is not None and error.code == "session_expired":
            return failure_expired()
        if error is not None:
            return UpstreamFailure(EndReason.UPSTREAM_ERROR, error.message, 4502)
        return failure_lost(self.upstream.close_detail)

    async def resume_upstream(self, failure: UpstreamFailure) -> None:
        """Open a new service session for the same conversation and re-send what was said."""
        self.resumes_left -= 1
        self.service_error = None
        self.bridge.finish(failure.reason.replace("_", " "))
        self.save_records()
        await self.upstream.close()
        await self.send_json_event(
            "voicechat.notice", message="The voice service session ended; reconnecting and restoring the conversation…"
        )
        self.upstream = await open_upstream(self.config)
        self.writer.epoch = await database_sync_to_async(services.conversation_count_resume)(
            conversation_id=self.writer.conversation_id
        )
        self.bridge.start()
        await self.flush_upstream()
        turns = len(self.bridge.history())
        await self.send_json_event("voicechat.notice", message=f"Reconnected: the assistant remembers {turns} turns.")
        logger.info("Conversation %s resumed in a new session (%s)", self.writer.conversation_id, failure.reason)

    async def send_to_browser(self, text: str) -> None:
        """Send a frame to the page; one that has gone meanwhile is told by its own disconnect."""
        try:
            await self.send(text_data=text)
        except OSError:  # uvicorn's ClientDisconnected: the socket closed under the relay
            logger.debug("Conversation %s: the browser had gone", self.writer.conversation_id)

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
            self.writer.put(record)

    async def fail(self, failure: UpstreamFailure, *, relayed: bool = False) -> None:
        """Tell the browser what went wrong (unless the service's own error already did), end, close."""
        if not relayed:
            await self.send_to_browser(error_event(failure.message, code=failure.reason))
        await self.end(failure.reason, failure.message)
        with contextlib.suppress(OSError):
            await self.close(code=failure.close_code)

    async def end(self, reason: str, detail: str) -> None:
        """End the conversation once: stop relaying, close the upstream, save what is left."""
        if self.ended or self.writer is None:
            self.ended = True
            return
        self.ended = True
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.upstream is not None:
            await self.upstream.close()
        self.bridge.finish(EndReason(reason).label.lower())
        self.save_records()
        self.writer.end(reason, detail)
        await self.writer.close()
        logger.info("Conversation %s ended: %s", self.writer.conversation_id, reason)
