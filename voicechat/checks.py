"""System checks for settings that would otherwise fail only when someone connects."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from voicechat.realtime.endpoint import realtime_url


@register()
def check_realtime_settings(app_configs, **kwargs) -> list:
    problems = []
    endpoint = settings.AZURE_OPENAI_ENDPOINT
    if endpoint:
        try:
            realtime_url(endpoint, settings.AZURE_OPENAI_DEPLOYMENT, settings.AZURE_OPENAI_API_VERSION)
        except ValueError as error:
            problems.append(Error(str(error), hint="Set AZURE_OPENAI_ENDPOINT.", id="voicechat.E002"))
        if not settings.AZURE_OPENAI_API_KEY:
            problems.append(
                Warning(
                    "AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_API_KEY is empty: the service will refuse the key.",
                    hint="Set AZURE_OPENAI_API_KEY (Keys and Endpoint in the Azure portal).",
                    id="voicechat.W001",
                )
            )
    else:
        problems.append(
            Warning(
                "AZURE_OPENAI_ENDPOINT is not set: connecting from the page will fail.",
                hint="Set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (see .env.example).",
                id="voicechat.W002",
            )
        )
    if settings.REALTIME_VAD_SILENCE_MS < 0:
        problems.append(Error("REALTIME_VAD_SILENCE_MS must be 0 or more.", id="voicechat.E003"))
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
