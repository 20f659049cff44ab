import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.views.decorators.http import require_http_methods
from django.views.generic import ListView

from voicechat.conf import realtime_config
from voicechat.models import Conversation


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    config = realtime_config()
    return render(request, "voicechat/chat.html", {"engine_label": config.engine_label, "ws_path": "/ws/realtime/"})


class ConversationListView(LoginRequiredMixin, ListView):
    template_name = "voicechat/conversation_list.html"
    context_object_name = "conversations"
    paginate_by = 25

    def get_queryset(self):
        return (
            Conversation.objects.filter(user=self.request.user)
            .annotate(turn_count=Count("turns"))
            .order_by("-started_at", "-id")
        )


@login_required
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Another user's conversation answers 404, as if it did not exist.
    conversation = get_object_or_404(Conversation, pk=pk, user=request.user)
    return render(
        request,
        "voicechat/conversation_detail.html",
        {"conversation": conversation, "turns": conversation.turns.order_by("seq")},
    )


OPEN_CONVERSATION = "This conversation is still in progress, so it cannot be deleted. Disconnect it, then delete it."


@login_required
@require_http_methods(["GET", "POST"])
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes the conversation and its transcript."""
    conversation = get_object_or_404(Conversation, pk=pk, user=request.user)
    if request.method == "POST":
        # Only if it is still ended at this moment: a page may be taking it up again.
        deleted, _ = Conversation.objects.filter(pk=pk, user=request.user, ended_at__isnull=False).delete()
        if not deleted:
            messages.error(request, OPEN_CONVERSATION)
            return redirect("conversation_detail", pk=pk)
        started = format_date(timezone.localtime(conversation.started_at), "Y-m-d H:i")
        messages.success(request, f"The conversation of {started} was deleted.")
        return redirect("conversation_list")
    return render(
        request,
        "voicechat/conversation_confirm_delete.html",
        {
            "conversation": conversation,
            "turn_count": conversation.turns.count(),
            "open_message": OPEN_CONVERSATION if conversation.ended_at is None else "",
        },
    )


def locked_out(request: HttpRequest, *args: object) -> HttpResponse:
    """The page django-axes answers a sign-in with while its username and address are locked out.

    django-axes passes the refused response and the credentials too, in varying order.
    """
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
