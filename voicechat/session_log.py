"""One log line when a conversation's socket session starts, one when it ends.

The fields are ids, counts and reasons only: never audio, transcript text or a
credential. They are in the message as `key=value` pairs, and in the record as
attributes, which the JSON formatter (LOG_FORMAT=json) writes as keys of their own.
"""

import json
import logging

logger = logging.getLogger("voicechat.sessions")


def started(*, conversation_id: int, user_id: int, engine: str, resumed: bool) -> None:
    _log("session_started", conversation_id=conversation_id, user_id=user_id, engine=engine, resumed=resumed)


def ended(*, conversation_id: int, user_id: int, duration_s: float, turns: int, tokens: int, end_reason: str) -> None:
    """`turns` counts the conversation's turns so far; `tokens` those this session used."""
    _log(
        "session_ended",
        conversation_id=conversation_id,
        user_id=user_id,
        duration_s=round(duration_s, 3),
        turns=turns,
        tokens=tokens,
        end_reason=end_reason,
    )


def _log(event: str, **fields: object) -> None:
    pairs = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
    logger.info("%s %s", event, pairs, extra={"event": event, **fields})


def _value(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    # Quoted (as JSON strings are) where a space or quote would blur the pairs.
    return json.dumps(text, ensure_ascii=False) if not text or any(c in text for c in ' "=') else text
