"""Back up the database onto a disk of the chunk store (see disks/metadata_backup.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from disks.metadata_backup import BackupError, backup_create_on


class Command(BaseCommand):
    help = "Snapshot the database, sealed under the master key, onto a disk; keep the newest --keep."

    def add_arguments(self, parser):
        parser.add_argument("--disk", default=settings.CLOUDSTORAGE_BACKUP_DISK, help="The disk's name.")
        parser.add_argument("--keep", type=int, default=settings.CLOUDSTORAGE_BACKUP_KEEP)

    def handle(self, *args, disk: str, keep: int, **options):
        if not disk:
            raise CommandError("Name the disk with --disk (or set CLOUDSTORAGE_BACKUP_DISK).")
        if keep < 1:
            raise CommandError("--keep must be at least 1.")
        try:
            key = backup_create_on(disk_name=disk, keep=keep)
        except BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"backed up the database to {key} on disk {disk}")
