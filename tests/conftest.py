import pytest
from django.test import Client

from tests.fake_service import FakeRealtimeService, ThreadedFakeService

ORIGIN = b"http://localhost"


@pytest.fixture(autouse=True)
def fast_and_isolated(settings):
    """No developer `.env` value reaches a test, and passwords hash fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_API_KEY = ""
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-realtime"
    settings.AZURE_OPENAI_API_VERSION = ""
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


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="s3cret-pass")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="s3cret-pass")


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
