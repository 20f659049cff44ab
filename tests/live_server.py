"""The whole app served over real HTTP and WebSockets on 127.0.0.1, for browser tests."""

import asyncio
import socket
import threading
import time

import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from config.asgi import application


class _Server(uvicorn.Server):
    """uvicorn's server, keeping its event loop so tests can act on live connections."""

    loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)


class LiveServer:
    """uvicorn on a free loopback port, in a thread, sharing the test database."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            ASGIStaticFilesHandler(application), log_level="warning", lifespan="off", ws_max_size=1024 * 1024
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self._server.started, "the app server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def drop_websockets(self) -> int:
        """Cut every open WebSocket at the TCP level, as a network failure would (the browser sees 1006).

        Returns how many were cut.
        """

        def abort() -> int:
            dropped = 0
            for protocol in list(self._server.server_state.connections):
                if type(protocol).__module__.startswith("uvicorn.protocols.websockets") and protocol.transport:
                    protocol.transport.abort()
                    dropped += 1
            return dropped

        async def on_loop() -> int:
            return abort()

        return asyncio.run_coroutine_threadsafe(on_loop(), self._server.loop).result(5)
