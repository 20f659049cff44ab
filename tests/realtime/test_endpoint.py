"""Which service answers, how the server signs in, and the upstream URL for each endpoint form."""

import re

import pytest

from voicechat.realtime.endpoint import (
    Auth,
    Provider,
    auth_for,
    auth_headers,
    openai_realtime_url,
    provider_for,
    realtime_url,
    shape_for,
)
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


def test_openai_url():
    assert openai_realtime_url("https://api.openai.com/v1", "gpt-realtime") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )


@pytest.mark.parametrize(
    "base_url",
    ["https://api.openai.com/v1/", " https://api.openai.com/v1 ", "https://api.openai.com/v1/realtime"],
)
def test_openai_base_url_variants(base_url):
    assert openai_realtime_url(base_url, "m") == "wss://api.openai.com/v1/realtime?model=m"


def test_openai_local_http_base_url_uses_ws_and_the_model_is_quoted():
    assert openai_realtime_url("http://127.0.0.1:8765/v1", "my model&x") == (
        "ws://127.0.0.1:8765/v1/realtime?model=my%20model%26x"
    )


@pytest.mark.parametrize("base_url", ["", "api.openai.com/v1", "ftp://x/v1", "https://", "https://h/v1?x=1"])
def test_bad_openai_base_urls_are_refused(base_url):
    with pytest.raises(ValueError, match=re.escape("OPENAI_BASE_URL must look like https://api.openai.com/v1")):
        openai_realtime_url(base_url, "m")


@pytest.mark.parametrize(
    ("azure_endpoint", "openai_api_key", "provider"),
    [
        ("https://x.openai.azure.com", "", Provider.AZURE),
        ("https://x.openai.azure.com", "sk-k", Provider.AZURE),  # Azure wins (and a check warns)
        ("", "sk-k", Provider.OPENAI),
        ("  ", "sk-k", Provider.OPENAI),
        ("", "", Provider.LOCAL),
    ],
)
def test_provider(azure_endpoint, openai_api_key, provider):
    assert provider_for(azure_endpoint=azure_endpoint, openai_api_key=openai_api_key) is provider


def test_auth_and_its_header():
    assert auth_for(Provider.AZURE, azure_api_key="k") is Auth.API_KEY
    assert auth_for(Provider.AZURE, azure_api_key="") is Auth.ENTRA_ID
    assert auth_for(Provider.OPENAI, azure_api_key="") is Auth.API_KEY
    assert auth_for(Provider.LOCAL, azure_api_key="") is Auth.NONE
    assert auth_headers(Provider.AZURE, Auth.API_KEY, "k") == {"api-key": "k"}
    assert auth_headers(Provider.AZURE, Auth.ENTRA_ID, "t") == {"Authorization": "Bearer t"}
    assert auth_headers(Provider.OPENAI, Auth.API_KEY, "sk-k") == {"Authorization": "Bearer sk-k"}
