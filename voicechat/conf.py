"""Typed access to the realtime settings."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings

from voicechat.local_engine.settings import LocalSettings
from voicechat.realtime.endpoint import (
    Auth,
    Provider,
    auth_for,
    openai_realtime_url,
    provider_for,
    realtime_url,
    shape_for,
)
from voicechat.realtime.session_config import SessionSettings, Shape


@dataclass(frozen=True)
class Limits:
    """What one socket and one user may do; 0 turns a limit off."""

    max_events_per_second: float = 0
    max_refused_per_minute: int = 0
    max_sessions_per_user: int = 0
    max_session_minutes: float = 0
    idle_timeout_minutes: float = 0
    connect_retries: int = 0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 8.0
    save_retry_seconds: float = 600.0


@dataclass(frozen=True)
class RealtimeConfig:
    endpoint: str
    api_key: str
    deployment: str
    api_version: str
    openai_api_key: str
    openai_model: str
    openai_base_url: str
    session: SessionSettings
    connect_timeout: float
    max_client_frame_bytes: int
    max_resumes: int
    resume_window: timedelta
    local: LocalSettings
    limits: Limits

    @property
    def provider(self) -> Provider:
        return provider_for(azure_endpoint=self.endpoint, openai_api_key=self.openai_api_key)

    @property
    def auth(self) -> Auth:
        return auth_for(self.provider, azure_api_key=self.api_key)

    @property
    def uses_local_engine(self) -> bool:
        """Neither Azure nor OpenAI is configured: the built-in local engine answers."""
        return self.provider is Provider.LOCAL

    @property
    def shape(self) -> Shape:
        # The local engine and OpenAI speak the GA shape.
        return shape_for(self.api_version) if self.provider is Provider.AZURE else Shape.GA

    @property
    def deployment_name(self) -> str:
        """The Azure deployment or the OpenAI model: what each conversation records."""
        if self.provider is Provider.LOCAL:
            return "local"
        return self.openai_model if self.provider is Provider.OPENAI else self.deployment

    @property
    def key(self) -> str:
        """The API key of the service in use (empty with Entra ID: a token is asked for each connection)."""
        return self.openai_api_key if self.provider is Provider.OPENAI else self.api_key

    @property
    def url(self) -> str:
        """The service's realtime URL; ValueError for a malformed endpoint or base URL."""
        if self.provider is Provider.OPENAI:
            return openai_realtime_url(self.openai_base_url, self.openai_model)
        return realtime_url(self.endpoint, self.deployment, self.api_version)

    @property
    def host(self) -> str:
        configured = self.openai_base_url if self.provider is Provider.OPENAI else self.endpoint
        return urlsplit(configured.strip()).netloc or configured

    @property
    def engine_label(self) -> str:
        """Who answers, as the page and the admin show it."""
        if self.provider is Provider.LOCAL:
            return self.local.label
        if self.provider is Provider.OPENAI:
            return f"OpenAI · {self.openai_model} ({self.shape.name})"
        label = f"Azure OpenAI · {self.deployment} ({self.shape.name})"
        return f"{label} · Entra ID" if self.auth is Auth.ENTRA_ID else label


def realtime_config() -> RealtimeConfig:
    return RealtimeConfig(
        endpoint=settings.AZURE_OPENAI_ENDPOINT,
        api_key=settings.AZURE_OPENAI_API_KEY,
        deployment=settings.AZURE_OPENAI_DEPLOYMENT,
        api_version=settings.AZURE_OPENAI_API_VERSION,
        openai_api_key=settings.OPENAI_API_KEY,
        openai_model=settings.OPENAI_REALTIME_MODEL,
        openai_base_url=settings.OPENAI_BASE_URL,
        session=SessionSettings(
            voice=settings.REALTIME_VOICE,
            instructions=settings.REALTIME_INSTRUCTIONS,
            transcription_model=settings.REALTIME_TRANSCRIPTION_MODEL,
            vad_silence_ms=settings.REALTIME_VAD_SILENCE_MS,
        ),
        connect_timeout=settings.REALTIME_CONNECT_TIMEOUT,
        max_client_frame_bytes=settings.REALTIME_MAX_CLIENT_FRAME_BYTES,
        max_resumes=settings.REALTIME_MAX_RESUMES,
        resume_window=timedelta(seconds=settings.REALTIME_RESUME_WINDOW_SECONDS),
        local=LocalSettings(
            whisper_model=settings.LOCAL_WHISPER_MODEL,
            piper_voice=settings.LOCAL_PIPER_VOICE,
            llm_url=settings.LOCAL_LLM_URL,
            llm_model=settings.LOCAL_LLM_MODEL,
        ),
        limits=Limits(
            max_events_per_second=settings.REALTIME_MAX_CLIENT_EVENTS_PER_SECOND,
            max_refused_per_minute=settings.REALTIME_MAX_REFUSED_FRAMES,
            max_sessions_per_user=settings.REALTIME_MAX_SESSIONS_PER_USER,
            max_session_minutes=settings.REALTIME_MAX_SESSION_MINUTES,
            idle_timeout_minutes=settings.REALTIME_IDLE_TIMEOUT_MINUTES,
            connect_retries=settings.REALTIME_CONNECT_RETRIES,
            retry_base_seconds=settings.REALTIME_RETRY_BASE_SECONDS,
            retry_max_seconds=settings.REALTIME_RETRY_MAX_SECONDS,
            save_retry_seconds=settings.REALTIME_SAVE_RETRY_SECONDS,
        ),
    )
