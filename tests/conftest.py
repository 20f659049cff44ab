import os
from datetime import timedelta

import channels.db
import django.db
import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client

from tests import tally
from tests.fake_identity import FakeManagedIdentity
from tests.fake_service import FakeRealtimeService, ThreadedFakeService
from voicechat.upstream import entra

ORIGIN = b"http://localhost"

# The tests run the production settings (DEBUG off) over plain HTTP on 127.0.0.1: no redirect
# to HTTPS, and cookies a plain-HTTP browser sends back. Set here, before anything builds the
# ASGI app, whose middleware reads them once; tests/test_security.py checks the HTTPS settings
# themselves in a process of their own.
django_settings.SECURE_SSL_REDIRECT = False
django_settings.SESSION_COOKIE_SECURE = False
django_settings.CSRF_COOKIE_SECURE = False


@pytest.fixture(autouse=True)
def fast_and_isolated(settings):
    """No developer `.env` value reaches a test, and passwords hash fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_API_KEY = ""
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-realtime"
    settings.AZURE_OPENAI_API_VERSION = ""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_REALTIME_MODEL = "gpt-realtime"
    settings.OPENAI_BASE_URL = ""  # never api.openai.com: a test sets its fake's URL
    settings.REALTIME_VOICE = "alloy"
    settings.REALTIME_INSTRUCTIONS = "Be brief."
    settings.REALTIME_TRANSCRIPTION_MODEL = "whisper-1"
    settings.REALTIME_VAD_SILENCE_MS = 200
    settings.REALTIME_CONNECT_TIMEOUT = 2.0
    settings.REALTIME_MAX_CLIENT_FRAME_BYTES = 256 * 1024
    settings.LOCAL_WHISPER_MODEL = ""
    settings.LOCAL_PIPER_VOICE = ""
    settings.LOCAL_LLM_URL = ""
    settings.LOCAL_LLM_MODEL = ""
    settings.REALTIME_MAX_CLIENT_EVENTS_PER_SECOND = 50
    settings.REALTIME_MAX_REFUSED_FRAMES = 20
    settings.REALTIME_MAX_SESSIONS_PER_USER = 2
    settings.REALTIME_MAX_SESSION_MINUTES = 30
    settings.REALTIME_IDLE_TIMEOUT_MINUTES = 5
    settings.REALTIME_CONNECT_RETRIES = 3
    settings.REALTIME_RETRY_BASE_SECONDS = 0.01  # the waits themselves: tests/realtime/test_limits_logic.py
    settings.REALTIME_RETRY_MAX_SECONDS = 0.05
    settings.REALTIME_SAVE_RETRY_SECONDS = 600
    settings.BUDGET_DAILY_MINUTES = 120
    settings.BUDGET_DAILY_TOKENS = 1_000_000
    settings.TIME_ZONE = "UTC"
    settings.PRICE_TEXT_INPUT = 4.0
    settings.PRICE_TEXT_CACHED_INPUT = 0.4
    settings.PRICE_TEXT_OUTPUT = 16.0
    settings.PRICE_AUDIO_INPUT = 32.0
    settings.PRICE_AUDIO_CACHED_INPUT = 0.4
    settings.PRICE_AUDIO_OUTPUT = 64.0
    settings.PRICE_TRANSCRIPTION_PER_MINUTE = 0.006
    settings.PRICE_TRANSCRIPTION_AUDIO_INPUT = 6.0
    settings.PRICE_TRANSCRIPTION_TEXT_INPUT = 2.5
    settings.PRICE_TRANSCRIPTION_TEXT_OUTPUT = 10.0
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 5
    settings.LOGIN_LOCKOUT_MINUTES = 15
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.TRUSTED_PROXIES = 0
    settings.CONVERSATION_RETENTION_DAYS = 0


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="s3cret-pass")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="s3cret-pass")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="s3cret-pass")


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
async def fake_service(settings):
    """A fake GA realtime service the app is pointed at."""
    async with FakeRealtimeService() as service:
        settings.AZURE_OPENAI_ENDPOINT = service.endpoint
        settings.AZURE_OPENAI_API_KEY = service.api_key
        yield service


@pytest.fixture
def threaded_fake_service(settings):
    """The fake service on a thread of its own, for tests that run a real server and browser."""
    with ThreadedFakeService() as service:
        settings.AZURE_OPENAI_ENDPOINT = service.endpoint
        settings.AZURE_OPENAI_API_KEY = service.api_key
        yield service


# What DefaultAzureCredential reads from the environment, besides what `managed_identity` sets.
AZURE_IDENTITY_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")


@pytest.fixture
def managed_identity(monkeypatch):
    """A fake App Service managed identity that DefaultAzureCredential asks for tokens, and nothing else."""
    for name in list(os.environ):
        if name.upper().startswith(AZURE_IDENTITY_PREFIXES):
            monkeypatch.delenv(name)
    # Only the managed identity is in the chain: no developer's `az login` or VS Code sign-in.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with FakeManagedIdentity() as identity:
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", identity.header)
        entra.credential.close()  # a credential made earlier read another environment
        try:
            yield identity
        finally:
            entra.credential.close()


@pytest.fixture
async def entra_service(fake_service, managed_identity, settings):
    """The fake service on Azure with Microsoft Entra ID: no key; it accepts the tokens the identity issued."""
    settings.AZURE_OPENAI_API_KEY = ""
    fake_service.entra_tokens = managed_identity.issued
    return fake_service


@pytest.fixture
async def database_connections_closed():
    """Close what the app's database thread holds at the end, so PostgreSQL can drop the test database.

    Channels' WebsocketCommunicator swaps channels.db.close_old_connections for a no-op,
    process-wide, while it waits: with several sockets waiting at once, the no-op can be
    left in place, and connections are then never closed after their queries.
    """
    yield
    channels.db.close_old_connections = django.db.close_old_connections
    await database_sync_to_async(connections.close_all)()


def pytest_terminal_summary(terminalreporter):
    """What the fault and fuzz tests tried (tests/tally.py), when any of them ran."""
    line = tally.summary()
    if line is not None:
        terminalreporter.write_line(line)
