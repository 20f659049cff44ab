"""The database goes away during a conversation: the relay goes on and no turn is lost."""

import pytest

from tests.database_outage import database_outage, statements_refused
from tests.test_consumer import ended, open_socket, saved_turns, spoken_turn, started, turns_of
from voicechat import writer
from voicechat.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)


def notices(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "voicechat.notice"]


async def test_turns_said_while_the_database_is_down_are_saved_when_it_is_back(fake_service, user):
    browser, conversation_id = await started(user)
    await spoken_turn(browser)
    await saved_turns(conversation_id, 2)

    async with database_outage():
        events = await spoken_turn(browser)  # the relay does not wait on the database
        assert any(e["type"] == "response.output_audio.delta" for e in events)
        events += await browser.until("voicechat.notice")
        told = notices(events)[0]
        assert told["saving"] is False
        assert "turns are kept" in told["message"]
        fake_service.script.transcript, fake_service.script.reply = "And another thing.", "Go on."
        await spoken_turn(browser)  # a second turn, queued behind the first

    back = notices(await browser.until("voicechat.notice", timeout=15))[0]
    assert back["saving"] is True
    turns = await saved_turns(conversation_id, 6)
    assert [(t.seq, t.role) for t in turns] == [(n, "user" if n % 2 else "assistant") for n in range(1, 7)]
    assert [t.text for t in turns[4:]] == ["And another thing.", "Go on."]
    await browser.disconnect()
    assert (await ended(conversation_id)).end_reason == "client_closed"


async def test_a_conversation_that_ends_during_an_outage_is_saved_afterwards(fake_service, user, monkeypatch):
    monkeypatch.setattr(writer, "DRAIN_TIMEOUT", 0.5)  # the socket lets go sooner; the writes go on
    browser, conversation_id = await started(user)
    async with database_outage():
        await spoken_turn(browser)
        # The socket's end waits its turn in the database thread, behind calls that each wait
        # for a connection until the pool gives up (DATABASE_POOL_TIMEOUT) on PostgreSQL.
        await browser.disconnect(timeout=5)
    found = await ended(conversation_id, timeout=15)
    assert found.end_reason == "client_closed"
    assert [t.role for t in await turns_of(conversation_id)] == ["user", "assistant"]


async def test_no_conversation_starts_when_it_cannot_be_recorded(fake_service, user):
    # The login is read, the conversation cannot be written: a disk full, a table locked.
    async with statements_refused("voicechat_conversation"):
        browser = await open_socket(user)
        events = await browser.until_closed()
    assert [e["type"] for e in events] == ["error"]
    assert "cannot save conversations right now" in events[0]["error"]["message"]
    assert browser.close_code == 4500
    assert fake_service.paths == []  # nothing is said that could not be recorded
    assert await Conversation.objects.acount() == 0
    browser, _ = await started(user)  # and once it is back, conversations start again
    await browser.disconnect()
