"""The service connection's short way to send: order, flow control and a closed connection kept."""

import asyncio
import contextlib

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voicechat.upstream.service import RelayConnection

FRAMES = 40
BIG = "A" * 256 * 1024  # a few of these fill loopback's buffers


@contextlib.asynccontextmanager
async def service(handler):
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**21) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}", create_connection=RelayConnection, compression=None, max_size=2**21
        ) as connection:
            yield connection


async def test_frames_sent_the_short_way_arrive_whole_and_in_order():
    received = []
    done = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            received.append(message)
            if len(received) == FRAMES:
                done.set()

    async with service(handler) as connection:
        for number in range(FRAMES):
            await connection.send_text(f'{{"n":{number},"pad":"{"é" * number}"}}')
        async with asyncio.timeout(10):
            await done.wait()
    assert received == [f'{{"n":{number},"pad":"{"é" * number}"}}' for number in range(FRAMES)]


async def test_a_service_that_stops_reading_holds_the_sender_back_and_loses_nothing():
    reading = asyncio.Event()
    received = []
    all_received = asyncio.Event()
    expected = []  # how many, once the sender knows

    async def handler(connection: ServerConnection) -> None:
        await reading.wait()
        async for message in connection:
            received.append(message)
            if expected and len(received) == expected[0]:
                all_received.set()

    async with service(handler) as connection:
        held = None
        for number in range(200):  # loopback buffers hold a few megabytes at most
            sending = asyncio.ensure_future(connection.send_text(f"{number:04d}{BIG}"))
            try:
                async with asyncio.timeout(0.5):
                    await asyncio.shield(sending)
            except TimeoutError:
                held = number
                break
        assert held is not None, "the sender was never held back"
        assert connection.paused  # the transport's buffer is full: the frame waits in send()
        expected.append(held + 1)
        reading.set()
        async with asyncio.timeout(10):
            await sending
            await all_received.wait()
    assert [message[:4] for message in received] == [f"{number:04d}" for number in range(held + 1)]
    assert all(message[4:] == BIG for message in received)


async def test_sending_on_a_closed_connection_raises_connection_closed():
    async def handler(connection: ServerConnection) -> None:
        await connection.close()

    async with service(handler) as connection:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                await connection.wait_closed()
                await connection.send_text('{"type":"response.create"}')
