"""A browser's side of /ws/realtime/, driven through Channels' WebsocketCommunicator."""

import json
from typing import Any

from channels.testing import WebsocketCommunicator

from config.asgi import application


class BrowserSocket:
    def __init__(self, cookie: bytes | None, origin: bytes = b"http://localhost", path: str = "/ws/realtime/") -> None:
        headers = [(b"origin", origin)]
        if cookie is not None:
            headers.append((b"cookie", cookie))
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.frames: list[str] = []  # every text frame received, in order
        self.close_code: int | None = None

    async def connect(self) -> bool:
        connected, _ = await self.communicator.connect(timeout=5)
        return connected

    async def send(self, event: dict[str, Any] | str) -> None:
        await self.communicator.send_to(text_data=event if isinstance(event, str) else json.dumps(event))

    async def receive(self, timeout: float = 5) -> dict[str, Any] | None:
        """The next event, or None once the server has closed the socket."""
        message = await self.communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            return None
        self.frames.append(message["text"])
        return json.loads(message["text"])

    async def until(self, event_type: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Events up to and including the first of this type."""
        events = []
        while True:
            event = await self.receive(timeout)
            assert event is not None, f"socket closed before {event_type}; got {[e['type'] for e in events]}"
            events.append(event)
            if event["type"] == event_type:
                return events

    async def until_closed(self, timeout: float = 5) -> list[dict[str, Any]]:
        events = []
        while (event := await self.receive(timeout)) is not None:
            events.append(event)
        return events

    async def disconnect(self, timeout: float = 1) -> None:
        """Close the socket; the app is cancelled if it has not finished within `timeout`."""
        await self.communicator.disconnect(timeout=timeout)
