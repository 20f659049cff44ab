"""Ending a live conversation from any process: the channel layer carries the request to the one holding it."""

import asyncio
import logging
import weakref

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# The message a holding socket acts on (RealtimeConsumer.conversation_end).
END_MESSAGE = "conversation.end"
# A channel layer that does not answer must not hold up a conversation's start or end.
LAYER_TIMEOUT = 2.0
# The Redis layer's pool (redis-py) opens at most 100 connections for an event loop and refuses
# the next call outright ("Too many connections"): hundreds of sockets opening or closing at once,
# after a restart say, would each lose their call. They take turns instead, this many at a time.
CALLS_AT_ONCE = 32

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def group_name(conversation_id: int) -> str:
    """The channel layer group the socket holding the conversation listens on."""
    return f"voicechat.conversation.{conversation_id}"


async def join(conversation_id: int, channel_name: str) -> bool:
    """Listen for requests to end the conversation; False if the channel layer failed."""
    return await _group_call("group_add", conversation_id, channel_name)


async def leave(conversation_id: int, channel_name: str) -> None:
    await _group_call("group_discard", conversation_id, channel_name)


async def request_end(conversation_id: int, *, by: str) -> None:
    """Ask whichever process holds the conversation to end it."""
    layer = get_channel_layer()
    async with asyncio.timeout(LAYER_TIMEOUT), _turn():
        await layer.group_send(group_name(conversation_id), {"type": END_MESSAGE, "by": by})


async def _group_call(method: str, conversation_id: int, channel_name: str) -> bool:
    layer = get_channel_layer()
    try:
        async with asyncio.timeout(LAYER_TIMEOUT), _turn():
            await getattr(layer, method)(group_name(conversation_id), channel_name)
    except Exception as error:  # the conversation goes on; only ending it from the admin is lost
        logger.warning("Conversation %s: the channel layer failed (%s): %s", conversation_id, method, error)
        return False
    return True


def _turn() -> asyncio.Semaphore:
    """This event loop's turns at the channel layer (a semaphore serves one loop only)."""
    loop = asyncio.get_running_loop()
    try:
        return _turns[loop]
    except KeyError:
        return _turns.setdefault(loop, asyncio.Semaphore(CALLS_AT_ONCE))
