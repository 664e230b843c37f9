from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from billing.plans import CATEGORIES


class Disk(models.Model):
    """A place chunks are stored: a local folder or an S3-compatible bucket/prefix."""

    class Backend(models.TextChoices):
        LOCAL = "local", "Local folder"
        S3 = "s3", "S3-compatible bucket"

    class Status(models.TextChoices):
        ACTIVE = "active"
        READ_ONLY = "read_only", "read-only"
        DRAINING = "draining"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=5, choices=Backend.choices, default=Backend.LOCAL)
    path = models.CharField(max_length=500, blank=True, help_text="Local folder (local disks).")
    s3_endpoint_url = models.CharField(max_length=500, blank=True)
    s3_bucket = models.CharField(max_length=255, blank=True)
    s3_prefix = models.CharField(max_length=255, blank=True)
    s3_region = models.CharField(max_length=50, blank=True)
    s3_access_key = models.CharField(max_length=255, blank=True)
    s3_secret_key = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=1, choices=[(c, c) for c in CATEGORIES])
    capacity_bytes = models.BigIntegerField()
    used_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["category", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(used_bytes__gte=0), name="disk_used_bytes_not_negative"),
            models.CheckConstraint(condition=models.Q(capacity_bytes__gt=0), name="disk_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.category}, {self.status})"

    @property
    def free_bytes(self) -> int:
        return max(self.capacity_bytes - self.used_bytes, 0)
