"""System checks for settings that would otherwise fail only when someone connects."""

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from voicechat.realtime.endpoint import Provider, openai_realtime_url, provider_for, realtime_url
from voicechat.static_files import HashedStaticFilesStorage


@register()
def check_realtime_settings(app_configs, **kwargs) -> list:
    problems = []
    endpoint = settings.AZURE_OPENAI_ENDPOINT
    provider = provider_for(azure_endpoint=endpoint, openai_api_key=settings.OPENAI_API_KEY)
    # voicechat.W001 (an endpoint without a key) is retired: without a key, the server signs in
    # to Azure with Microsoft Entra ID.
    if provider is Provider.AZURE:
        try:
            realtime_url(endpoint, settings.AZURE_OPENAI_DEPLOYMENT, settings.AZURE_OPENAI_API_VERSION)
        except ValueError as error:
            problems.append(Error(str(error), hint="Set AZURE_OPENAI_ENDPOINT.", id="voicechat.E002"))
        if settings.OPENAI_API_KEY:
            problems.append(
                Warning(
                    "AZURE_OPENAI_ENDPOINT and OPENAI_API_KEY are both set: Azure OpenAI answers, "
                    "OPENAI_API_KEY is not used.",
                    hint="Empty AZURE_OPENAI_ENDPOINT to use OpenAI, or OPENAI_API_KEY to silence this.",
                    id="voicechat.W002",
                )
            )
    elif provider is Provider.OPENAI:
        try:
            openai_realtime_url(settings.OPENAI_BASE_URL, settings.OPENAI_REALTIME_MODEL)
        except ValueError as error:
            problems.append(
                Error(str(error), hint="Leave OPENAI_BASE_URL at https://api.openai.com/v1.", id="voicechat.E007")
            )
    else:
        problems.extend(_local_engine_problems())
    if settings.REALTIME_VAD_SILENCE_MS < 0:
        problems.append(Error("REALTIME_VAD_SILENCE_MS must be 0 or more.", id="voicechat.E003"))
    return problems


def _local_engine_problems() -> list:
    problems = []
    if settings.LOCAL_WHISPER_MODEL and not Path(settings.LOCAL_WHISPER_MODEL).is_dir():
        problems.append(
            Error(
                f"LOCAL_WHISPER_MODEL is not a folder: {settings.LOCAL_WHISPER_MODEL}",
                hint="Give the folder of a CTranslate2 (faster-whisper) model, or leave it empty for pocketsphinx.",
                id="voicechat.E004",
            )
        )
    if settings.LOCAL_PIPER_VOICE and not Path(settings.LOCAL_PIPER_VOICE).is_file():
        problems.append(
            Error(
                f"LOCAL_PIPER_VOICE is not a file: {settings.LOCAL_PIPER_VOICE}",
                hint="Give a piper voice (.onnx, with its .onnx.json beside it), or leave it empty for espeak-ng.",
                id="voicechat.E005",
            )
        )
    if settings.LOCAL_LLM_URL and urlsplit(settings.LOCAL_LLM_URL).scheme not in ("http", "https"):
        problems.append(
            Error(
                f"LOCAL_LLM_URL must be an http(s) URL, not {settings.LOCAL_LLM_URL!r}.",
                hint="For example http://127.0.0.1:8080/v1 (llama.cpp) or http://127.0.0.1:11434/v1 (Ollama).",
                id="voicechat.E006",
            )
        )
    return problems


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs) -> list:
    if settings.SECRET_KEY.startswith("django-insecure-"):
        return [
            Error(
                "SECRET_KEY is the development key.",
                hint="Set SECRET_KEY to a long random value.",
                id="voicechat.E001",
            )
        ]
    return []


@register(deploy=True)
def check_static_manifest(app_configs, **kwargs) -> list:
    """With hashed static names on, every page needs the manifest `collectstatic` writes."""
    if not settings.STATIC_HASHED:
        return []
    manifest = Path(settings.STATIC_ROOT) / HashedStaticFilesStorage.manifest_name
    if manifest.is_file():
        return []
    return [
        Error(
            f"STATIC_HASHED is on and {manifest} is missing: every page would fail with a server error.",
            hint="Run `manage.py collectstatic --no-input` with the same STATIC_ROOT.",
            id="voicechat.E008",
        )
    ]
