"""Cost arithmetic, with prices given in the test and from the settings."""

from decimal import Decimal

from voicechat.pricing import Prices, cost_of
from voicechat.realtime.recorder import TranscriptionUsage, Usage

PRICES = Prices(
    text_input=Decimal("4"),
    text_cached_input=Decimal("0.4"),
    text_output=Decimal("16"),
    audio_input=Decimal("32"),
    audio_cached_input=Decimal("0.4"),
    audio_output=Decimal("64"),
    transcription_per_minute=Decimal("0.006"),
    transcription_audio_input=Decimal("6"),
    transcription_text_input=Decimal("2.5"),
    transcription_text_output=Decimal("10"),
)


def test_response_cost_by_modality():
    usage = Usage(input_text_tokens=20, input_audio_tokens=60, output_text_tokens=10, output_audio_tokens=30)
    # (20 * 4 + 60 * 32 + 10 * 16 + 30 * 64) / 1e6 = 4080 / 1e6
    assert cost_of(usage, PRICES) == Decimal("0.004080")


def test_cached_input_is_billed_at_the_cached_price():
    usage = Usage(
        input_text_tokens=1000,
        input_audio_tokens=2000,
        cached_text_tokens=400,
        cached_audio_tokens=1500,
    )
    # 600 * 4 + 400 * 0.4 + 500 * 32 + 1500 * 0.4 = 2400 + 160 + 16000 + 600 = 19160
    assert cost_of(usage, PRICES) == Decimal("0.019160")


def test_cached_counts_larger_than_the_input_are_capped():
    usage = Usage(input_text_tokens=10, cached_text_tokens=50)
    assert cost_of(usage, PRICES) == Decimal("0.000004")  # 10 * 0.4 / 1e6


def test_cost_is_rounded_to_a_millionth_of_a_dollar():
    assert cost_of(Usage(input_text_tokens=1), PRICES) == Decimal("0.000004")
    assert cost_of(Usage(input_text_tokens=1), Prices(text_input=Decimal("0.4"))) == Decimal("0.000000")
    assert cost_of(Usage(input_text_tokens=2), Prices(text_input=Decimal("0.25"))) == Decimal("0.000001")


def test_transcription_by_the_minute():
    usage = TranscriptionUsage(item_id="u1", kind="duration", seconds=90.0)
    assert cost_of(usage, PRICES) == Decimal("0.009000")  # 1.5 min * 0.006


def test_transcription_by_the_token():
    usage = TranscriptionUsage(
        item_id="u1", kind="tokens", input_text_tokens=100, input_audio_tokens=1000, output_tokens=50
    )
    # 1000 * 6 + 100 * 2.5 + 50 * 10 = 6750
    assert cost_of(usage, PRICES) == Decimal("0.006750")


def test_prices_from_the_settings_are_exact_decimals(settings):
    settings.PRICE_TEXT_INPUT = 4.1
    settings.PRICE_AUDIO_OUTPUT = 64.0
    settings.PRICE_TRANSCRIPTION_PER_MINUTE = 0.006
    prices = Prices.from_settings()
    assert (prices.text_input, prices.audio_output, prices.transcription_per_minute) == (
        Decimal("4.1"),
        Decimal("64.0"),
        Decimal("0.006"),
    )
    assert cost_of(Usage(input_text_tokens=1_000_000), prices) == Decimal("4.100000")


def test_the_local_engine_costs_nothing(settings):
    settings.PRICE_TEXT_INPUT = 4.0
    settings.PRICE_AUDIO_OUTPUT = 64.0
    usage = Usage(input_text_tokens=1_000_000, output_audio_tokens=1_000_000)
    assert cost_of(usage, Prices.for_deployment("local")) == Decimal(0)
    assert cost_of(usage, Prices.for_deployment("gpt-realtime")) == Decimal("68.000000")
    transcribed = TranscriptionUsage(item_id="u1", kind="duration", seconds=600)
    assert cost_of(transcribed, Prices.for_deployment("local")) == Decimal(0)
