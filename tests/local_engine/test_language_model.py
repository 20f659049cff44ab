"""Reply text streamed from an OpenAI-compatible server on 127.0.0.1."""

import socket

import pytest

from tests.local_engine.fake_llm import FakeLanguageModel
from voicechat.local_engine.language_model import LanguageModelError, stream_reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


async def test_the_reply_streams_in_pieces():
    async with FakeLanguageModel(["Hello", " there.", " How are", " you?"]) as llm:
        pieces = [piece async for piece in stream_reply(llm.url, MESSAGES, model="llama")]
    assert pieces == ["Hello", " there.", " How are", " you?"]
    (request,) = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"] == {"messages": MESSAGES, "stream": True, "model": "llama"}


async def test_server_errors_are_reported():
    async with FakeLanguageModel([], status=500) as llm:
        with pytest.raises(LanguageModelError, match="HTTP 500"):
            [piece async for piece in stream_reply(llm.url, MESSAGES)]


async def test_unreachable_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LanguageModelError, match="could not be reached"):
        [piece async for piece in stream_reply(f"http://127.0.0.1:{port}/v1", MESSAGES)]
