"""System checks catch bad realtime settings before anyone connects."""

from django.core.checks import run_checks


def ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(**kwargs) if message.id.startswith("voicechat.")}


def test_missing_endpoint_is_a_warning(settings):
    settings.AZURE_OPENAI_ENDPOINT = ""
    assert ids() == {"voicechat.W002"}


def test_endpoint_without_key(settings):
    settings.AZURE_OPENAI_ENDPOINT = "https://contoso.openai.azure.com"
    settings.AZURE_OPENAI_API_KEY = ""
    assert ids() == {"voicechat.W001"}


def test_good_settings_pass(settings):
    settings.AZURE_OPENAI_ENDPOINT = "https://contoso.openai.azure.com"
    settings.AZURE_OPENAI_API_KEY = "k"
    assert ids() == set()


def test_malformed_endpoint_and_silence(settings):
    settings.AZURE_OPENAI_ENDPOINT = "contoso.openai.azure.com"
    settings.AZURE_OPENAI_API_KEY = "k"
    settings.REALTIME_VAD_SILENCE_MS = -5
    assert ids() == {"voicechat.E002", "voicechat.E003"}


def test_development_secret_key_fails_the_deploy_check(settings):
    settings.SECRET_KEY = "django-insecure-development-only-key"
    assert "voicechat.E001" in ids(include_deployment_checks=True)
    settings.SECRET_KEY = "a-long-random-production-secret-value-0123456789"
    assert "voicechat.E001" not in ids(include_deployment_checks=True)
