"""Every database write of a conversation, in one place."""

from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from voicechat.models import Conversation, Turn
from voicechat.realtime.recorder import Record, ServiceError, SessionStarted, TurnRecord, Usage


def conversation_start(
    *, user: AbstractBaseUser, engine: str, deployment: str, endpoint_shape: str, voice: str
) -> Conversation:
    return Conversation.objects.create(
        user=user, engine=engine, deployment=deployment, endpoint_shape=endpoint_shape, voice=voice
    )


def conversation_set_session(*, conversation_id: int, session_id: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(upstream_session_id=session_id)


def conversation_add_usage(*, conversation_id: int, usage: Usage) -> None:
    Conversation.objects.filter(pk=conversation_id).update(
        input_tokens=F("input_tokens") + usage.input_tokens,
        output_tokens=F("output_tokens") + usage.output_tokens,
        total_tokens=F("total_tokens") + usage.total_tokens,
    )


def conversation_end(*, conversation_id: int, reason: str, detail: str = "") -> None:
    """Mark the conversation ended, once: the first reason given is the one kept."""
    Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason, end_detail=detail
    )


def turn_save(*, conversation_id: int, record: TurnRecord) -> Turn:
    """Create the turn, or bring it up to date with a later record of the same item."""
    with transaction.atomic():
        turn, _ = Turn.objects.update_or_create(
            conversation_id=conversation_id,
            item_id=record.item_id,
            defaults={
                "seq": record.seq,
                "role": record.role,
                "text": record.text,
                "status": record.status,
                "detail": record.detail,
                "heard_ms": record.heard_ms,
                "started_at": _moment(record.started_at),
                "completed_at": _moment(record.completed_at),
            },
        )
    return turn


def record_save(*, conversation_id: int, record: Record) -> None:
    """Save any record the recorder produced."""
    if isinstance(record, TurnRecord):
        turn_save(conversation_id=conversation_id, record=record)
    elif isinstance(record, Usage):
        conversation_add_usage(conversation_id=conversation_id, usage=record)
    elif isinstance(record, SessionStarted):
        conversation_set_session(conversation_id=conversation_id, session_id=record.session_id)
    elif isinstance(record, ServiceError):
        pass  # read by the consumer to name the end reason; nothing to store on its own


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
