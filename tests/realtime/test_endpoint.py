"""The upstream URL for each endpoint form."""

import re

import pytest

from voicechat.realtime.endpoint import realtime_url, shape_for
from voicechat.realtime.session_config import Shape


def test_ga_url():
    assert realtime_url("https://contoso.openai.azure.com", "gpt-realtime") == (
        "wss://contoso.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    )


def test_preview_url():
    assert realtime_url("https://contoso.openai.azure.com/", "gpt-realtime", "2025-04-01-preview") == (
        "wss://contoso.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime"
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.openai.azure.com/openai/v1",
        "https://contoso.openai.azure.com/openai/",
        " https://contoso.openai.azure.com ",
    ],
)
def test_pasted_api_paths_are_tolerated(endpoint):
    assert realtime_url(endpoint, "d") == "wss://contoso.openai.azure.com/openai/v1/realtime?model=d"


def test_local_http_endpoint_uses_ws():
    assert realtime_url("http://127.0.0.1:8765", "d") == "ws://127.0.0.1:8765/openai/v1/realtime?model=d"


def test_deployment_is_quoted():
    assert realtime_url("https://x.openai.azure.com", "my deploy&x").endswith("?model=my%20deploy%26x")


@pytest.mark.parametrize("endpoint", ["contoso.openai.azure.com", "ftp://x", "https://"])
def test_bad_endpoints_are_refused(endpoint):
    with pytest.raises(ValueError, match=re.escape("https://NAME.openai.azure.com")):
        realtime_url(endpoint, "d")


def test_shape_follows_the_api_version():
    assert shape_for("") is Shape.GA
    assert shape_for("2025-04-01-preview") is Shape.PREVIEW
