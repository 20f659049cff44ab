"""Connections to a realtime service, behind one small async interface."""

from collections.abc import AsyncIterator
from typing import Protocol

from voicechat.realtime.failures import Failure


class Upstream(Protocol):
    """One realtime session: send text frames, iterate over received ones, close."""

    async def send(self, frame: str) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...

    async def close(self) -> None: ...

    @property
    def close_detail(self) -> str:
        """Why the connection ended, once it has."""
        ...


class UpstreamError(Exception):
    """The upstream session could not be opened."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure
