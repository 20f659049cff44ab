"""Sockets by the hundred opening or closing at once: every one's call to the Redis channel layer gets through."""

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from channels.layers import get_channel_layer

from voicechat import live

# A Redis database of these tests' own, beside the ones the rest of the suite may use.
REDIS_DB = 4
# Three times the connections redis-py's pool opens for one event loop before it refuses the next.
SOCKETS = 300


@pytest.fixture
def redis_layer(settings):
    """The Redis channel layer, as production configures it; a client to look into Redis with."""
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    url = urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": None}]},
        }
    }
    yield client
    client.flushdb()
    client.close()


def members(client: redis.Redis, conversation_ids: range) -> list[int]:
    layer = get_channel_layer()
    return [client.zcard(layer._group_key(live.group_name(pk))) for pk in conversation_ids]


async def test_hundreds_of_sockets_opening_at_once_all_listen_and_closing_at_once_all_leave(redis_layer, caplog):
    layer = get_channel_layer()
    channels = [await layer.new_channel() for _ in range(SOCKETS)]
    conversations = range(1, SOCKETS + 1)

    async with asyncio.timeout(live.LAYER_TIMEOUT * 5):
        joined = await asyncio.gather(*(live.join(pk, name) for pk, name in enumerate(channels, 1)))
    assert joined == [True] * SOCKETS
    assert members(redis_layer, conversations) == [1] * SOCKETS

    async with asyncio.timeout(live.LAYER_TIMEOUT * 5):
        await asyncio.gather(*(live.leave(pk, name) for pk, name in enumerate(channels, 1)))
    assert members(redis_layer, conversations) == [0] * SOCKETS
    assert not [r.getMessage() for r in caplog.records if r.name == live.__name__]


async def test_a_conversation_is_ended_while_hundreds_of_others_leave(redis_layer):
    layer = get_channel_layer()
    holder = await layer.new_channel()
    others = [await layer.new_channel() for _ in range(SOCKETS)]
    assert await live.join(1, holder)
    assert all(await asyncio.gather(*(live.join(pk, name) for pk, name in enumerate(others, 2))))

    async with asyncio.timeout(live.LAYER_TIMEOUT * 5):
        await asyncio.gather(
            live.request_end(1, by="staff"), *(live.leave(pk, name) for pk, name in enumerate(others, 2))
        )
        message = await layer.receive(holder)

    assert message == {"type": live.END_MESSAGE, "by": "staff"}
