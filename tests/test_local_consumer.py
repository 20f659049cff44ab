"""The consumer with no cloud settings at all: the built-in local engine answers."""

import base64

import pytest

from tests.local_engine.audio import clip_24k, silence
from tests.test_consumer import ended, open_socket, saved_turns

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_whole_turn_with_the_local_engine_is_saved(user):
    browser = await open_socket(user)
    events = await browser.until("session.updated", timeout=30)
    announced = next(e for e in events if e["type"] == "voicechat.conversation")
    assert announced["engine"] == "Local voice engine (pocketsphinx + espeak-ng)"
    audio = silence(300) + clip_24k("lights_flite_24k.wav") + silence(700)
    for offset in range(0, len(audio), 1920):
        chunk = base64.b64encode(audio[offset : offset + 1920]).decode()
        await browser.send({"type": "input_audio_buffer.append", "audio": chunk})
    events = await browser.until("response.done", timeout=30)
    assert sum(e["type"] == "response.output_audio.delta" for e in events) > 5

    turns = await saved_turns(announced["conversation_id"], 2)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert "lights" in turns[0].text
    assert turns[1].text.startswith(f"I heard: {turns[0].text}.")
    await browser.disconnect()
    conversation = await ended(announced["conversation_id"])
    assert (conversation.engine, conversation.deployment, conversation.end_reason) == (
        "Local voice engine (pocketsphinx + espeak-ng)",
        "local",
        "client_closed",
    )
    assert conversation.total_tokens > 0
