from datetime import timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from voicechat import budget, ledger, live, services
from voicechat.csv_export import csv_response
from voicechat.models import BudgetReset, Conversation, LiveSession, Turn, UsageEntry


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


class ViewOnlyAdmin(admin.ModelAdmin):
    """Records staff may read but never add, edit or delete here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Records are read-only: what was said is not edited after the fact."""

    list_display = [
        "id",
        "user",
        "started_at",
        "duration_column",
        "turn_count",
        "total_tokens",
        "minutes_column",
        "cost_column",
        "end_reason",
    ]
    list_filter = ["started_at", "user", "end_reason", "engine"]
    search_fields = ["turns__text", "user__username"]
    date_hierarchy = "started_at"
    list_select_related = ["user"]
    inlines = [TurnInline]
    actions = ["export_transcripts"]
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
        "server",
        "resumes",
        "client_audio",
        "user_agent",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "minutes_column",
        "cost_column",
    ]
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return ledger.with_usage(super().get_queryset(request).annotate(turn_count=Count("turns")))

    @admin.display(description="Duration")
    def duration_column(self, conversation: Conversation) -> str:
        return conversation.duration_display

    @admin.display(description="Turns", ordering="turn_count")
    def turn_count(self, conversation: Conversation) -> int:
        return conversation.turn_count

    @admin.display(description="Minutes", ordering="usage_seconds")
    def minutes_column(self, conversation: Conversation) -> str:
        return budget.amount(float(conversation.usage_seconds) / 60)

    @admin.display(description="Cost ($)", ordering="usage_cost")
    def cost_column(self, conversation: Conversation) -> str:
        return f"{conversation.usage_cost:.4f}"

    @admin.action(description="Export the transcripts of the selected conversations as CSV")
    def export_transcripts(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        conversations = ledger.with_usage(Conversation.objects.filter(pk__in=queryset.values("pk")))
        costs = dict(conversations.values_list("pk", "usage_cost"))
        turns = (
            Turn.objects.filter(conversation__in=costs.keys())
            .select_related("conversation__user")
            .order_by("conversation__started_at", "conversation_id", "seq")
        )
        header = [
            "conversation_id",
            "user",
            "conversation_started_at",
            "seq",
            "role",
            "status",
            "turn_started_at",
            "text",
            "heard_ms",
            "conversation_tokens",
            "conversation_cost_usd",
        ]
        rows = (
            [
                turn.conversation_id,
                turn.conversation.user.get_username(),
                _moment(turn.conversation.started_at),
                turn.seq,
                turn.role,
                turn.status,
                _moment(turn.started_at),
                turn.text,
                turn.heard_ms,
                turn.conversation.total_tokens,
                f"{costs[turn.conversation_id]:.6f}",
            ]
            for turn in turns.iterator(chunk_size=500)
        )
        return csv_response(f"transcripts-{timezone.localdate():%Y-%m-%d}.csv", header, rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(LiveSession)
class LiveSessionAdmin(ViewOnlyAdmin):
    """The conversations held open now, by any server process; staff may end one."""

    list_display = [
        "conversation_link",
        "user",
        "started_at",
        "running_column",
        "turn_count",
        "total_tokens",
        "engine",
        "server",
    ]
    list_display_links = None
    list_filter = ["engine", "server"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    actions = ["end_sessions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LiveSession]:
        live_ids = services.live_conversations().values("pk")
        return super().get_queryset(request).filter(pk__in=live_ids).annotate(turn_count=Count("turns"))

    @admin.display(description="Conversation", ordering="id")
    def conversation_link(self, session: LiveSession) -> str:
        url = reverse("admin:voicechat_conversation_change", args=[session.pk])
        return format_html('<a href="{}">{}</a>', url, session.pk)

    @admin.display(description="Running for")
    def running_column(self, session: LiveSession) -> str:
        minutes, seconds = divmod(int((timezone.now() - session.started_at).total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"

    @admin.display(description="Turns", ordering="turn_count")
    def turn_count(self, session: LiveSession) -> int:
        return session.turn_count

    @admin.action(description="End the selected sessions", permissions=["end"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        by = request.user.get_username()
        asked, failed = 0, 0
        for conversation_id in queryset.values_list("pk", flat=True):
            try:
                async_to_sync(live.request_end)(conversation_id, by=by)
            except Exception:  # the channel layer is down: say so, and try the others
                failed += 1
            else:
                asked += 1
        if asked:
            messages.success(
                request,
                f"Asked {asked} session{'s' if asked != 1 else ''} to end; "
                "the server holding each ends it and saves it within a moment.",
            )
        if failed:
            messages.error(
                request,
                f"{failed} session{'s' if failed != 1 else ''} could not be reached: the channel layer "
                "(REDIS_URL) did not answer. Try again, or check Redis.",
            )

    def has_end_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("voicechat.end_livesession")


LEDGER_COLUMNS = [
    "id",
    "created_at",
    "user",
    "kind",
    "engine",
    "conversation_id",
    "turn_id",
    "item_id",
    "response_id",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "total_tokens",
    "seconds",
    "cost_usd",
]


def ledger_csv(entries: QuerySet[UsageEntry]) -> HttpResponse:
    rows = (
        [
            entry.pk,
            _moment(entry.created_at),
            entry.user.get_username(),
            entry.kind,
            entry.engine,
            entry.conversation_id,
            entry.turn_id,
            entry.item_id,
            entry.response_id,
            entry.input_text_tokens,
            entry.input_audio_tokens,
            entry.input_cached_text_tokens,
            entry.input_cached_audio_tokens,
            entry.output_text_tokens,
            entry.output_audio_tokens,
            entry.total_tokens,
            entry.seconds,
            entry.cost,
        ]
        for entry in entries.select_related("user").iterator(chunk_size=500)
    )
    return csv_response(f"usage-ledger-{timezone.localdate():%Y-%m-%d}.csv", LEDGER_COLUMNS, rows)


class SummaryFilter(forms.Form):
    first = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"), required=False)

    def clean(self) -> dict:
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last and first > last:
            raise forms.ValidationError("The first day comes after the last.")
        return data


@admin.register(UsageEntry)
class UsageEntryAdmin(ViewOnlyAdmin):
    """The ledger is read-only: a cost, once recorded, is neither edited nor deleted here."""

    change_list_template = "admin/voicechat/usageentry/change_list.html"
    list_display = [
        "created_at",
        "user",
        "kind",
        "conversation_link",
        "turn",
        "total_tokens",
        "seconds",
        "cost",
    ]
    list_filter = ["kind", "engine", "user"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "turn"]
    actions = ["export_selected"]

    def get_urls(self):
        urls = [
            path("summary/", self.admin_site.admin_view(self.summary_view), name="voicechat_usageentry_summary"),
            path(
                "summary/reset/<int:user_id>/",
                self.admin_site.admin_view(self.reset_view),
                name="voicechat_usageentry_reset",
            ),
            path("export/", self.admin_site.admin_view(self.export_view), name="voicechat_usageentry_export"),
        ]
        return urls + super().get_urls()

    @admin.display(description="Conversation", ordering="conversation")
    def conversation_link(self, entry: UsageEntry) -> str:
        if entry.conversation_id is None:
            return "—"
        url = reverse("admin:voicechat_conversation_change", args=[entry.conversation_id])
        return format_html('<a href="{}">{}</a>', url, entry.conversation_id)

    @admin.action(description="Export the selected entries as CSV")
    def export_selected(self, request: HttpRequest, queryset: QuerySet[UsageEntry]) -> HttpResponse:
        return ledger_csv(queryset)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The whole ledger as the changelist shows it now: the same filters, every page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:voicechat_usageentry_changelist"))
        return ledger_csv(changelist.get_queryset(request))

    def summary_view(self, request: HttpRequest) -> HttpResponse:
        """Usage per user per day, and each user's usage today against the budget."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        form = SummaryFilter(request.GET or None)
        data = form.cleaned_data if form.is_valid() else {}
        first = data.get("first") or today - timedelta(days=6)
        last = data.get("last") or today
        user = data.get("user")
        rows = ledger.usage_by_day(first=first, last=last, user_id=user.pk if user else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage per user per day",
            "form": form,
            "first": first,
            "last": last,
            "rows": rows,
            "totals": _sum_totals(rows),
            "budgets": _budgets_today(user),
            "limits": budget.Limits.from_settings(),
            "time_zone": settings.TIME_ZONE,
            "can_reset": request.user.has_perm("voicechat.add_budgetreset"),
        }
        return TemplateResponse(request, "admin/voicechat/usageentry/summary.html", context)

    def reset_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        return _reset(request, user_id)


@require_POST
def _reset(request: HttpRequest, user_id: int) -> HttpResponse:
    if not request.user.has_perm("voicechat.add_budgetreset"):
        raise PermissionDenied
    user = get_object_or_404(get_user_model(), pk=user_id)
    ledger.budget_reset(user=user, by=request.user)
    messages.success(
        request, f"Budget reset for {user.get_username()}: what was used before now no longer counts today."
    )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin:voicechat_usageentry_summary")
    return HttpResponseRedirect(target)


@admin.register(BudgetReset)
class BudgetResetAdmin(ViewOnlyAdmin):
    """Resets are made from the usage summary; this list keeps who gave whom a fresh budget, and when."""

    list_display = ["at", "user", "by"]
    list_filter = ["user"]
    date_hierarchy = "at"
    list_select_related = ["user", "by"]


def _sum_totals(rows: list[ledger.DayUsage]) -> ledger.UsageTotals:
    return ledger.UsageTotals(
        tokens=sum(row.totals.tokens for row in rows),
        cost=sum((row.totals.cost for row in rows), start=Decimal(0)),
        seconds=sum((row.totals.seconds for row in rows), start=Decimal(0)),
    )


def _budgets_today(only_user) -> list[tuple]:
    """(user, BudgetToday) of each user with usage today, or of the one asked for."""
    users = get_user_model().objects.order_by("username")
    if only_user is not None:
        users = users.filter(pk=only_user.pk)
    else:
        today = UsageEntry.objects.filter(created_at__gte=ledger.day_start())
        users = users.filter(pk__in=today.values("user_id"))
    return [(user, ledger.budget_today(user)) for user in users]


def _moment(value) -> str:
    return timezone.localtime(value).isoformat()
