from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace


class Node(models.Model):
    """A folder or a file in a workspace's tree; the root folder has no parent."""

    class Kind(models.TextChoices):
        FOLDER = "folder"
        FILE = "file"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="nodes")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    name = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(parent__isnull=True), name="one_root_per_workspace"
            ),
            models.UniqueConstraint(fields=["parent", "name"], name="node_name_unique_in_folder"),
            models.CheckConstraint(condition=Q(parent__isnull=False) | Q(kind="folder"), name="node_root_is_folder"),
        ]

    def __str__(self) -> str:
        return self.name or "/"

    @property
    def is_folder(self) -> bool:
        return self.kind == self.Kind.FOLDER
