"""Reply text streamed from an OpenAI-compatible chat-completions server (llama.cpp, Ollama, ...)."""

import json
from collections.abc import AsyncIterator

import httpx


class LanguageModelError(Exception):
    """The language model server could not give a reply."""


async def stream_reply(
    url: str, messages: list[dict[str, str]], *, model: str = "", api_key: str = "", read_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Yield the reply's text as the server streams it (server-sent events)."""
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/chat/completions"):
        endpoint += "/chat/completions"
    body = {"messages": messages, "stream": True}
    if model:
        body["model"] = model
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with (
            httpx.AsyncClient(timeout=read_timeout) as client,
            client.stream("POST", endpoint, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise LanguageModelError(f"the language model server answered HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    choice = json.loads(data)["choices"][0]
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text
    except httpx.HTTPError as error:
        raise LanguageModelError(f"the language model server could not be reached ({type(error).__name__})") from None
