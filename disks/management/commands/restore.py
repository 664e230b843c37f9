"""Bring the database back from a backup (see disks/metadata_backup.py).

The disk is given by its location, not its name: the database that knew the disk is the thing being
restored. S3 keys come from the environment (S3_ACCESS_KEY, S3_SECRET_KEY).
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from disks.backends import BackendError, LocalBackend, backend_for
from disks.gc import disks_reconcile
from disks.metadata_backup import BackupError, backup_list, backup_restore
from disks.models import Disk


class Command(BaseCommand):
    help = "Replace the configured database with a backup from a local disk folder or an S3 bucket."

    def add_arguments(self, parser):
        parser.add_argument("--disk-path", help="The local disk's folder.")
        parser.add_argument("--s3-endpoint", help="The S3 disk's endpoint URL (keys from S3_ACCESS_KEY/S3_SECRET_KEY).")
        parser.add_argument("--s3-bucket")
        parser.add_argument("--s3-prefix", default="")
        parser.add_argument("--s3-region", default="us-east-1")
        parser.add_argument("--key", help="Which backup (backups/db-….csbk); the newest by default.")
        parser.add_argument("--list", action="store_true", help="Only list the backups found.")
        parser.add_argument("--yes", action="store_true", help="Confirm: the current database is replaced.")

    def handle(self, *args, **options):
        backend = self._backend(options)
        try:
            if options["list"]:
                for key in backup_list(backend=backend):
                    self.stdout.write(key)
                return
            if not options["yes"]:
                raise CommandError("Restoring replaces the whole database: add --yes to confirm.")
            key = backup_restore(backend=backend, key=options["key"])
        except (BackupError, BackendError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"restored the database from {key}")
        # Copies moved since the backup (a relocation, a drain, a repair) are on disks the restored
        # rows do not name: record them now, before the service starts and anything sweeps them.
        for name, counts in disks_reconcile().items():
            self.stdout.write(
                f"disk {name}: {counts.get('adopted', 0)} copies recorded that the backup did not know, "
                f"{counts.get('errors', 0)} errors"
            )

    def _backend(self, options):
        if options["disk_path"]:
            return LocalBackend(options["disk_path"])
        if options["s3_endpoint"] and options["s3_bucket"]:
            return backend_for(
                Disk(
                    backend=Disk.Backend.S3,
                    s3_endpoint_url=options["s3_endpoint"],
                    s3_bucket=options["s3_bucket"],
                    s3_prefix=options["s3_prefix"],
                    s3_region=options["s3_region"],
                    s3_access_key=os.environ.get("S3_ACCESS_KEY", ""),
                    s3_secret_key=os.environ.get("S3_SECRET_KEY", ""),
                )
            )
        raise CommandError("Say where the backups are: --disk-path, or --s3-endpoint with --s3-bucket.")
