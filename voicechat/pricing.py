"""What a response or a transcription is estimated to cost, in USD, from the prices in the settings."""

from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from voicechat.realtime.recorder import TranscriptionUsage, Usage

# The deployment name conversations with the built-in engine record (see RealtimeConfig.deployment_name).
LOCAL_DEPLOYMENT = "local"

MILLION = Decimal(1_000_000)
# The ledger keeps costs to the millionth of a dollar.
MICRODOLLAR = Decimal("0.000001")


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, and per minute of audio for transcription billed by duration."""

    text_input: Decimal = Decimal(0)
    text_cached_input: Decimal = Decimal(0)
    text_output: Decimal = Decimal(0)
    audio_input: Decimal = Decimal(0)
    audio_cached_input: Decimal = Decimal(0)
    audio_output: Decimal = Decimal(0)
    transcription_per_minute: Decimal = Decimal(0)
    transcription_audio_input: Decimal = Decimal(0)
    transcription_text_input: Decimal = Decimal(0)
    transcription_text_output: Decimal = Decimal(0)

    @classmethod
    def from_settings(cls) -> "Prices":
        # str() first: Decimal(4.1) would carry the float's binary error into every cost.
        return cls(**{f.name: Decimal(str(getattr(settings, "PRICE_" + f.name.upper()))) for f in fields(cls)})

    @classmethod
    def for_deployment(cls, deployment: str) -> "Prices":
        """The local engine costs nothing; every other deployment is priced from the settings."""
        return cls() if deployment == LOCAL_DEPLOYMENT else cls.from_settings()


def cost_of(usage: Usage | TranscriptionUsage, prices: Prices) -> Decimal:
    """The estimated cost of one response's or one transcription's usage, to the millionth of a dollar."""
    if isinstance(usage, TranscriptionUsage):
        cost = _transcription_cost(usage, prices)
    else:
        cost = _response_cost(usage, prices)
    return cost.quantize(MICRODOLLAR, rounding=ROUND_HALF_UP)


def _response_cost(usage: Usage, prices: Prices) -> Decimal:
    # Input counts include their cached part, which is billed at the cached price.
    cached_text = min(usage.cached_text_tokens, usage.input_text_tokens)
    cached_audio = min(usage.cached_audio_tokens, usage.input_audio_tokens)
    per_million = (
        (usage.input_text_tokens - cached_text) * prices.text_input
        + cached_text * prices.text_cached_input
        + (usage.input_audio_tokens - cached_audio) * prices.audio_input
        + cached_audio * prices.audio_cached_input
        + usage.output_text_tokens * prices.text_output
        + usage.output_audio_tokens * prices.audio_output
    )
    return per_million / MILLION


def _transcription_cost(usage: TranscriptionUsage, prices: Prices) -> Decimal:
    if usage.kind == "duration":
        return Decimal(str(usage.seconds)) / 60 * prices.transcription_per_minute
    per_million = (
        usage.input_audio_tokens * prices.transcription_audio_input
        + usage.input_text_tokens * prices.transcription_text_input
        + usage.output_tokens * prices.transcription_text_output
    )
    return per_million / MILLION
