"""Microsoft Entra ID tokens for Azure OpenAI, from azure-identity's DefaultAzureCredential."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from voicechat.realtime.endpoint import ENTRA_SCOPE
from voicechat.realtime.failures import failure_entra_timeout, failure_entra_token
from voicechat.upstream import UpstreamError

if TYPE_CHECKING:
    from azure.identity import DefaultAzureCredential

logger = logging.getLogger(__name__)


class NoToken(Exception):
    """The credential got no token; the message says what it tried, for the server log."""


class EntraCredential:
    """The process's one DefaultAzureCredential, made on first use.

    The credential keeps the tokens it got and asks for a new one shortly before one expires,
    so a token is asked of it for every connection and never kept here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credential: DefaultAzureCredential | None = None
        # A thread of its own: a sign-in that hangs (an identity endpoint that never answers,
        # a stuck `az`) holds it, never the event loop's default executor, which also looks
        # up host names for every connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entra-token")
        self._asking: Future[str] | None = None

    def ask(self) -> Future[str]:
        """The token being asked for now, shared by every connection that waits meanwhile, or a new request.

        However many conversations start while the credential is slow, it is asked once at a time.
        """
        with self._lock:
            if self._asking is None or self._asking.done():
                self._asking = self._executor.submit(self.token)
            return self._asking

    def token(self) -> str:
        """A token for Azure OpenAI; blocking (HTTP, or a subprocess such as `az`): call it in a thread."""
        # Imported here: azure-identity takes most of a second to load, and only Entra ID needs it.
        from azure.core.exceptions import AzureError
        from azure.identity import DefaultAzureCredential

        try:
            with self._lock:
                if self._credential is None:
                    self._credential = DefaultAzureCredential()
                    logger.info("Microsoft Entra ID sign-in: DefaultAzureCredential tries %s", ", ".join(self.chain))
                credential = self._credential
            return credential.get_token(ENTRA_SCOPE).token
        except (AzureError, ValueError) as error:  # ValueError: a bad AZURE_TOKEN_CREDENTIALS
            raise NoToken(str(error)) from None

    @property
    def chain(self) -> list[str]:
        """The kinds of sign-in the credential tries, in order (empty before its first use)."""
        credential = self._credential
        return [] if credential is None else [type(each).__name__ for each in credential.credentials]

    def close(self) -> None:
        """Let the credential go; the next token makes a new one, from the environment as it is then."""
        with self._lock:
            credential, self._credential = self._credential, None
            self._asking = None
        if credential is not None:
            credential.close()


credential = EntraCredential()


async def entra_token(wait_seconds: float) -> str:
    """A token for this connection, asked in the credential's thread so the event loop never waits on it."""
    asking = asyncio.wrap_future(credential.ask())
    # The thread cannot be stopped: if this connection stops waiting (a timeout, a closed
    # socket), the request finishes or fails on its own, and asyncio must not report it.
    asking.add_done_callback(_take_outcome)
    try:
        async with asyncio.timeout(wait_seconds):
            # Shielded: the request is shared, and one connection giving up ends it for no other.
            return await asyncio.shield(asking)
    except TimeoutError:
        logger.warning("No Microsoft Entra ID token within %ss", wait_seconds)
        raise UpstreamError(failure_entra_timeout(wait_seconds)) from None
    except NoToken as error:
        # Why, for the administrator: the credential's account of each sign-in it tried. It holds
        # no token, as none was issued; the user is told only where to look.
        logger.warning("No Microsoft Entra ID token: %s", error)
        raise UpstreamError(failure_entra_token()) from None


def _take_outcome(asking: asyncio.Future) -> None:
    if not asking.cancelled():
        asking.exception()
