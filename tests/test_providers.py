"""Azure with Microsoft Entra ID, and OpenAI itself, end to end against the fake service on 127.0.0.1."""

import asyncio
import base64
import logging

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from tests.browser_socket import BrowserSocket
from tests.conftest import session_cookie
from tests.fake_identity import RESOURCE
from tests.fake_service import tone
from voicechat.models import Conversation, Turn
from voicechat.upstream import entra

pytestmark = pytest.mark.django_db(transaction=True)

APPEND = {"type": "input_audio_buffer.append", "audio": base64.b64encode(tone(200)).decode()}


async def open_socket(user) -> BrowserSocket:
    browser = BrowserSocket(await database_sync_to_async(session_cookie)(user))
    assert await browser.connect()
    return browser


async def started(user) -> tuple[BrowserSocket, dict]:
    """A connected browser whose upstream session is configured; and the app's conversation event."""
    browser = await open_socket(user)
    events = await browser.until("session.updated")
    return browser, next(e for e in events if e["type"] == "voicechat.conversation")


async def spoken_turn(browser: BrowserSocket) -> None:
    await browser.send(APPEND)
    await browser.send({"type": "input_audio_buffer.commit"})
    await browser.until("response.done")


async def ended(conversation_id: int) -> Conversation:
    """The conversation once it has ended (waited for a bounded time)."""
    for _ in range(100):
        found = await Conversation.objects.aget(pk=conversation_id)
        if found.ended_at is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"conversation {conversation_id} never ended")


async def refused(user, text: str, close_code: int) -> tuple[BrowserSocket, str, Conversation]:
    """The socket closes with one error event holding this text; the conversation ends."""
    browser = await open_socket(user)
    events = await browser.until_closed()
    assert [e["type"] for e in events] == ["error"], events
    message = events[0]["error"]["message"]
    assert text in message
    assert browser.close_code == close_code
    found = await Conversation.objects.filter(user=user).alatest("started_at")
    return browser, message, await ended(found.pk)


@pytest.fixture
async def openai_service(fake_service, settings):
    """The fake service as OpenAI: no Azure endpoint, the key and the base URL of OpenAI's form."""
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_API_KEY = ""
    settings.OPENAI_API_KEY = fake_service.api_key
    settings.OPENAI_BASE_URL = f"{fake_service.endpoint}/v1"
    return fake_service


# Microsoft Entra ID


def test_only_the_managed_identity_is_in_the_chain(managed_identity):
    """The developer's own sign-ins (az, azd, PowerShell, VS Code...) can play no part in these tests."""
    assert managed_identity.issued == []
    entra.credential.token()
    assert entra.credential.chain == ["ManagedIdentityCredential"]
    assert len(managed_identity.issued) == 1


async def test_a_conversation_with_entra_id(entra_service, managed_identity, user):
    browser, announced = await started(user)
    assert announced["engine"] == "Azure OpenAI · gpt-realtime (GA) · Entra ID"
    await spoken_turn(browser)
    await browser.disconnect()
    # The token the identity issued, asked for Azure OpenAI's resource, went in the handshake instead of a key.
    assert managed_identity.requests[0]["query"] == {"api-version": "2019-08-01", "resource": RESOURCE}
    assert len(managed_identity.issued) == 1
    assert entra_service.bearers == managed_identity.issued
    assert "api-key" not in entra_service.headers[0]
    found = await ended(announced["conversation_id"])
    assert (found.engine, found.deployment, found.end_reason) == (announced["engine"], "gpt-realtime", "client_closed")
    turns = [turn async for turn in Turn.objects.filter(conversation=found).order_by("seq")]
    assert [(t.role, t.text) for t in turns] == [
        ("user", "Hello there, how are you?"),
        ("assistant", "I am fine, thank you for asking."),
    ]


async def test_each_connection_and_resumption_asks_for_a_fresh_token(entra_service, managed_identity, user):
    entra_service.script.expire_after_turns = 1
    browser, announced = await started(user)
    await spoken_turn(browser)  # the service expires the session: the conversation goes on in a new one
    events = await browser.until("session.updated")
    assert "Reconnected: the assistant remembers 2 turns." in [e.get("message") for e in events]
    await browser.disconnect()
    second, _ = await started(user)  # another conversation
    await second.disconnect()
    assert len(entra_service.connections) == 3
    assert len(managed_identity.requests) == 3
    assert len(set(managed_identity.issued)) == 3
    assert entra_service.bearers == managed_identity.issued  # each connection its own, in order
    assert (await ended(announced["conversation_id"])).resumes == 1


async def test_a_long_lived_token_comes_from_the_credentials_own_cache(entra_service, managed_identity, user):
    managed_identity.lifetime = 3600  # not near its expiry: the credential serves it again
    for _ in range(2):
        browser, _ = await started(user)
        await browser.disconnect()
    assert len(managed_identity.requests) == 1
    assert entra_service.bearers == managed_identity.issued * 2


async def test_a_failing_token_endpoint_gives_a_clear_error(entra_service, managed_identity, user, caplog):
    managed_identity.fail_with = 400
    with caplog.at_level(logging.WARNING, logger="voicechat"):
        _, message, found = await refused(user, "could not get a Microsoft Entra ID token", 4401)
    assert "az login, or its managed identity" in message
    assert found.end_reason == "auth_failed"
    assert entra_service.paths == []  # the service was never asked
    assert len(managed_identity.requests) == 1  # an identity that refuses is not asked again
    # Why, for the administrator: the credential's own account of what it tried.
    assert any("No managed identity is assigned" in r.getMessage() for r in caplog.records)


async def test_a_token_endpoint_that_never_answers_hangs_no_conversation(
    entra_service, managed_identity, user, settings
):
    settings.REALTIME_CONNECT_TIMEOUT = 1.0
    settings.REALTIME_CONNECT_RETRIES = 0
    managed_identity.hang = True
    try:
        _, _, found = await refused(user, "did not give the server a token for the voice service within 1 s", 4504)
        assert found.end_reason == "timeout"
        assert entra_service.paths == []
    finally:
        managed_identity.release()
    # The abandoned request ends on its own once answered; its token is never used.
    for _ in range(100):
        if managed_identity.issued:
            break
        await asyncio.sleep(0.05)
    assert len(managed_identity.issued) == 1 and entra_service.bearers == []


@pytest.mark.usefixtures("database_connections_closed")  # eight sockets wait at once
async def test_a_hanging_token_endpoint_is_asked_once_and_holds_no_shared_thread(
    entra_service, managed_identity, user, settings
):
    """Eight conversations start while the identity endpoint hangs: one request, one thread."""
    settings.REALTIME_MAX_SESSIONS_PER_USER = 0  # no limit: all eight are the same user's
    settings.REALTIME_CONNECT_TIMEOUT = 1.0
    settings.REALTIME_CONNECT_RETRIES = 0
    managed_identity.hang = True
    loop = asyncio.get_running_loop()
    try:
        browsers = await asyncio.gather(*(open_socket(user) for _ in range(8)))
        closed = await asyncio.gather(*(browser.until_closed() for browser in browsers))
        assert [browser.close_code for browser in browsers] == [4504] * 8
        assert all(events[-1]["error"]["code"] == "timeout" for events in closed)
        assert len(managed_identity.requests) == 1
        # The event loop's default executor (host name lookups) is free meanwhile.
        assert await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), 1) == "free"
    finally:
        managed_identity.release()
    for _ in range(100):  # the one request ends once answered; its token is never used
        if managed_identity.issued:
            break
        await asyncio.sleep(0.05)
    assert len(managed_identity.issued) == 1 and entra_service.bearers == []
    browser, _ = await started(user)  # and the next conversation asks anew
    await browser.disconnect()
    assert len(managed_identity.requests) == 2 and entra_service.bearers == managed_identity.issued[1:]
    async for found in Conversation.objects.filter(user=user):
        await ended(found.pk)  # all nine saved before the test ends


async def test_the_service_refusing_the_token_names_the_role(entra_service, managed_identity, user):
    entra_service.entra_tokens = []  # the service accepts none of the identity's tokens
    _, message, found = await refused(user, "refused the server's Microsoft Entra ID token (HTTP 401)", 4401)
    assert "Cognitive Services OpenAI User" in message
    assert found.end_reason == "auth_failed"
    assert entra_service.bearers == managed_identity.issued and len(managed_identity.issued) == 1


# OpenAI


async def test_a_conversation_with_openai_resumed_in_a_new_session(openai_service, user):
    openai_service.script.expire_after_turns = 1
    browser, announced = await started(user)
    assert announced["engine"] == "OpenAI · gpt-realtime (GA)"
    await spoken_turn(browser)
    await browser.until("session.updated")  # the new session's
    openai_service.script.expire_after_turns = None
    await spoken_turn(browser)
    await browser.disconnect()
    assert openai_service.paths == ["/v1/realtime?model=gpt-realtime"] * 2
    for headers in openai_service.headers:
        assert headers["Authorization"] == "Bearer test-key"
        assert "api-key" not in headers and "OpenAI-Beta" not in headers
    updates = openai_service.of_type("session.update")
    assert [u["session"]["type"] for u in updates] == ["realtime", "realtime"]  # the GA shape
    assert openai_service.sessions == [u["session"] for u in updates]  # and the service accepted both
    found = await ended(announced["conversation_id"])
    assert (found.engine, found.deployment, found.endpoint_shape) == (announced["engine"], "gpt-realtime", "ga")
    assert (found.resumes, await Turn.objects.filter(conversation=found).acount()) == (1, 4)


async def test_openai_refusing_the_key(openai_service, user, settings, caplog):
    settings.OPENAI_API_KEY = "sk-wrong-key-WXYZ"
    with caplog.at_level(logging.DEBUG):
        browser, message, found = await refused(user, "refused the server's API key (invalid_api_key)", 4401)
    assert "OPENAI_API_KEY" in message
    assert found.end_reason == "auth_failed"
    assert openai_service.bearers == ["sk-wrong-key-WXYZ"]
    # OpenAI's own message quotes the key's ends: neither the page nor the app's log gets it.
    assert "sk-***WXYZ" in openai_service.sent[0]
    assert not [frame for frame in browser.frames if "WXYZ" in frame]
    assert not [r for r in caplog.records if r.name != "websockets.server" and "WXYZ" in r.getMessage()]


async def test_openai_unknown_model(openai_service, user, settings):
    settings.OPENAI_REALTIME_MODEL = "no-such-model"
    _, message, found = await refused(user, "no model named 'no-such-model' (model_not_found)", 4404)
    assert "OPENAI_REALTIME_MODEL" in message
    assert found.end_reason == "not_found"
    assert openai_service.paths == ["/v1/realtime?model=no-such-model"]


async def test_openai_base_url_is_checked_before_connecting(openai_service, user, settings):
    settings.OPENAI_BASE_URL = "api.openai.com/v1"
    _, message, found = await refused(user, "OPENAI_BASE_URL must look like https://api.openai.com/v1", 4502)
    assert "check OPENAI_BASE_URL" in message
    assert found.end_reason == "unreachable"
    assert openai_service.paths == []


# Which provider

AZURE = "https://contoso.openai.azure.com"


async def test_azure_answers_when_both_are_set(fake_service, user, settings):
    settings.OPENAI_API_KEY = "sk-unused"
    settings.OPENAI_BASE_URL = f"{fake_service.endpoint}/v1"
    browser, announced = await started(user)
    await browser.disconnect()
    assert announced["engine"] == "Azure OpenAI · gpt-realtime (GA)"
    assert fake_service.paths == ["/openai/v1/realtime?model=gpt-realtime"]
    assert fake_service.headers[0]["api-key"] == "test-key" and fake_service.bearers == []


@pytest.mark.parametrize(
    ("configured", "label"),
    [
        ({"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_KEY": "k"}, "Azure OpenAI · dep (GA)"),
        ({"AZURE_OPENAI_ENDPOINT": AZURE}, "Azure OpenAI · dep (GA) · Entra ID"),
        (
            {"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_VERSION": "2025-04-01-preview"},
            "Azure OpenAI · dep (PREVIEW) · Entra ID",
        ),
        ({"OPENAI_API_KEY": "sk-k"}, "OpenAI · gpt-realtime (GA)"),
        ({"OPENAI_API_KEY": "sk-k", "OPENAI_REALTIME_MODEL": "gpt-realtime-mini"}, "OpenAI · gpt-realtime-mini (GA)"),
    ],
)
def test_the_page_shows_which_engine_answers(settings, user, configured, label):
    settings.AZURE_OPENAI_DEPLOYMENT = "dep"
    for name, value in configured.items():
        setattr(settings, name, value)
    client = Client()
    client.force_login(user)
    assert label in client.get(reverse("chat")).content.decode()
