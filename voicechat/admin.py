from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from voicechat.models import Conversation, Turn


class TurnInline(admin.TabularInline):
    model = Turn
    ordering = ["seq"]
    fields = ["seq", "role", "text", "status", "heard_ms", "detail", "started_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Records are read-only: what was said is not edited after the fact."""

    list_display = ["id", "user", "started_at", "duration_column", "turn_count", "total_tokens", "end_reason"]
    list_filter = ["started_at", "user", "end_reason", "engine"]
    search_fields = ["turns__text", "user__username"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]
    inlines = [TurnInline]
    readonly_fields = [
        "user",
        "started_at",
        "ended_at",
        "duration_column",
        "end_reason",
        "end_detail",
        "engine",
        "deployment",
        "endpoint_shape",
        "voice",
        "upstream_session_id",
        "resumes",
        "client_audio",
        "user_agent",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    ]
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(turn_count=Count("turns"))

    @admin.display(description="Duration")
    def duration_column(self, conversation: Conversation) -> str:
        return conversation.duration_display

    @admin.display(description="Turns", ordering="turn_count")
    def turn_count(self, conversation: Conversation) -> int:
        return conversation.turn_count

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False
