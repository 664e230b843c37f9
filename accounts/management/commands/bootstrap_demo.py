"""Create the embedded default's operator account and demo disks (idempotent)."""

import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from disks.categories import CATEGORIES
from disks.models import Disk
from disks.services import disk_create_local

DEMO_DISK_BYTES = 200 * 1024**3


class Command(BaseCommand):
    help = "Create the demo operator account and two local disks per category under var/disks/."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="operator@example.com")

    def handle(self, *args, email: str, **options):
        password_file = settings.VAR_DIR / "demo_operator.txt"
        user = User.objects.filter(email=email).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(email=email, password=password)
            password_file.write_text(f"{email}\n{password}\n")
            password_file.chmod(0o600)
        else:
            lines = password_file.read_text().splitlines() if password_file.exists() else [email, "(unchanged)"]
            password = lines[1] if len(lines) > 1 else "(unchanged)"
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        for category in CATEGORIES:
            for n in (1, 2):
                name = f"demo-{category.lower()}{n}"
                if not Disk.objects.filter(name=name).exists():
                    disk_create_local(
                        name=name,
                        path=settings.CLOUDSTORAGE_DISKS_DIR / name,
                        category=category,
                        capacity_bytes=DEMO_DISK_BYTES,
                    )
        self.stdout.write(
            self.style.SUCCESS(
                f"Operator account: {email} / {password}  (admin at {settings.SITE_URL}/admin/)\n"
                f"Disks: {Disk.objects.count()} under {settings.CLOUDSTORAGE_DISKS_DIR}"
            )
        )
