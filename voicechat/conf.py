"""Typed access to the realtime settings."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings

from voicechat.local_engine.settings import LocalSettings
from voicechat.realtime.endpoint import realtime_url, shape_for
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
    session: SessionSettings
    connect_timeout: float
    max_client_frame_bytes: int
    max_resumes: int
    resume_window: timedelta
    local: LocalSettings
    limits: Limits

    @property
    def uses_local_engine(self) -> bool:
        """No Azure endpoint: the built-in local engine answers."""
        return not self.endpoint

    @property
    def shape(self) -> Shape:
        # The local engine speaks the GA shape.
        return Shape.GA if self.uses_local_engine else shape_for(self.api_version)

    @property
    def deployment_name(self) -> str:
        return "local" if self.uses_local_engine else self.deployment

    @property
    def url(self) -> str:
        return realtime_url(self.endpoint, self.deployment, self.api_version)

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint.strip()).netloc or self.endpoint

    @property
    def engine_label(self) -> str:
        if self.uses_local_engine:
            return self.local.label
        return f"Azure OpenAI · {self.deployment} ({self.shape.name})"


def realtime_config() -> RealtimeConfig:
    return RealtimeConfig(
        endpoint=settings.AZURE_OPENAI_ENDPOINT,
        api_key=settings.AZURE_OPENAI_API_KEY,
        deployment=settings.AZURE_OPENAI_DEPLOYMENT,
        api_version=settings.AZURE_OPENAI_API_VERSION,
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
