from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
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
