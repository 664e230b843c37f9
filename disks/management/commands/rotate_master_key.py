"""``manage.py rotate_master_key``: re-wrap every workspace data key under the current master key."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from disks.crypto import CryptoError, data_keys_rewrap, disk_secrets_reseal, master_key_id
from disks.metadata_backup import BackupError, backup_create_on


class Command(BaseCommand):
    help = (
        "Re-wrap every workspace's data key and re-seal every disk secret under the current "
        "CLOUDSTORAGE_MASTER_KEY; chunks are not "
        "rewritten. The old key comes from CLOUDSTORAGE_PREVIOUS_MASTER_KEYS, --old-key-env or "
        "--old-key-file (never from the command line, where other users could see it). Then, with "
        "CLOUDSTORAGE_BACKUP_DISK set, the database is backed up under the new key. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--old-key-file", action="append", default=[], metavar="PATH", help="A file holding an old key."
        )
        parser.add_argument(
            "--old-key-env",
            action="append",
            default=[],
            metavar="NAME",
            help="An environment variable holding an old key.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only check that every data key can be opened.")

    def handle(self, *args, old_key_file, old_key_env, dry_run, **options):
        from django.conf import settings

        old_keys = []
        for path in old_key_file:
            try:
                old_keys.append(Path(path).read_text().strip())
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc}") from exc
        for name in old_key_env:
            value = os.environ.get(name, "").strip()
            if not value:
                raise CommandError(f"the environment variable {name} is empty or not set")
            old_keys.append(value)
        try:
            counts = data_keys_rewrap(old_keys=old_keys, dry_run=dry_run)
            secrets = disk_secrets_reseal(old_keys=old_keys, dry_run=dry_run)
        except CryptoError as exc:
            raise CommandError(str(exc)) from exc
        verb = "would re-wrap" if dry_run else "re-wrapped"
        self.stdout.write(
            f"Master key {master_key_id(settings.CLOUDSTORAGE_MASTER_KEY)}: {verb} {counts['rewrapped']} data key(s), "
            f"{counts['current']} already current; {'would re-seal' if dry_run else 're-sealed'} "
            f"{secrets['resealed']} disk secret(s), {secrets['current']} already current."
        )
        if counts["unknown"] or secrets["unknown"]:
            raise CommandError(
                f"{counts['unknown']} data key(s) and {secrets['unknown']} disk secret(s) are sealed by a master key "
                "that was not given; "
                "pass it with --old-key-file or --old-key-env and run again"
            )
        if not dry_run:
            self._backup_under_the_new_key()

    def _backup_under_the_new_key(self) -> None:
        """Every database backup made so far is sealed under the old key and holds the data keys it
        wrapped: with the old key gone, none of them restores. So a backup is taken now, and the
        old key is declared removable only once it exists."""
        from django.conf import settings

        name = settings.CLOUDSTORAGE_BACKUP_DISK
        if not name:
            self.stdout.write(
                self.style.WARNING(
                    "Done. No backup disk is configured (CLOUDSTORAGE_BACKUP_DISK), so no database backup was made "
                    "under the new key. Any database backup made before now (manage.py backup, or your own dumps) "
                    "restores only with the old key: keep the old key until every such backup has aged out, then "
                    "remove it from CLOUDSTORAGE_PREVIOUS_MASTER_KEYS."
                )
            )
            return
        keep_old = (
            "The data keys are re-wrapped, but keep the old key: every existing database backup needs it. "
            "Run manage.py backup, then remove the old key."
        )
        try:
            key = backup_create_on(disk_name=name, keep=settings.CLOUDSTORAGE_BACKUP_KEEP)
        except BackupError as exc:
            raise CommandError(
                f"The database backup under the new key (CLOUDSTORAGE_BACKUP_DISK) failed: {exc}. {keep_old}"
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Done. Backed the database up under the new key to {key} on disk {name}. The old key can be removed "
                "from CLOUDSTORAGE_PREVIOUS_MASTER_KEYS; the older backups on that disk restore only with it, so "
                "keep a copy of it apart from them until they have aged out."
            )
        )
