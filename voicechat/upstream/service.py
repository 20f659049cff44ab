"""The realtime service's WebSocket, Azure OpenAI's or OpenAI's, opened with `websockets`."""

import asyncio
import contextlib
import logging
from dataclasses import replace

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State

from voicechat.conf import RealtimeConfig
from voicechat.realtime.endpoint import Auth, Provider, auth_headers
from voicechat.realtime.failures import (
    failure_for_refusal,
    failure_for_status,
    failure_timeout,
    failure_unreachable,
    refusal_code,
)
from voicechat.realtime.retry import retry_after_seconds
from voicechat.upstream import UpstreamError
from voicechat.upstream.entra import entra_token

logger = logging.getLogger(__name__)


class RedactCredentials(logging.Filter):
    """`websockets` logs handshake headers at DEBUG level; never let a key or a token through."""

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


class RelayConnection(ClientConnection):
    """websockets' client connection, with a short way to send a text frame.

    `send()` enters an async context manager and awaits `drain()` for every frame, about
    20 µs a frame on the benchmark machine, near a tenth of the relay's CPU. While the
    connection is open and its transport takes more data, a frame needs neither.
    """

    async def send_text(self, frame: str) -> None:
        if self.protocol.state is not State.OPEN or self.paused or self.send_in_progress is not None:
            await self.send(frame)  # closing, writing too fast for the peer, or mid-message
            return
        self.protocol.send_text(frame.encode())
        self.send_data()


class ServiceUpstream:
    def __init__(self, connection: RelayConnection, first_frame: str | bytes | None = None) -> None:
        self._connection = connection
        self._first_frame = first_frame  # read while connecting, handed on first

    async def send(self, frame: str) -> None:
        # A closed connection is reported once, by the receiving side.
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send_text(frame)

    def __aiter__(self) -> "ServiceUpstream":
        return self

    async def __anext__(self) -> str | bytes:
        # recv() itself, not an async generator over the connection's own: each layer
        # costs every frame a coroutine step (bench/relay.py).
        if self._first_frame is not None:
            frame, self._first_frame = self._first_frame, None
            return frame
        try:
            return await self._connection.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        await self._connection.close()

    @property
    def close_detail(self) -> str:
        code = self._connection.close_code
        reason = self._connection.close_reason
        if code is None:
            return "no close frame"
        return f"code {code}" + (f": {reason}" if reason else "")


async def open_service(config: RealtimeConfig) -> ServiceUpstream:
    """Open a session with the configured service; raise UpstreamError with what the user should do."""
    try:
        url = config.url
    except ValueError as error:
        # A malformed endpoint setting: no retry will mend it.
        failure = replace(failure_unreachable(config.host, str(error), provider=config.provider), retryable=False)
        raise UpstreamError(failure) from None
    # With Entra ID, a token is asked of the credential for every connection, resumptions included.
    secret = await entra_token(config.connect_timeout) if config.auth is Auth.ENTRA_ID else config.key
    connection = await open_socket(url, auth_headers(config.provider, config.auth, secret), config)
    if config.provider is not Provider.OPENAI:
        return ServiceUpstream(connection)
    # OpenAI accepts every handshake, then refuses a bad key or model with an `error` event and
    # a close: its first event tells whether the session is open.
    return ServiceUpstream(connection, await _first_frame(connection, config))


async def open_socket(url: str, headers: dict[str, str], config: RealtimeConfig) -> RelayConnection:
    """Open a realtime WebSocket with these handshake headers; raise UpstreamError if it is refused."""
    try:
        return await connect(
            url,
            additional_headers=headers,
            open_timeout=config.connect_timeout,
            close_timeout=2,
            max_size=MAX_FRAME_BYTES,
            # Audio is base64 noise to deflate: compressing costs CPU for little gain.
            compression=None,
            logger=wire_logger,
            create_connection=RelayConnection,
        )
    except InvalidStatus as error:
        status = error.response.status_code
        logger.warning("Upstream refused the handshake with HTTP %s (%s)", status, config.host)
        retry_after = retry_after_seconds(error.response.headers)
        failure = failure_for_status(
            status,
            deployment=config.deployment_name,
            retry_after=retry_after,
            provider=config.provider,
            auth=config.auth,
        )
        raise UpstreamError(failure) from None
    except TimeoutError:
        logger.warning("Upstream handshake timed out after %ss (%s)", config.connect_timeout, config.host)
        raise UpstreamError(failure_timeout(config.host, config.connect_timeout)) from None
    except (OSError, InvalidHandshake, InvalidURI, asyncio.IncompleteReadError) as error:
        cause = getattr(error, "strerror", None) or type(error).__name__
        logger.warning("Upstream unreachable (%s): %s", config.host, cause)
        raise UpstreamError(failure_unreachable(config.host, cause, provider=config.provider)) from None


async def _first_frame(connection: RelayConnection, config: RealtimeConfig) -> str | bytes:
    """The session's first frame, unless it refuses the session."""
    try:
        async with asyncio.timeout(config.connect_timeout):
            frame = await connection.recv()
    except TimeoutError:
        await connection.close()
        logger.warning("Upstream sent no event within %ss (%s)", config.connect_timeout, config.host)
        raise UpstreamError(failure_timeout(config.host, config.connect_timeout)) from None
    except ConnectionClosed:
        code = None
    else:
        code = refusal_code(frame)
        if code is None:
            return frame
        await connection.close()
    # Only the code is logged: OpenAI's message about a bad key quotes part of it.
    logger.warning("Upstream refused the session: %s, close code %s (%s)", code, connection.close_code, config.host)
    failure = failure_for_refusal(
        code, connection.close_code, deployment=config.deployment_name, provider=config.provider, auth=config.auth
    )
    raise UpstreamError(failure)
