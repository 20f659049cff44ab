"""Give a fresh installation an administrator to log in with."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the user 'admin' with a random password if no administrator exists yet."

    def handle(self, *args, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username="admin", email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                "\nCreated the administrator account.\n"
                f"  username: admin\n  password: {password}\n"
                "Keep it: it is shown only once (change it with: python manage.py changepassword admin).\n"
            )
        )
