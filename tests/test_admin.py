"""The ledger, the usage summary, budget resets and the CSV exports in the admin, as staff use them."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from voicechat import ledger
from voicechat.csv_export import safe_cell
from voicechat.models import BudgetReset, Conversation, Turn, UsageEntry

pytestmark = pytest.mark.django_db

SUMMARY = reverse("admin:voicechat_usageentry_summary")
LEDGER = reverse("admin:voicechat_usageentry_changelist")
EXPORT = reverse("admin:voicechat_usageentry_export")
CONVERSATIONS = reverse("admin:voicechat_conversation_changelist")


@pytest.fixture(autouse=True)
def limits(settings):
    settings.BUDGET_DAILY_MINUTES = 10
    settings.BUDGET_DAILY_TOKENS = 5000
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def conversation_of(user, **values) -> Conversation:
    return Conversation.objects.create(
        user=user,
        engine="Azure OpenAI · gpt-realtime (GA)",
        deployment="gpt-realtime",
        endpoint_shape="ga",
        voice="alloy",
        **values,
    )


def entry(user, *, at=None, **values) -> UsageEntry:
    created = UsageEntry.objects.create(user=user, **values)
    if at is not None:
        UsageEntry.objects.filter(pk=created.pk).update(created_at=at)
    return created


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.reader(io.StringIO(response.content.decode())))


# The ledger


def test_the_ledger_is_a_read_only_list_for_staff(staff_client, user):
    conversation = conversation_of(user)
    entry(user, conversation=conversation, kind="response", total_tokens=120, cost=Decimal("0.00408"))
    page = staff_client.get(LEDGER)
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("admin:voicechat_conversation_change", args=[conversation.pk]) in html
    assert "0.004080" in html
    # Filters by user, kind and engine; the summary and the export are one click away.
    assert {spec.title for spec in page.context["cl"].filter_specs} == {"kind", "engine", "user"}
    assert SUMMARY in html
    assert EXPORT in html
    assert reverse("admin:voicechat_usageentry_add") not in html
    assert 'value="delete_selected"' not in html
    detail = staff_client.get(reverse("admin:voicechat_usageentry_change", args=[UsageEntry.objects.get().pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert staff_client.get(reverse("admin:voicechat_usageentry_delete", args=[1])).status_code == 403


def test_the_ledger_is_not_for_users(user):
    page = client_for(user).get(LEDGER)
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("admin:login"))


# The summary


def test_summary_per_user_per_day_with_totals(staff_client, user, other_user):
    today = timezone.localdate()
    noon = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    entry(user, at=noon, kind="time", seconds=300)
    entry(user, at=noon, kind="response", total_tokens=1200, cost=Decimal("0.25"))
    entry(user, at=noon - timedelta(days=1), kind="response", total_tokens=100, cost=Decimal("0.5"))
    entry(other_user, at=noon, kind="time", seconds=90, cost=Decimal(0))
    entry(other_user, at=noon - timedelta(days=30), kind="response", total_tokens=9, cost=Decimal(9))  # out of range
    page = staff_client.get(SUMMARY)
    assert page.status_code == 200
    rows = [(r.day, r.username, r.totals.minutes, r.totals.tokens, r.totals.cost) for r in page.context["rows"]]
    assert rows == [
        (today, "alice", 5.0, 1200, Decimal("0.250000")),
        (today, "bob", 1.5, 0, Decimal("0.000000")),
        (today - timedelta(days=1), "alice", 0.0, 100, Decimal("0.500000")),
    ]
    totals = page.context["totals"]
    assert (totals.minutes, totals.tokens, totals.cost) == (6.5, 1300, Decimal("0.750000"))
    html = page.content.decode()
    assert "<td><strong>6.5</strong></td>" in html
    assert "<td><strong>1,300</strong></td>" in html
    assert "<td><strong>0.7500</strong></td>" in html

    # Filtered by user and by days.
    yesterday = (today - timedelta(days=1)).isoformat()
    page = staff_client.get(SUMMARY, {"first": yesterday, "last": yesterday, "user": user.pk})
    assert [(r.day, r.username) for r in page.context["rows"]] == [(today - timedelta(days=1), "alice")]
    assert page.context["totals"].tokens == 100
    page = staff_client.get(SUMMARY, {"first": (today - timedelta(days=40)).isoformat(), "user": other_user.pk})
    assert [r.totals.tokens for r in page.context["rows"]] == [0, 9]


def test_summary_shows_each_users_day_against_the_budget(staff_client, user, other_user):
    entry(user, kind="time", seconds=600)  # the 10 minutes of the day
    entry(other_user, kind="response", total_tokens=1000, cost=Decimal("0.1"))
    page = staff_client.get(SUMMARY)
    budgets = {who.username: today for who, today in page.context["budgets"]}
    assert budgets["alice"].status.refusal is not None
    assert (budgets["bob"].status.refusal, budgets["bob"].status.tokens_left) == (None, 4000)
    html = page.content.decode()
    assert "Used up" in html
    assert "10 of 10" in html
    assert "1,000 of 5,000" in html
    assert reverse("admin:voicechat_usageentry_reset", args=[user.pk]) in html


def test_staff_reset_a_users_budget(staff_client, staff, user):
    entry(user, kind="time", seconds=600)
    assert ledger.budget_check(user).refusal is not None
    url = reverse("admin:voicechat_usageentry_reset", args=[user.pk])
    response = staff_client.post(url, {"next": SUMMARY + "?user=" + str(user.pk)}, follow=True)
    assert response.redirect_chain == [(SUMMARY + "?user=" + str(user.pk), 302)]
    reset = BudgetReset.objects.get()
    assert (reset.user, reset.by) == (user, staff)
    assert "Budget reset for alice: what was used before now no longer counts today." in response.content.decode()
    assert ledger.budget_check(user).refusal is None
    assert UsageEntry.objects.count() == 1  # the ledger itself is untouched


def test_reset_goes_back_only_to_this_site(staff_client, user):
    url = reverse("admin:voicechat_usageentry_reset", args=[user.pk])
    response = staff_client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == SUMMARY


def test_reset_is_a_post_for_staff_with_the_permission(user, other_user, django_user_model, staff_client):
    url = reverse("admin:voicechat_usageentry_reset", args=[other_user.pk])
    assert staff_client.get(url).status_code == 405
    refused = client_for(user).post(url)  # not staff: sent to the admin's login
    assert refused.status_code == 302
    assert refused["Location"].startswith(reverse("admin:login"))
    clerk = django_user_model.objects.create_user(username="clerk", password="s3cret-pass", is_staff=True)
    assert client_for(clerk).post(url).status_code == 403
    assert client_for(clerk).get(SUMMARY).status_code == 403
    assert not BudgetReset.objects.exists()
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_usageentry"), Permission.objects.get(codename="add_budgetreset")
    )
    clerk = django_user_model.objects.get(pk=clerk.pk)  # permissions are cached on the instance
    assert client_for(clerk).get(SUMMARY).status_code == 200
    assert client_for(clerk).post(url).status_code == 302
    assert BudgetReset.objects.get().by == clerk
    assert staff_client.post(reverse("admin:voicechat_usageentry_reset", args=[999999])).status_code == 404


# CSV


def test_cells_that_would_be_formulas_are_quoted():
    assert [safe_cell(v) for v in ["=1+1", "+33 6", "-2", "@SUM(A1)", "\t=x", "\r=x", "plain", "", 5, None]] == [
        "'=1+1",
        "'+33 6",
        "'-2",
        "'@SUM(A1)",
        "'\t=x",
        "'\r=x",
        "plain",
        "",
        5,
        None,
    ]


def test_ledger_csv_follows_the_changelist_filters(staff_client, user, django_user_model):
    mallory = django_user_model.objects.create_user(username="=HYPERLINK(1)", password="s3cret-pass")
    conversation = conversation_of(user)
    entry(user, conversation=conversation, kind="time", seconds=Decimal("61.5"))
    entry(user, conversation=conversation, kind="response", item_id="item_2", total_tokens=120, cost=Decimal("0.00408"))
    entry(mallory, kind="response", item_id="-1+1", total_tokens=7)
    rows = read_csv(staff_client.get(EXPORT, {"kind__exact": "response"}))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["id", "created_at", "user", "kind", "engine"]
    as_dicts = [dict(zip(header, row, strict=True)) for row in body]
    assert sorted((r["user"], r["item_id"], r["total_tokens"]) for r in as_dicts) == [
        ("'=HYPERLINK(1)", "'-1+1", "7"),
        ("alice", "item_2", "120"),
    ]
    alice = next(r for r in as_dicts if r["user"] == "alice")
    assert (alice["conversation_id"], alice["cost_usd"], alice["kind"]) == (
        str(conversation.pk),
        "0.004080",
        "response",
    )
    everything = read_csv(staff_client.get(EXPORT))
    assert len(everything) == 4
    only_alice_time = read_csv(staff_client.get(EXPORT, {"user__id__exact": user.pk, "kind__exact": "time"}))
    assert [row[header.index("seconds")] for row in only_alice_time[1:]] == ["61.500"]
    # The changelist's export button carries its filters.
    filtered = staff_client.get(LEDGER, {"kind__exact": "time"}).content.decode()
    assert f'href="{EXPORT}?kind__exact=time"' in filtered
    # A filter the changelist does not know sends back to it rather than exporting everything.
    assert staff_client.get(EXPORT, {"nonsense__exact": "1"}).status_code == 302


def test_ledger_csv_of_the_selected_entries(staff_client, user):
    chosen = entry(user, kind="response", total_tokens=5)
    entry(user, kind="response", total_tokens=6)
    response = staff_client.post(LEDGER, {"action": "export_selected", "_selected_action": [chosen.pk]})
    rows = read_csv(response)
    assert [row[0] for row in rows[1:]] == [str(chosen.pk)]


def test_transcripts_csv(staff_client, user, other_user):
    first = conversation_of(user, total_tokens=240)
    second = conversation_of(other_user, total_tokens=5)
    ignored = conversation_of(user)
    at = timezone.now()
    for conversation, seq, role, text, status, heard in [
        (first, 1, "user", "=cmd|' /C calc'!A0", "completed", None),
        (first, 2, "assistant", "Hello, how can I help?", "interrupted", 1250),
        (second, 1, "user", "+1 for that", "completed", None),
        (ignored, 1, "user", "not selected", "completed", None),
    ]:
        Turn.objects.create(
            conversation=conversation,
            seq=seq,
            role=role,
            text=text,
            status=status,
            heard_ms=heard,
            item_id=f"item_{seq}",
            started_at=at,
            completed_at=at,
        )
    entry(user, conversation=first, kind="response", cost=Decimal("0.004080"))
    entry(user, conversation=first, kind="transcription", cost=Decimal("0.000920"))
    response = staff_client.post(
        CONVERSATIONS, {"action": "export_transcripts", "_selected_action": [first.pk, second.pk]}
    )
    rows = read_csv(response)
    header = rows[0]
    assert header == [
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
    picked = [[row[0], row[1], row[3], row[4], row[5], row[7], row[8], row[9], row[10]] for row in rows[1:]]
    assert picked == [
        [str(first.pk), "alice", "1", "user", "completed", "'=cmd|' /C calc'!A0", "", "240", "0.005000"],
        [str(first.pk), "alice", "2", "assistant", "interrupted", "Hello, how can I help?", "1250", "240", "0.005000"],
        [str(second.pk), "bob", "1", "user", "completed", "'+1 for that", "", "5", "0.000000"],
    ]
    assert datetime.fromisoformat(rows[1][2]) == first.started_at


def test_conversations_show_minutes_and_cost(staff_client, user):
    conversation = conversation_of(user)
    entry(user, conversation=conversation, kind="time", seconds=90)
    entry(user, conversation=conversation, kind="response", cost=Decimal("0.012345"))
    page = staff_client.get(CONVERSATIONS)
    html = page.content.decode()
    assert "Cost ($)" in html
    assert '<td class="field-minutes_column">1.5</td>' in html
    assert '<td class="field-cost_column">0.0123</td>' in html
    detail = staff_client.get(reverse("admin:voicechat_conversation_change", args=[conversation.pk]))
    assert "0.0123" in detail.content.decode()
