"""End the conversations a stopped or crashed server left open."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from voicechat import services


class Command(BaseCommand):
    help = (
        "End, with reason 'interrupted', the open conversations no server has held for a while "
        "(left by a crash or a kill). Safe to run while other server processes hold live ones: "
        f"those give a sign of life every {services.HEARTBEAT_SECONDS} seconds."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stale-seconds",
            type=float,
            default=services.STALE_AFTER.total_seconds(),
            help="How long without a sign of life makes a conversation left behind (default: %(default)s).",
        )

    def handle(self, *args, stale_seconds: float, **options) -> None:
        closed = services.conversations_close_interrupted(stale_after=timedelta(seconds=stale_seconds))
        if closed:
            self.stdout.write(f"Ended {closed} conversation{'s' if closed != 1 else ''} left open by a stopped server.")
        elif options["verbosity"] > 1:
            self.stdout.write("No conversation was left open.")
