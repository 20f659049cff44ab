"""Every database write of a conversation, in one place."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from voicechat.models import Conversation, EndReason, Turn
from voicechat.realtime.recorder import ClientInfo, Record, ServiceError, SessionStarted, TurnRecord, Usage

# A conversation the browser lost its socket to may be taken up again for this long.
RESUMABLE_REASONS = (EndReason.CLIENT_CLOSED, EndReason.UPSTREAM_CLOSED, EndReason.SESSION_EXPIRED)


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


def conversation_end(*, conversation_id: int, reason: str, detail: str = "", epoch: int | None = None) -> None:
    """Mark the conversation ended, once: the first reason given is the one kept.

    With an epoch (the `resumes` count the caller last saw), a socket that has
    since been replaced by a newer one no longer ends the conversation.
    """
    conversations = Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True)
    if epoch is not None:
        conversations = conversations.filter(resumes=epoch)
    conversations.update(ended_at=timezone.now(), end_reason=reason, end_detail=detail)


def conversation_resume(
    *, user: AbstractBaseUser, conversation_id: int, window: timedelta
) -> tuple[Conversation, list[tuple[int, str, str]]] | None:
    """Take up a user's recent conversation again: it and its (seq, role, text) turns, or None."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id, user=user).first()
        if conversation is None:
            return None
        if conversation.ended_at is not None and (
            conversation.end_reason not in RESUMABLE_REASONS or conversation.ended_at < timezone.now() - window
        ):
            return None
        conversation.ended_at = None
        conversation.end_reason = ""
        conversation.end_detail = ""
        conversation.resumes = F("resumes") + 1
        conversation.save(update_fields=["ended_at", "end_reason", "end_detail", "resumes"])
        conversation.refresh_from_db()
    turns = list(conversation.turns.order_by("seq").values_list("seq", "role", "text"))
    return conversation, turns


def conversation_count_resume(*, conversation_id: int) -> int:
    """Count a new service session for the same conversation; the new epoch."""
    Conversation.objects.filter(pk=conversation_id).update(resumes=F("resumes") + 1)
    return Conversation.objects.values_list("resumes", flat=True).get(pk=conversation_id)


def conversation_set_client_info(*, conversation_id: int, info: ClientInfo) -> None:
    """Keep the first report of the microphone's settings: once per conversation."""
    Conversation.objects.filter(pk=conversation_id, client_audio={}).update(
        client_audio=info.audio, user_agent=info.user_agent[:500]
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
    elif isinstance(record, ClientInfo):
        conversation_set_client_info(conversation_id=conversation_id, info=record)
    elif isinstance(record, ServiceError):
        pass  # read by the consumer to name the end reason; nothing to store on its own


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
