"""An OpenAI-compatible chat-completions server on 127.0.0.1 that streams a scripted reply."""

import asyncio
import json


class FakeLanguageModel:
    def __init__(self, reply: list[str], status: int = 200) -> None:
        self.reply = reply
        self.status = status
        self.requests: list[dict] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def __aenter__(self) -> "FakeLanguageModel":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        body = json.loads(
            await reader.readexactly(int(headers.get("content-length", headers.get("Content-Length", 0))))
        )
        self.requests.append({"path": request_line.split(" ")[1], "body": body})
        if self.status != 200:
            writer.write(f"HTTP/1.1 {self.status} Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            for piece in self.reply:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                writer.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await writer.drain()
            writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
