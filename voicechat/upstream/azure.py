"""The Azure OpenAI realtime WebSocket, opened with `websockets`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voicechat.conf import RealtimeConfig
from voicechat.realtime.failures import failure_for_status, failure_timeout, failure_unreachable
from voicechat.realtime.retry import retry_after_seconds
from voicechat.upstream import UpstreamError

logger = logging.getLogger(__name__)


class RedactCredentials(logging.Filter):
    """`websockets` logs handshake headers at DEBUG level; never let a credential through."""

    HEADERS = ("api-key:", "authorization:")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        lowered = message.lower()
        for header in self.HEADERS:
            start = lowered.find(header)
            if start != -1:
                record.msg, record.args = message[: start + len(header)] + " [redacted]", ()
                break
        return True


# The connection's own log, with credentials taken out.
wire_logger = logging.getLogger("voicechat.upstream.wire")
wire_logger.addFilter(RedactCredentials())

# Service frames carry up to a few seconds of audio; the default 1 MiB is too tight.
MAX_FRAME_BYTES = 16 * 1024 * 1024


class AzureUpstream:
    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def send(self, frame: str) -> None:
        # A closed connection is reported once, by the receiving side.
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(frame)

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        try:
            async for frame in self._connection:
                yield frame
        except ConnectionClosed:
            return

    async def close(self) -> None:
        await self._connection.close()

    @property
    def close_detail(self) -> str:
        code = self._connection.close_code
        reason = self._connection.close_reason
        if code is None:
            return "no close frame"
        return f"code {code}" + (f": {reason}" if reason else "")


async def open_azure(config: RealtimeConfig) -> AzureUpstream:
    """Open the realtime session; raise UpstreamError with what the user should do."""
    try:
        url = config.url
    except ValueError as error:
        # A malformed endpoint setting: no retry will mend it.
        failure = replace(failure_unreachable(config.endpoint, str(error)), retryable=False)
        raise UpstreamError(failure) from None
    try:
        connection = await connect(
            url,
            additional_headers={"api-key": config.api_key},
            open_timeout=config.connect_timeout,
            close_timeout=2,
            max_size=MAX_FRAME_BYTES,
            # Audio is base64 noise to deflate: compressing costs CPU for little gain.
            compression=None,
            logger=wire_logger,
        )
    except InvalidStatus as error:
        status = error.response.status_code
        logger.warning("Upstream refused the handshake with HTTP %s (%s)", status, config.host)
        retry_after = retry_after_seconds(error.response.headers)
        raise UpstreamError(failure_for_status(status, deployment=config.deployment, retry_after=retry_after)) from None
    except TimeoutError:
        logger.warning("Upstream handshake timed out after %ss (%s)", config.connect_timeout, config.host)
        raise UpstreamError(failure_timeout(config.host, config.connect_timeout)) from None
    except (OSError, InvalidHandshake, InvalidURI, asyncio.IncompleteReadError) as error:
        cause = getattr(error, "strerror", None) or type(error).__name__
        logger.warning("Upstream unreachable (%s): %s", config.host, cause)
        raise UpstreamError(failure_unreachable(config.host, cause)) from None
    return AzureUpstream(connection)
