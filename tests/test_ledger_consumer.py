"""The ledger written by a real conversation: the consumer against the fake service on 127.0.0.1."""

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from tests.test_consumer import eventually, saved_turns, spoken_turn, started
from voicechat.models import UsageEntry

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def responses_of(conversation_id: int) -> list[UsageEntry]:
    entries = UsageEntry.objects.filter(conversation_id=conversation_id, kind=UsageEntry.Kind.RESPONSE)
    return list(entries.select_related("turn").order_by("id"))


async def test_each_response_is_priced_and_linked_to_its_reply(fake_service, user):
    # The fake's usage: 20 text and 60 audio tokens in, 10 text and 30 audio tokens out.
    fake_service.script.usage = dict(
        fake_service.script.usage,
        input_token_details={
            "text_tokens": 20,
            "audio_tokens": 60,
            "cached_tokens": 40,
            "cached_tokens_details": {"text_tokens": 10, "audio_tokens": 30},
        },
    )
    browser, conversation_id = await started(user)
    events = await spoken_turn(browser)
    await spoken_turn(browser)
    turns = await saved_turns(conversation_id, 4)

    async def two_linked():
        found = await responses_of(conversation_id)
        return found if len(found) == 2 and all(e.turn_id for e in found) else None

    entries = await eventually(two_linked) or await responses_of(conversation_id)
    await browser.disconnect()
    replies = [t for t in turns if t.role == "assistant"]
    assert [e.turn_id for e in entries] == [t.pk for t in replies]
    done = next(e for e in events if e["type"] == "response.done")["response"]
    first = entries[0]
    assert (first.response_id, first.item_id) == (done["id"], done["output"][0]["id"])
    assert (first.user_id, first.total_tokens, first.engine) == (user.pk, 120, "Azure OpenAI · gpt-realtime (GA)")
    assert (first.input_cached_text_tokens, first.input_cached_audio_tokens) == (10, 30)
    # 10 * 4 + 10 * 0.4 + 30 * 32 + 30 * 0.4 + 10 * 16 + 30 * 64 = 3096 per million
    assert [e.cost for e in entries] == [Decimal("0.003096"), Decimal("0.003096")]
