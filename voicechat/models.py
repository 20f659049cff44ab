"""Conversations and their turns, as said, in the order they were said."""

from datetime import timedelta

from django.conf import settings
from django.db import models


class EndpointShape(models.TextChoices):
    GA = "ga", "GA"
    PREVIEW = "preview", "Preview"


class EndReason(models.TextChoices):
    CLIENT_CLOSED = "client_closed", "User disconnected"
    UPSTREAM_CLOSED = "upstream_closed", "Voice service connection lost"
    SESSION_EXPIRED = "session_expired", "Voice service session expired"
    AUTH_FAILED = "auth_failed", "API key refused"
    NOT_FOUND = "not_found", "Deployment not found"
    RATE_LIMITED = "rate_limited", "Throttled by the voice service"
    UNREACHABLE = "unreachable", "Voice service unreachable"
    TIMEOUT = "timeout", "Voice service did not answer in time"
    UPSTREAM_ERROR = "upstream_error", "Voice service error"
    LOCAL_ENGINE_ERROR = "local_engine_error", "Local voice engine could not start"
    SERVER_SHUTDOWN = "server_shutdown", "Server shut down"
    INTERRUPTED = "interrupted", "Interrupted (server stopped unexpectedly)"
    SESSION_LIMIT = "session_limit", "Maximum session length reached"
    IDLE = "idle", "Idle for too long"
    BUDGET = "budget", "Daily budget used up"
    POLICY = "policy", "Closed for abuse (too many refused messages)"
    DATABASE_ERROR = "database_error", "Database unavailable"
    STAFF_ENDED = "staff_ended", "Ended by staff"


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    end_detail = models.TextField(blank=True)
    engine = models.CharField(
        max_length=200, help_text="Who answered: the Azure deployment, the OpenAI model or the local engine."
    )
    deployment = models.CharField(max_length=200)
    endpoint_shape = models.CharField(max_length=16, choices=EndpointShape.choices)
    voice = models.CharField(max_length=64)
    upstream_session_id = models.CharField(max_length=200, blank=True)
    resumes = models.PositiveIntegerField(
        default=0, help_text="Times the conversation went on in a new session (service expiry, dropped socket)."
    )
    client_audio = models.JSONField(
        default=dict, blank=True, help_text="The microphone's actual settings, as the browser reported them."
    )
    user_agent = models.CharField(max_length=500, blank=True)
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="The server's last sign of life for this open conversation."
    )
    server = models.CharField(
        max_length=200, blank=True, help_text="The server process (host:pid) holding the conversation last."
    )
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.user}, {self.started_at:%Y-%m-%d %H:%M})"

    @property
    def duration(self) -> timedelta | None:
        if self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def duration_display(self) -> str:
        """The duration as "1:05:09" or "4:12"; a dash while the conversation goes on."""
        if self.duration is None:
            return "—"
        minutes, seconds = divmod(int(self.duration.total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


class LiveSession(Conversation):
    """An open conversation, as staff see and end it in the admin, whichever process holds it."""

    class Meta:
        proxy = True
        verbose_name = "live session"
        permissions = [("end_livesession", "Can end a live session")]


class Turn(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        INTERRUPTED = "interrupted", "Interrupted"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    seq = models.PositiveIntegerField(help_text="Position in the conversation, from 1.")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    detail = models.TextField(blank=True, help_text="Why a turn failed or how it ended early.")
    heard_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="For an interrupted reply: milliseconds of audio the user heard."
    )
    item_id = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="turn_unique_seq"),
            models.UniqueConstraint(fields=["conversation", "item_id"], name="turn_unique_item"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.seq}"


class UsageEntry(models.Model):
    """One line of the cost ledger: a response's or a transcription's usage, or a socket's connected time.

    Kept when the user deletes the conversation (the link is then empty), so a
    deletion neither hides spending nor gives back budget.
    """

    class Kind(models.TextChoices):
        RESPONSE = "response", "Response"
        TRANSCRIPTION = "transcription", "Transcription"
        TIME = "time", "Connected time"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_entries")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_entries"
    )
    turn = models.ForeignKey(Turn, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_entries")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    engine = models.CharField(max_length=200, blank=True)
    item_id = models.CharField(max_length=200, blank=True, help_text="The turn's item, linked once it is saved.")
    response_id = models.CharField(max_length=200, blank=True)
    input_text_tokens = models.PositiveBigIntegerField(default=0)
    input_audio_tokens = models.PositiveBigIntegerField(default=0)
    input_cached_text_tokens = models.PositiveBigIntegerField(default=0)
    input_cached_audio_tokens = models.PositiveBigIntegerField(default=0)
    output_text_tokens = models.PositiveBigIntegerField(default=0)
    output_audio_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    seconds = models.DecimalField(
        max_digits=12, decimal_places=3, default=0, help_text="Audio transcribed, or time connected."
    )
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0, help_text="Estimated, in USD.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "usage entry"
        verbose_name_plural = "usage ledger"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk} ({self.user})"


class BudgetReset(models.Model):
    """Staff gave a user a fresh daily budget: usage before this moment no longer counts today."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget_resets")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"Budget reset for {self.user} at {self.at:%Y-%m-%d %H:%M}"
