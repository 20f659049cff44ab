"""The pages: chat, history, deleting a conversation, login, and the admin."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from voicechat.models import Conversation, Turn, UsageEntry

pytestmark = pytest.mark.django_db


def make_conversation(user, words=("Hello", "Hi, how can I help?"), **fields) -> Conversation:
    now = timezone.now()
    conversation = Conversation.objects.create(
        user=user, deployment="gpt-realtime", endpoint_shape="ga", voice="alloy", **fields
    )
    Conversation.objects.filter(pk=conversation.pk).update(started_at=now - timedelta(minutes=3))
    for seq, text in enumerate(words, start=1):
        Turn.objects.create(
            conversation=conversation,
            seq=seq,
            role="user" if seq % 2 else "assistant",
            text=text,
            item_id=f"item_{conversation.pk}_{seq}",
            started_at=now,
            completed_at=now,
        )
    return conversation


def test_pages_need_a_login(client):
    for name in ("chat", "conversation_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_login_page_and_login(client, user):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "alice", "password": "s3cret-pass"})
    assert response.status_code == 302 and response["Location"] == reverse("chat")


def test_chat_page_holds_no_secret(client, user, settings):
    settings.AZURE_OPENAI_ENDPOINT = "https://contoso.openai.azure.com"
    settings.AZURE_OPENAI_API_KEY = "super-secret-key-123"
    client.force_login(user)
    page = client.get(reverse("chat")).content.decode()
    assert "super-secret-key-123" not in page
    assert "Azure OpenAI · gpt-realtime (GA)" in page
    assert 'data-ws-path="/ws/realtime/"' in page


def test_history_shows_only_the_users_own(client, user, other_user):
    mine = make_conversation(user, words=("Mine",))
    theirs = make_conversation(other_user, words=("Theirs",))
    client.force_login(user)
    listing = client.get(reverse("conversation_list")).content.decode()
    assert reverse("conversation_detail", args=[mine.pk]) in listing
    assert reverse("conversation_detail", args=[theirs.pk]) not in listing
    detail = client.get(reverse("conversation_detail", args=[mine.pk]))
    assert detail.status_code == 200 and "Mine" in detail.content.decode()
    assert client.get(reverse("conversation_detail", args=[theirs.pk])).status_code == 404


def test_detail_shows_turns_in_order(client, user):
    conversation = make_conversation(user, words=("First words", "Second words", "Third words"))
    client.force_login(user)
    page = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert page.index("First words") < page.index("Second words") < page.index("Third words")


def test_admin_is_staff_only(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:voicechat_conversation_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_list_search_and_filters(client, staff, user, other_user):
    found = make_conversation(user, words=("We talked about zebras",), total_tokens=321)
    Conversation.objects.filter(pk=found.pk).update(ended_at=timezone.now(), end_reason="client_closed")
    make_conversation(other_user, words=("Nothing in particular",))
    client.force_login(staff)
    url = reverse("admin:voicechat_conversation_changelist")
    listing = client.get(url).content.decode()
    for column in ("Duration", "Turns", "Total tokens", "End reason", "3:0"):
        assert column in listing
    result = client.get(url, {"q": "zebras"})
    assert result.context["cl"].result_count == 1
    assert list(result.context["cl"].result_list) == [found]
    by_reason = client.get(url, {"end_reason__exact": "client_closed"})
    assert by_reason.context["cl"].result_count == 1
    by_user = client.get(url, {"user__id__exact": other_user.pk})
    assert by_user.context["cl"].result_count == 1


def test_admin_conversation_page_is_read_only_and_ordered(client, staff, user):
    conversation = make_conversation(
        user,
        words=("Alpha", "Beta", "Gamma"),
        client_audio={"echoCancellation": False, "sampleRate": 44100},
        user_agent="Mozilla/5.0 Firefox/140.0",
    )
    client.force_login(staff)
    page = client.get(reverse("admin:voicechat_conversation_change", args=[conversation.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Alpha") < html.index("Beta") < html.index("Gamma")
    assert 'name="_save"' not in html  # nothing to save: records are read-only
    # The microphone's settings: the usual cause of "the model hears itself".
    assert "echoCancellation" in html and "44100" in html and "Firefox/140.0" in html
    assert client.get(reverse("admin:voicechat_conversation_add")).status_code == 403


# Deleting one's own conversations


def ended_conversation(user, **fields) -> Conversation:
    conversation = make_conversation(user, **fields)
    Conversation.objects.filter(pk=conversation.pk).update(ended_at=timezone.now(), end_reason="client_closed")
    conversation.refresh_from_db()
    return conversation


def test_a_user_deletes_an_ended_conversation_after_confirming(client, user):
    conversation = ended_conversation(user, words=("Forget this", "Forgotten"))
    entry = UsageEntry.objects.create(user=user, conversation=conversation, kind="response", total_tokens=120)
    delete_url = reverse("conversation_delete", args=[conversation.pk])
    client.force_login(user)
    detail = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert f'href="{delete_url}"' in detail

    confirm = client.get(delete_url)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Delete the conversation of" in page and "2 turns" in page
    assert 'name="csrfmiddlewaretoken"' in page and f'action="{delete_url}"' in page
    assert Conversation.objects.filter(pk=conversation.pk).exists()  # a GET deletes nothing

    response = client.post(delete_url, follow=True)
    assert response.redirect_chain == [(reverse("conversation_list"), 302)]
    started = timezone.localtime(conversation.started_at).strftime("%Y-%m-%d %H:%M")
    assert f"The conversation of {started} was deleted." in response.content.decode()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Turn.objects.filter(conversation_id=conversation.pk).exists()
    # The cost ledger keeps what the conversation used.
    entry.refresh_from_db()
    assert entry.conversation is None and entry.total_tokens == 120


def test_another_users_conversation_cannot_be_deleted(client, user, other_user):
    theirs = ended_conversation(other_user)
    client.force_login(user)
    url = reverse("conversation_delete", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert Conversation.objects.filter(pk=theirs.pk).exists()


def test_an_open_conversation_cannot_be_deleted(client, user):
    conversation = make_conversation(user)  # ended_at is empty: it is going on
    url = reverse("conversation_delete", args=[conversation.pk])
    client.force_login(user)
    detail = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert url not in detail
    confirm = client.get(url).content.decode()
    assert "still in progress, so it cannot be deleted" in confirm
    assert "csrfmiddlewaretoken" not in confirm.split("<main", 1)[1].split("</main>")[0]

    response = client.post(url, follow=True)
    assert response.redirect_chain == [(reverse("conversation_detail", args=[conversation.pk]), 302)]
    assert "still in progress, so it cannot be deleted" in response.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_deleting_needs_a_login_a_post_and_the_csrf_token(client, user):
    conversation = ended_conversation(user)
    url = reverse("conversation_delete", args=[conversation.pk])
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(user)
    assert checked.post(url).status_code == 403
    client.force_login(user)
    assert client.delete(url).status_code == 405
    assert Conversation.objects.filter(pk=conversation.pk).exists()
