"""The local engine alone: speech in, the realtime protocol's events out."""

import asyncio
import threading

import pytest

from tests.local_engine.audio import clip_24k, silence
from tests.local_engine.fake_llm import FakeLanguageModel
from tests.local_engine.session import EngineClient, reply_audio, types
from voicechat.local_engine.engine import LocalSession
from voicechat.local_engine.settings import LocalSettings
from voicechat.local_engine.speech_to_text import make_recognizer
from voicechat.local_engine.text_to_speech import make_synthesizer

SPOKEN_TURN = [
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.completed",
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
REPLY_END = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


@pytest.fixture
async def engine():
    session = await LocalSession.open(LocalSettings())
    client = EngineClient(session)
    created = await client.next()
    assert created["type"] == "session.created"
    await client.configure()
    yield client
    await session.close()


async def spoken_turn(client: EngineClient, clip: str) -> list[dict]:
    await client.speak(silence(300) + clip_24k(clip) + silence(600))
    return await client.until("response.done")


async def test_a_spoken_turn(engine):
    events = await spoken_turn(engine, "lights_flite_24k.wav")
    names = types(events)
    assert names[: len(SPOKEN_TURN)] == SPOKEN_TURN
    assert names[-len(REPLY_END) :] == REPLY_END
    middle = set(names[len(SPOKEN_TURN) : -len(REPLY_END)])
    assert middle == {"response.output_audio.delta", "response.output_audio_transcript.delta"}

    transcript = next(e for e in events if e["type"].endswith("transcription.completed"))["transcript"]
    assert transcript == "turn on the kitchen lights"
    user_item = events[2]["item_id"]
    assert events[3]["item"]["id"] == user_item and events[3]["item"]["role"] == "user"
    assistant = events[8]
    assert assistant["previous_item_id"] == user_item and assistant["item"]["role"] == "assistant"

    reply = events[-1]["response"]
    assert reply["status"] == "completed"
    words = reply["output"][0]["content"][0]["transcript"]
    assert words.startswith(f"I heard: {transcript}.")
    assert reply["usage"]["output_tokens"] == len(words.split())
    seconds = len(reply_audio(events)) / 2 / 24000
    # espeak-ng at about 175 words a minute: between 0.2 and 0.7 s a word.
    assert 0.2 * len(words.split()) < seconds < 0.7 * len(words.split())


async def test_speaking_during_a_reply_cancels_it(engine):
    await engine.speak(silence(300) + clip_24k("hello_flite_24k.wav") + silence(600))
    await engine.until("response.output_audio.delta")
    await engine.speak(clip_24k("lights_flite_24k.wav"))
    events = await engine.until("response.done")
    assert "input_audio_buffer.speech_started" in types(events)
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"
    await engine.speak(silence(600))
    second = await engine.until("response.done")
    assert second[-1]["response"]["status"] == "completed"


async def test_truncation_is_honoured(engine):
    events = await spoken_turn(engine, "hello_flite_24k.wav")
    item_id = events[-1]["response"]["output"][0]["id"]
    await engine.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 900}
    )
    truncated = (await engine.until("conversation.item.truncated"))[-1]
    assert truncated["audio_end_ms"] == 900
    await engine.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 5000}
    )
    error = (await engine.until("error"))[-1]
    assert error["error"]["code"] == "invalid_value"


async def test_typed_message_and_response_create(engine):
    await engine.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What time is it?"}],
            },
        }
    )
    added = (await engine.until("conversation.item.added"))[-1]
    assert added["item"]["content"] == [{"type": "input_text", "text": "What time is it?"}]
    await engine.send({"type": "response.create"})
    events = await engine.until("response.done")
    words = events[-1]["response"]["output"][0]["content"][0]["transcript"]
    assert words.startswith("I heard: What time is it?") and "It is" in words
    assert len(reply_audio(events)) > 24000  # more than half a second of speech


async def test_response_cancel(engine):
    await engine.send({"type": "response.cancel"})
    assert (await engine.until("error"))[-1]["error"]["code"] == "response_cancel_not_active"
    await engine.send({"type": "response.create"})
    await engine.send({"type": "response.create"})
    await engine.send({"type": "response.cancel"})
    events = await engine.until("response.done")
    errors = [e["error"]["code"] for e in events if e["type"] == "error"]
    assert errors == ["conversation_already_has_active_response"]
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"


async def test_push_to_talk(engine):
    await engine.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    )
    updated = (await engine.until("session.updated"))[-1]
    assert updated["session"]["audio"]["input"]["turn_detection"] is None
    await engine.send({"type": "input_audio_buffer.commit"})
    assert (await engine.until("error"))[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
    await engine.speak(clip_24k("lights_flite_24k.wav"))
    await engine.send({"type": "input_audio_buffer.commit"})
    events = await engine.until("conversation.item.input_audio_transcription.completed")
    assert "input_audio_buffer.speech_started" not in types(events)
    assert "lights" in events[-1]["transcript"]
    await engine.send({"type": "response.create"})
    reply = await engine.until("response.done")
    assert reply[-1]["response"]["status"] == "completed"


async def test_replies_from_a_local_language_model():
    async with FakeLanguageModel(["The lights ", "are on now.", " Anything else?"]) as llm:
        session = await LocalSession.open(LocalSettings(llm_url=llm.url, llm_model="tiny"))
        client = EngineClient(session)
        await client.configure()
        try:
            events = await spoken_turn(client, "lights_flite_24k.wav")
        finally:
            await session.close()
    assert [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"] == [
        "The lights are on now. ",
        "Anything else? ",
    ]
    (request,) = llm.requests
    messages = request["body"]["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["role"] == "user" and "lights" in messages[1]["content"]


class BlockingSynthesizer:
    """Holds its worker thread until released: a stand-in for slow synthesis."""

    name = "blocking"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Event()

    def synthesize(self, text: str) -> bytes:
        self.entered.set()
        self.release.wait(30)
        return self.inner.synthesize(text)


async def test_slow_work_in_one_session_does_not_hold_up_another():
    synthesizer = make_synthesizer()
    slow = BlockingSynthesizer(synthesizer)
    stuck = LocalSession(LocalSettings(), make_recognizer(), slow)
    free = LocalSession(LocalSettings(), make_recognizer(), synthesizer)
    stuck_client, free_client = EngineClient(stuck), EngineClient(free)
    try:
        await stuck_client.configure()
        await free_client.configure()
        await stuck_client.send({"type": "response.create"})
        await asyncio.to_thread(slow.entered.wait, 10)
        # While the first session's synthesis holds a worker, the second holds a whole turn.
        events = await spoken_turn(free_client, "hello_flite_24k.wav")
        assert events[-1]["response"]["status"] == "completed"
        assert not slow.release.is_set()
    finally:
        slow.release.set()
        await stuck.close()
        await free.close()


async def test_earlier_turns_can_be_given_back(engine):
    """A conversation going on in a new session re-sends what was said, with its own ids."""
    for seq, role, part, text in [
        (1, "user", "input_text", "My name is Ada."),
        (2, "assistant", "output_text", "Hi Ada."),
    ]:
        item = {"id": f"vchist_{seq}", "type": "message", "role": role, "content": [{"type": part, "text": text}]}
        await engine.send({"type": "conversation.item.create", "item": item})
        added = (await engine.until("conversation.item.added"))[-1]
        assert added["item"]["id"] == f"vchist_{seq}" and added["item"]["content"][0]["text"] == text
    await engine.send({"type": "response.create"})
    events = await engine.until("response.done")
    assert events[-1]["response"]["output"][0]["content"][0]["transcript"].startswith("I heard: My name is Ada.")
