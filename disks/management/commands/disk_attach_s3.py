"""Attach an S3-compatible bucket as a disk from the command line (the compose stack's first start).

The keys come from the environment (``S3_ACCESS_KEY``, ``S3_SECRET_KEY``), never from the command
line, where every user of the host could read them. ``--if-missing`` makes a rerun harmless. A bucket holding the marker of a disk this database does
not know is refused unless ``--returning`` says it is one of ours, attached after the backup the
database was restored from (see disks/identity.py).
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from disks.locations import s3_endpoint_check
from disks.models import Disk
from disks.services import DiskProbeError, disk_attach

GB = 1024**3


class Command(BaseCommand):
    help = "Attach an S3-compatible bucket as a disk (probed first); keys from S3_ACCESS_KEY / S3_SECRET_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--endpoint", required=True, help="e.g. http://minio:9000")
        parser.add_argument("--bucket", required=True)
        parser.add_argument("--prefix", default="chunks")
        parser.add_argument("--region", default="us-east-1")
        parser.add_argument("--category", default="A")
        parser.add_argument(
            "--role",
            choices=[role.value for role in Disk.Role],
            default=Disk.Role.PRIMARY.value,
            help="backup: the bucket joins the backup tier (one more copy of every chunk; never placed on).",
        )
        parser.add_argument("--capacity-gb", type=int, required=True)
        parser.add_argument("--create-bucket", action="store_true", help="Create the bucket when it does not exist.")
        parser.add_argument("--if-missing", action="store_true", help="Do nothing when a disk of this name exists.")
        parser.add_argument(
            "--returning",
            action="store_true",
            help="The bucket is one of this installation's disks, attached after the backup the database was "
            "restored from: attach it under the disk id its marker names and record the copies on it. Without "
            "it, a marker of a disk unknown here is refused.",
        )

    def handle(self, *args, **options):
        if options["if_missing"] and Disk.objects.filter(name=options["name"]).exists():
            self.stdout.write(f"disk {options['name']} is already attached")
            return
        access_key, secret_key = os.environ.get("S3_ACCESS_KEY", ""), os.environ.get("S3_SECRET_KEY", "")
        if not access_key or not secret_key:
            raise CommandError("Set S3_ACCESS_KEY and S3_SECRET_KEY in the environment.")
        if error := s3_endpoint_check(options["endpoint"]):
            raise CommandError(error)
        if options["create_bucket"]:
            self._bucket_ensure(options, access_key, secret_key)
        disk = Disk(
            name=options["name"],
            backend=Disk.Backend.S3,
            s3_endpoint_url=options["endpoint"],
            s3_bucket=options["bucket"],
            s3_prefix=options["prefix"],
            s3_region=options["region"],
            s3_access_key=access_key,
            s3_secret_key=secret_key,
            category=options["category"],
            role=options["role"],
            capacity_bytes=options["capacity_gb"] * GB,
        )
        new_id = disk.pk
        try:
            disk_attach(disk=disk, returning=options["returning"])
        except DiskProbeError as error:
            raise CommandError(str(error)) from error
        where = "the backup tier" if disk.is_backup else f"category {disk.category}"
        self.stdout.write(f"attached disk {disk.name} (bucket {disk.s3_bucket}, {where})")
        if disk.pk != new_id:
            self.stdout.write(f"as the returning disk {disk.pk}: the copies on it are being recorded")

    def _bucket_ensure(self, options, access_key: str, secret_key: str) -> None:
        import boto3
        from botocore.exceptions import ClientError

        client = boto3.client(
            "s3",
            endpoint_url=options["endpoint"],
            region_name=options["region"],
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        try:
            client.head_bucket(Bucket=options["bucket"])
        except ClientError:
            client.create_bucket(Bucket=options["bucket"])
