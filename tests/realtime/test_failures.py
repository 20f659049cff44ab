"""Upstream failures name a real end reason and tell the user what to fix."""

import pytest

from voicechat.models import EndReason
from voicechat.realtime.failures import (
    failure_expired,
    failure_for_status,
    failure_local_engine,
    failure_lost,
    failure_timeout,
    failure_unreachable,
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


@pytest.mark.parametrize("failure", ALL, ids=lambda f: f.reason)
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
