"""Every database write of a conversation and its turns, in one place (the cost ledger's are in ledger.py)."""

import os
import socket
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from voicechat import ledger
from voicechat.models import Conversation, EndReason, Turn, UsageEntry
from voicechat.realtime.recorder import (
    ClientInfo,
    Record,
    ServiceError,
    SessionStarted,
    TranscriptionUsage,
    TurnRecord,
    Usage,
)

# A conversation the browser lost its socket to may be taken up again for this long.
# A server restart is one of these: the page reconnects, to another process maybe, and goes on.
RESUMABLE_REASONS = (
    EndReason.CLIENT_CLOSED,
    EndReason.UPSTREAM_CLOSED,
    EndReason.SESSION_EXPIRED,
    EndReason.SERVER_SHUTDOWN,
)


class TooManyConversations(Exception):
    """The user already holds as many open conversations as allowed."""


# An open conversation whose server has given no sign of life for this long was
# left behind by a stopped process (servers write one every HEARTBEAT_SECONDS).
HEARTBEAT_SECONDS = 30
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


def server_name() -> str:
    """This server process, as the admin shows who holds a conversation."""
    return f"{socket.gethostname()}:{os.getpid()}"


def live_conversations() -> QuerySet[Conversation]:
    """The conversations that a server, in any process, is holding open now."""
    return Conversation.objects.filter(ended_at__isnull=True, last_seen_at__gte=timezone.now() - STALE_AFTER)


def open_conversations(user: AbstractBaseUser) -> QuerySet[Conversation]:
    """The user's conversations that a server, in any process, is holding open now."""
    return live_conversations().filter(user=user)


def _check_open(user: AbstractBaseUser, max_open: int, *, exclude: int | None = None) -> None:
    """Raise TooManyConversations if the user may not hold one more; call inside a transaction."""
    if not max_open:
        return
    # Locking the user's row makes two starts by the same user, in any process, take turns.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    if open_conversations(user).exclude(pk=exclude).count() >= max_open:
        raise TooManyConversations


def conversation_start(
    *, user: AbstractBaseUser, engine: str, deployment: str, endpoint_shape: str, voice: str, max_open: int = 0
) -> Conversation:
    with transaction.atomic():
        _check_open(user, max_open)
        return Conversation.objects.create(
            user=user,
            engine=engine,
            deployment=deployment,
            endpoint_shape=endpoint_shape,
            voice=voice,
            last_seen_at=timezone.now(),
            server=server_name(),
        )


def conversations_alive(alive: list[tuple[int, int | None, float]]) -> None:
    """A process still holds these conversations: (conversation id, time entry id, connected seconds)."""
    if not alive:
        return
    held = Conversation.objects.filter(pk__in=[conversation_id for conversation_id, _, _ in alive])
    held.filter(ended_at__isnull=True).update(last_seen_at=timezone.now())
    ledger.update_times({entry_id: seconds for _, entry_id, seconds in alive if entry_id is not None})


def conversations_close_interrupted(*, stale_after: timedelta = STALE_AFTER) -> int:
    """End the open conversations no server has held for a while (left by a crash); how many."""
    cutoff = timezone.now() - stale_after
    left = Conversation.objects.filter(ended_at__isnull=True).filter(
        Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True, started_at__lt=cutoff)
    )
    return left.update(
        ended_at=Coalesce("last_seen_at", "started_at"),
        end_reason=EndReason.INTERRUPTED,
        end_detail="The server stopped without ending the conversation; it ends at its last sign of life.",
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
    *, user: AbstractBaseUser, conversation_id: int, window: timedelta, max_open: int = 0
) -> tuple[Conversation, list[tuple[int, str, str]]] | None:
    """Take up a user's recent conversation again: it and its (seq, role, text) turns, or None."""
    with transaction.atomic():
        _check_open(user, max_open, exclude=conversation_id)
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id, user=user).first()
        if conversation is None:
            return None
        if conversation.ended_at is not None and (
            conversation.end_reason not in RESUMABLE_REASONS or conversation.ended_at < timezone.now() - window
        ):
            return None
        conversation.last_seen_at = timezone.now()
        conversation.ended_at = None
        conversation.end_reason = ""
        conversation.end_detail = ""
        conversation.resumes = F("resumes") + 1
        conversation.server = server_name()
        conversation.save(update_fields=["ended_at", "end_reason", "end_detail", "resumes", "last_seen_at", "server"])
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
        # Usage saved before its turn (a cancelled reply, a late transcription) is linked now.
        UsageEntry.objects.filter(conversation_id=conversation_id, item_id=record.item_id, turn=None).update(turn=turn)
    return turn


def record_save(*, conversation_id: int, record: Record) -> None:
    """Save any record the recorder produced."""
    if isinstance(record, TurnRecord):
        turn_save(conversation_id=conversation_id, record=record)
    elif isinstance(record, Usage):
        with transaction.atomic():  # a retried write counts the usage once
            conversation_add_usage(conversation_id=conversation_id, usage=record)
            ledger.add_response(conversation_id=conversation_id, usage=record)
    elif isinstance(record, TranscriptionUsage):
        ledger.add_transcription(conversation_id=conversation_id, usage=record)
    elif isinstance(record, SessionStarted):
        conversation_set_session(conversation_id=conversation_id, session_id=record.session_id)
    elif isinstance(record, ClientInfo):
        conversation_set_client_info(conversation_id=conversation_id, info=record)
    elif isinstance(record, ServiceError):
        pass  # read by the consumer to name the end reason; nothing to store on its own


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
