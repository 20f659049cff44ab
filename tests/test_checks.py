"""System checks catch bad realtime settings before anyone connects."""

from django.core.checks import run_checks


def ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(**kwargs) if message.id.startswith("voicechat.")}


def test_no_endpoint_means_the_local_engine(settings):
    settings.AZURE_OPENAI_ENDPOINT = ""
    assert ids() == set()


def test_local_engine_paths_and_url(settings, tmp_path):
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.LOCAL_WHISPER_MODEL = str(tmp_path / "missing-model")
    settings.LOCAL_PIPER_VOICE = str(tmp_path / "missing.onnx")
    settings.LOCAL_LLM_URL = "127.0.0.1:8080"
    assert ids() == {"voicechat.E004", "voicechat.E005", "voicechat.E006"}
    (tmp_path / "model").mkdir()
    (tmp_path / "voice.onnx").write_bytes(b"")
    settings.LOCAL_WHISPER_MODEL = str(tmp_path / "model")
    settings.LOCAL_PIPER_VOICE = str(tmp_path / "voice.onnx")
    settings.LOCAL_LLM_URL = "http://127.0.0.1:8080/v1"
    assert ids() == set()


def test_endpoint_without_key_means_entra_id(settings):
    settings.AZURE_OPENAI_ENDPOINT = "https://contoso.openai.azure.com"
    settings.AZURE_OPENAI_API_KEY = ""
    assert ids() == set()


def test_azure_and_openai_both_set(settings):
    settings.AZURE_OPENAI_ENDPOINT = "https://contoso.openai.azure.com"
    settings.OPENAI_API_KEY = "sk-k"
    assert ids() == {"voicechat.W002"}


def test_openai_base_url(settings):
    settings.OPENAI_API_KEY = "sk-k"
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    assert ids() == set()
    for bad in ("", "api.openai.com/v1", "https://api.openai.com/v1?x=1"):
        settings.OPENAI_BASE_URL = bad
        assert ids() == {"voicechat.E007"}, bad


def test_local_engine_settings_are_checked_only_for_the_local_engine(settings, tmp_path):
    settings.LOCAL_WHISPER_MODEL = str(tmp_path / "missing-model")
    assert ids() == {"voicechat.E004"}
    settings.OPENAI_API_KEY = "sk-k"
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    assert ids() == set()


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


def test_hashed_static_names_without_collectstatic_fail_the_deploy_check(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STATIC_HASHED = False
    assert "voicechat.E008" not in ids(include_deployment_checks=True)
    settings.STATIC_HASHED = True
    assert "voicechat.E008" in ids(include_deployment_checks=True)
    assert "voicechat.E008" not in ids()  # migrate and the servers' checks run before collectstatic
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    assert "voicechat.E008" not in ids(include_deployment_checks=True)
