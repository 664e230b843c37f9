"""`manage.py disk_attach_s3`, which the compose stack's first start runs for its MinIO buckets,
against the local S3 server."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from disks.models import Disk
from tests.disks.conftest import s3_client


def attach(endpoint: str, bucket: str, *extra: str) -> None:
    call_command(
        "disk_attach_s3",
        "--name=minio-1",
        f"--endpoint={endpoint}",
        f"--bucket={bucket}",
        "--capacity-gb=5",
        *extra,
    )


def test_creates_the_bucket_attaches_it_and_a_rerun_changes_nothing(db, s3_server, monkeypatch):
    monkeypatch.setenv("S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_SECRET_KEY", "testing")
    bucket = f"attach-{uuid.uuid4().hex[:12]}"

    attach(s3_server, bucket, "--create-bucket", "--if-missing")
    disk = Disk.objects.get(name="minio-1")
    assert (disk.backend, disk.s3_bucket, disk.capacity_bytes) == (Disk.Backend.S3, bucket, 5 * 1024**3)
    assert disk.s3_secret_key == "testing" and disk.last_check_ok
    assert bucket in [b["Name"] for b in s3_client(s3_server).list_buckets()["Buckets"]]

    attach(s3_server, bucket, "--create-bucket", "--if-missing")
    assert Disk.objects.count() == 1


def test_refuses_without_keys_or_with_a_bucket_that_is_not_there(db, s3_server, monkeypatch):
    monkeypatch.delenv("S3_ACCESS_KEY", raising=False)
    with pytest.raises(CommandError, match="S3_ACCESS_KEY"):
        attach(s3_server, "whatever")
    monkeypatch.setenv("S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_SECRET_KEY", "testing")
    with pytest.raises(CommandError, match="not usable"):
        attach(s3_server, f"missing-{uuid.uuid4().hex[:12]}")
    assert not Disk.objects.exists()


def test_role_backup_attaches_the_bucket_to_the_backup_tier(db, s3_server, monkeypatch, capsys):
    monkeypatch.setenv("S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_SECRET_KEY", "testing")
    attach(s3_server, f"backup-{uuid.uuid4().hex[:12]}", "--create-bucket", "--role=backup")
    assert Disk.objects.get(name="minio-1").role == Disk.Role.BACKUP
    assert "the backup tier" in capsys.readouterr().out
    with pytest.raises(CommandError, match="invalid choice"):
        attach(s3_server, "whatever", "--role=cold")


def test_a_bucket_whose_marker_the_database_does_not_know_is_refused_unless_returning(
    db, s3_server, monkeypatch, capsys
):
    """The bucket was attached, then the database restored from a backup older than that: its marker
    names a disk the database does not know. Without --returning the command refuses, naming the
    disk id and the option (before: attached silently as that disk, as it would another
    installation's bucket); with it the bucket is attached under that id."""
    monkeypatch.setenv("S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_SECRET_KEY", "testing")
    bucket = f"returning-{uuid.uuid4().hex[:12]}"
    attach(s3_server, bucket, "--create-bucket")
    lost_id = Disk.objects.get(name="minio-1").pk
    Disk.objects.all().delete()  # the restored database never knew it

    with pytest.raises(CommandError, match=f"{lost_id}.*does not know.*--returning"):
        attach(s3_server, bucket)
    assert not Disk.objects.exists()

    attach(s3_server, bucket, "--returning")
    assert Disk.objects.get(name="minio-1").pk == lost_id
    assert f"as the returning disk {lost_id}" in capsys.readouterr().out
