"""A loopback realtime service for bench/relay.py: each audio chunk comes back as an audio delta.

It speaks just enough of the GA shape for the app to open a session
(`session.created`, `session.updated`) and answers every
`input_audio_buffer.append` with a `response.output_audio.delta` carrying the
same base64 audio, so the load generator finds its own marks in the echo.
It runs on websockets' sans-I/O protocol, a plain asyncio Protocol per
connection, so that it costs as little as a service can: the benchmark times
the app, not this. Run in its own process: `python bench/echo_service.py PORT`.
"""

import asyncio
import gc
import itertools
import json
import signal
import sys

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

API_KEY = "bench-key"
# The page's compact JSON, which the app forwards byte for byte; anything else is parsed.
APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'
APPEND_TAIL = b'"}'
DELTA_HEAD = (
    b'{"type":"response.output_audio.delta","event_id":"event_%d","response_id":"resp_bench",'
    b'"item_id":"item_bench","output_index":0,"content_index":0,"delta":"'
)


class EchoSession(asyncio.Protocol):
    open_sessions = 0

    def __init__(self) -> None:
        # No extensions: like the app's own client, no compression (audio is base64 noise to deflate).
        self.ws = ServerProtocol(max_size=2**20)
        self.ids = itertools.count(1)
        self.parts: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        EchoSession.open_sessions += 1

    def connection_lost(self, exc: Exception | None) -> None:
        EchoSession.open_sessions -= 1
        if not EchoSession.open_sessions:
            gc.collect()  # between runs: the garbage collector never runs on its own here (main)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.handshake(event)
            elif isinstance(event, Frame):
                self.frame(event)
        self.flush()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self.flush()
        return False

    def handshake(self, request: Request) -> None:
        if request.headers.get("api-key") != API_KEY:
            self.ws.send_response(self.ws.reject(401, "Access denied due to invalid subscription key.\n"))
            return
        self.ws.send_response(self.ws.accept(request))
        created = {"type": "session.created", "event_id": "event_0", "session": {"id": f"sess_{id(self)}"}}
        self.ws.send_text(json.dumps(created).encode())

    def frame(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.CONT) or self.ws.state is not State.OPEN:
            return  # pings are answered by the protocol itself; a chunk after the close goes unanswered
        self.parts.append(frame.data)
        if not frame.fin:
            return
        message = b"".join(self.parts)
        self.parts.clear()
        if message.startswith(APPEND_HEAD) and message.endswith(APPEND_TAIL):
            audio = message[len(APPEND_HEAD) : -len(APPEND_TAIL)]
        else:
            event = json.loads(message)
            if event.get("type") == "session.update":
                reply = {"type": "session.updated", "event_id": f"event_{next(self.ids)}"}
                self.ws.send_text(json.dumps(reply).encode())
            if event.get("type") != "input_audio_buffer.append":
                return
            audio = event["audio"].encode()
        self.ws.send_text(DELTA_HEAD % next(self.ids) + audio + b'"}')

    def flush(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            else:  # the protocol is done with the connection
                self.transport.close()
                return


async def main(port: int) -> None:
    # A full collection stopped the service for tens of milliseconds in the middle of a
    # measured window: it collects only once no session is open.
    gc.disable()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(EchoSession, "127.0.0.1", port, backlog=1024)
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
