"""Upstream failures name a real end reason and tell the user what to fix."""

import pytest

from voicechat.models import EndReason
from voicechat.realtime.endpoint import Auth, Provider
from voicechat.realtime.failures import (
    failure_entra_timeout,
    failure_entra_token,
    failure_expired,
    failure_for_refusal,
    failure_for_status,
    failure_local_engine,
    failure_lost,
    failure_timeout,
    failure_unreachable,
    refusal_code,
)

ALL = [
    failure_for_status(401, deployment="d"),
    failure_for_status(403, deployment="d"),
    failure_for_status(404, deployment="d"),
    failure_for_status(429, deployment="d"),
    failure_for_status(500, deployment="d"),
    failure_unreachable("x.openai.azure.com", "Connection refused"),
    failure_timeout("x.openai.azure.com", 10),
    failure_local_engine("no model in /nowhere."),
    failure_lost("code 1006"),
    failure_expired(),
]


PROVIDER_FAILURES = [
    failure_for_status(401, deployment="d", provider=Provider.AZURE, auth=Auth.ENTRA_ID),
    failure_for_status(401, deployment="m", provider=Provider.OPENAI),
    failure_for_status(404, deployment="m", provider=Provider.OPENAI),
    failure_for_refusal("invalid_api_key", 3000, deployment="m", provider=Provider.OPENAI, auth=Auth.API_KEY),
    failure_for_refusal("model_not_found", 4000, deployment="m", provider=Provider.OPENAI, auth=Auth.API_KEY),
    failure_for_refusal("insufficient_quota", 1008, deployment="m", provider=Provider.OPENAI, auth=Auth.API_KEY),
    failure_unreachable("api.openai.com", "Connection refused", provider=Provider.OPENAI),
    failure_entra_token(),
    failure_entra_timeout(10),
]


@pytest.mark.parametrize("failure", ALL + PROVIDER_FAILURES, ids=lambda f: f.reason)
def test_each_failure_is_a_known_end_reason_with_an_application_close_code(failure):
    assert failure.reason in EndReason.values
    assert 4000 <= failure.close_code < 5000
    assert failure.message.endswith(".")


def test_status_codes():
    assert failure_for_status(401, deployment="d").reason == "auth_failed"
    assert failure_for_status(404, deployment="my-dep").message.startswith(
        "The voice service has no deployment named 'my-dep'"
    )
    assert failure_for_status(429, deployment="d").close_code == 4429
    assert failure_for_status(503, deployment="d").reason == "upstream_error"


def test_a_refused_key_or_token_names_what_to_fix():
    azure_key = failure_for_status(401, deployment="d")
    entra = failure_for_status(403, deployment="d", provider=Provider.AZURE, auth=Auth.ENTRA_ID)
    openai = failure_for_status(401, deployment="m", provider=Provider.OPENAI)
    assert (azure_key.reason, entra.reason, openai.reason) == ("auth_failed",) * 3
    assert (azure_key.close_code, entra.close_code, openai.close_code) == (4401,) * 3
    assert "AZURE_OPENAI_API_KEY" in azure_key.message
    assert "refused the server's Microsoft Entra ID token (HTTP 403)" in entra.message
    assert "Cognitive Services OpenAI User" in entra.message and "API_KEY" not in entra.message
    assert "OPENAI_API_KEY" in openai.message and "AZURE" not in openai.message


def test_openai_names_its_own_settings():
    assert failure_for_status(404, deployment="m", provider=Provider.OPENAI).message.startswith(
        "The voice service has no model named 'm' (HTTP 404). The administrator must check OPENAI_REALTIME_MODEL"
    )
    assert "check OPENAI_BASE_URL" in failure_unreachable("h", "c", provider=Provider.OPENAI).message
    assert "check AZURE_OPENAI_ENDPOINT" in failure_unreachable("h", "c").message


def test_a_session_refused_after_the_handshake():
    openai = {"deployment": "m", "provider": Provider.OPENAI, "auth": Auth.API_KEY}
    key = failure_for_refusal("invalid_api_key", 3000, **openai)
    assert (key.reason, key.close_code, key.retryable) == ("auth_failed", 4401, False)
    assert "refused the server's API key (invalid_api_key)" in key.message
    assert failure_for_refusal(None, 3000, **openai).reason == "auth_failed"  # a close without an event
    model = failure_for_refusal("model_not_found", 4000, **openai)
    assert (model.reason, model.close_code) == ("not_found", 4404)
    assert failure_for_refusal(None, 4000, **openai).reason == "not_found"
    other = failure_for_refusal("insufficient_quota", 1008, **openai)
    assert (other.reason, other.close_code) == ("upstream_error", 4502)
    assert "(insufficient_quota)" in other.message
    assert "(close code 1011)" in failure_for_refusal(None, 1011, **openai).message
    assert "(no close frame)" in failure_for_refusal(None, None, **openai).message


def test_entra_failures():
    token = failure_entra_token()
    assert (token.reason, token.close_code, token.retryable) == ("auth_failed", 4401, False)
    assert "Microsoft Entra ID token" in token.message
    timeout = failure_entra_timeout(2.5)
    assert (timeout.reason, timeout.close_code, timeout.retryable) == ("timeout", 4504, True)
    assert "within 2.5 s" in timeout.message


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_api_key"}}', "invalid_api_key"),
        ('{"type": "error", "error": {"message": "no code"}}', "error"),
        ('{"type": "error"}', "error"),
        ('{"type": "session.created", "session": {}}', None),
        ("not JSON {", None),
        ("[1, 2]", None),
        (b"\x00binary", None),
    ],
)
def test_refusal_code(frame, code):
    assert refusal_code(frame) == code
