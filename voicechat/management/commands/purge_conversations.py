"""Delete conversations older than the retention period, with their turns."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from voicechat.models import Conversation, Turn

# Conversations deleted per statement: a long backlog is deleted without loading it all at once.
BATCH = 500


class Command(BaseCommand):
    help = (
        "Delete ended conversations that started more than CONVERSATION_RETENTION_DAYS days ago "
        "(or --days), with their transcripts. Open conversations are never deleted; the cost "
        "ledger keeps its entries."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            help="Keep this many days instead of CONVERSATION_RETENTION_DAYS (0: keep everything).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be deleted.")

    def handle(self, *args, days: int | None, dry_run: bool, **options) -> None:
        if days is None:
            days = settings.CONVERSATION_RETENTION_DAYS
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        if days == 0:
            self.stdout.write(
                "No retention period is set (0 days: keep everything), so nothing was deleted. "
                "Set CONVERSATION_RETENTION_DAYS or pass --days."
            )
            return

        cutoff = timezone.now() - timedelta(days=days)
        expired = Conversation.objects.filter(started_at__lt=cutoff, ended_at__isnull=False)
        ids = list(expired.values_list("pk", flat=True))
        since = f"that started before {timezone.localtime(cutoff):%Y-%m-%d %H:%M} ({days} days ago)"
        if dry_run:
            turns = Turn.objects.filter(conversation__in=expired).count()
            self.stdout.write(f"Would delete {plural(len(ids), 'conversation')} ({plural(turns, 'turn')}) {since}.")
            return

        conversations = turns = 0
        for start in range(0, len(ids), BATCH):
            with transaction.atomic():
                # ended_at is checked again: a conversation taken up again meanwhile stays.
                deleted = expired.filter(pk__in=ids[start : start + BATCH]).delete()[1]
            conversations += deleted.get(Conversation._meta.label, 0)
            turns += deleted.get(Turn._meta.label, 0)
        message = f"Deleted {plural(conversations, 'conversation')} ({plural(turns, 'turn')}) {since}."
        self.stdout.write(self.style.SUCCESS(message))


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
