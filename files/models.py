"""The namespace: folders and files, their versions, shares, public links, trash and activity.

Bytes never live here: a version points at a :class:`disks.models.Manifest` of the chunk store.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace


class Node(models.Model):
    """A folder or a file in a workspace's tree; the root folder has no parent.

    Trash: deleting sets ``deleted_at`` (and the original parent and path) on the subtree's root and
    points ``trashed_in`` of every node of the subtree (the root included) at that root, so live
    queries filter on one indexed column and restore clears it in one UPDATE.
    """

    class Kind(models.TextChoices):
        FOLDER = "folder"
        FILE = "file"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="nodes")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    name = models.CharField(max_length=255, blank=True, help_text="As given (NFC), case preserved.")
    # Unicode NFC + casefold: two live siblings may not differ only by case, as on Dropbox.
    name_key = models.CharField(max_length=255, blank=True, db_index=True)
    # Denormalised from the current version so a listing needs no join.
    size = models.BigIntegerField(default=0)
    mime_type = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Number of the current version (files).")
    current_version = models.ForeignKey(
        "FileVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True, max_length=10_000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)
    # Trash
    # DO_NOTHING: a trash entry is only ever deleted together with its whole subtree (the purge).
    # SET_NULL would first make the doomed rows "live" again, clashing with a re-created sibling.
    trashed_in = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="trash_members"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    original_path = models.TextField(blank=True, help_text="Path of the parent folder when deleted.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(parent__isnull=True), name="one_root_per_workspace"
            ),
            models.UniqueConstraint(
                fields=["parent", "name_key"],
                condition=Q(trashed_in__isnull=True),
                name="node_name_unique_among_live_siblings",
            ),
            models.CheckConstraint(condition=Q(parent__isnull=False) | Q(kind="folder"), name="node_root_is_folder"),
            models.CheckConstraint(condition=Q(size__gte=0), name="node_size_not_negative"),
        ]
        indexes = [
            models.Index(fields=["parent", "trashed_in", "name_key"], name="node_listing_by_name"),
            models.Index(fields=["parent", "trashed_in", "modified_at"], name="node_listing_by_modified"),
            models.Index(fields=["parent", "trashed_in", "size"], name="node_listing_by_size"),
            models.Index(fields=["workspace", "deleted_at"], name="node_trash"),
        ]

    def __str__(self) -> str:
        return self.name or "/"

    @property
    def is_folder(self) -> bool:
        return self.kind == self.Kind.FOLDER

    @property
    def is_file(self) -> bool:
        return self.kind == self.Kind.FILE

    @property
    def is_trashed(self) -> bool:
        return self.trashed_in_id is not None


class FileVersion(models.Model):
    """One immutable content of a file; the numbers of a file's versions only ever grow."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    manifest = models.ForeignKey("disks.Manifest", on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    mime_type = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    pinned = models.BooleanField(default=False, help_text="Never removed by the version policy.")
    restored_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["node", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["node", "number"], name="file_version_number_unique"),
            models.CheckConstraint(condition=Q(size__gte=0), name="file_version_size_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.node} v{self.number}"


class Tag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "name"], name="tag_unique_per_node")]
        indexes = [models.Index(fields=["workspace", "name"], name="tag_search")]

    def __str__(self) -> str:
        return self.name


class FilesPolicy(models.Model):
    """Per-workspace rules for versions and public links (defaults from settings when absent)."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="files_policy")
    keep_versions = models.PositiveIntegerField(default=50, help_text="Keep the last N versions of a file.")
    keep_days = models.PositiveIntegerField(null=True, blank=True, help_text="Also drop versions older than this.")
    link_default_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    link_max_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    link_password_required = models.BooleanField(default=False)
    link_default_max_downloads = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "files policies"
        constraints = [models.CheckConstraint(condition=Q(keep_versions__gte=1), name="policy_keep_at_least_one")]

    def __str__(self) -> str:
        return f"policy of {self.workspace}"


class Share(models.Model):
    """A node shared with a user of (usually) another workspace; covers the node's subtree."""

    class Permission(models.TextChoices):
        VIEW = "view"
        EDIT = "edit"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="shares")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares_received")
    permission = models.CharField(max_length=4, choices=Permission.choices, default=Permission.VIEW)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="shares_made"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "user"], name="one_share_per_user_and_node")]
        indexes = [models.Index(fields=["user", "workspace"], name="share_by_user")]

    def __str__(self) -> str:
        return f"{self.node} → {self.user} ({self.permission})"


class PublicLink(models.Model):
    """An unguessable link to a node: view (download) or upload-only (a file request)."""

    class Permission(models.TextChoices):
        VIEW = "view"
        UPLOAD = "upload"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="links")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="links")
    token = models.CharField(max_length=64, unique=True)
    permission = models.CharField(max_length=6, choices=Permission.choices, default=Permission.VIEW)
    password_hash = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_accessed_at = models.DateTimeField(null=True, blank=True)
    # Files received through an upload link since uploads_window_start (files.links.link_upload_reserve).
    uploads_window_start = models.DateTimeField(null=True, blank=True)
    uploads_in_window = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "revoked_at"], name="link_inventory")]

    def __str__(self) -> str:
        return f"link to {self.node}"


class Activity(models.Model):
    """Who did what to which node, when; shown to a workspace's owners and admins."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=40)
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    path = models.TextField(blank=True, help_text="The node's path at the time.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.verb} {self.path}"


class Upload(models.Model):
    """A resumable (tus) upload in progress: its bytes go into a pending manifest as they arrive;
    when the last byte is in, the content becomes a file (or a new version) in ``parent``.

    The quota for ``length`` is reserved when the upload is created (``reserved_bytes``), so the
    upload can never fail for lack of space half-way; termination and expiry give it back.
    """

    class State(models.TextChoices):
        ACTIVE = "active"
        COMPLETE = "complete"
        FAILED = "failed"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    # SET_NULL: a folder purged under an upload makes it fail at completion, with its bytes reclaimed.
    parent = models.ForeignKey(Node, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=255)
    relative_path = models.TextField(blank=True, help_text="Folders to create under parent (a/b/name).")
    length = models.BigIntegerField(null=True, blank=True, help_text="Total bytes; null while deferred.")
    offset = models.BigIntegerField(default=0, help_text="Bytes received and committed.")
    reserved_bytes = models.BigIntegerField(default=0, help_text="Quota held for this upload.")
    manifest = models.ForeignKey("disks.Manifest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    store_state = models.JSONField(default=dict, blank=True, help_text="The pending manifest's resumable state.")
    head = models.BinaryField(default=b"", blank=True, help_text="First bytes, for the MIME type.")
    metadata = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    error = models.CharField(max_length=300, blank=True)
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A lease, not a DB lock: one request at a time writes an upload, without a long transaction.
    locked_until = models.DateTimeField(null=True, blank=True)
    lock_token = models.UUIDField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(offset__gte=0), name="upload_offset_not_negative"),
            models.CheckConstraint(
                condition=Q(length__isnull=True) | Q(offset__lte=models.F("length")), name="upload_offset_within_length"
            ),
            models.CheckConstraint(condition=Q(reserved_bytes__gte=0), name="upload_reserved_not_negative"),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="upload_expiry")]

    def __str__(self) -> str:
        return f"upload {self.filename} ({self.offset}/{self.length})"


class QuotaHold(models.Model):
    """Quota reserved by an upload in flight, also counted in ``Workspace.used_bytes``.

    Kept as a row so that a web process killed mid-upload leaks nothing: an upload touches its hold
    as bytes arrive, and a beat job gives back the bytes of holds nobody has touched for a while.
    """

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    touched_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(bytes__gte=0), name="quota_hold_bytes_not_negative")]

    def __str__(self) -> str:
        return f"{self.bytes} bytes held in {self.workspace_id}"


class Change(models.Model):
    """One entry of a workspace's change feed (files/changes.py): what a sync client must replay.

    ``id`` is the feed's position: written under the workspace's row lock in the transaction of the
    change itself, so within a workspace ids are in commit order and a cursor never skips one.
    ``node_id`` is no foreign key: a purged node's entry outlives it.
    """

    class Kind(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        MOVE = "move"
        RENAME = "rename"
        METADATA = "metadata"  # tags or description
        TRASH = "trash"
        RESTORE = "restore"
        PURGE = "purge"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    node_id = models.UUIDField()
    node_type = models.CharField(max_length=6, choices=Node.Kind.choices)
    parent_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    path = models.TextField(blank=True, help_text="The node's path after the change (before it, for trash/purge).")
    from_path = models.TextField(blank=True, help_text="Where a moved or renamed node was.")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"], name="change_feed_position")]

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


class ChangeFeedFloor(models.Model):
    """How far a workspace's feed has been pruned: a cursor below ``pruned_through`` is too old (410)."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+")
    pruned_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"changes of {self.workspace_id} pruned through {self.pruned_through}"


class DavEntry(models.Model):
    """WebDAV's lock and dead-property tables (files/dav/storage.py), shared by every web process.

    Keys are WsgiDAV's reference URLs, which files/dav/provider.py makes ``/<workspace id>/path``,
    so one tenant's locks and properties never meet another's."""

    table = models.CharField(max_length=8)
    key = models.CharField(max_length=2048)
    value = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "key"], name="dav_entry_unique_key")]

    def __str__(self) -> str:
        return f"{self.table} {self.key}"


class Thumbnail(models.Model):
    """A small JPEG of an image's or a PDF's first page, made by a worker from one version.

    Derived data: stored through the chunk store like any content, but counted in no quota, and
    released with its version (files.thumbnails drops the manifest when the row goes)."""

    version = models.OneToOneField(FileVersion, on_delete=models.CASCADE, related_name="thumbnail")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    manifest = models.OneToOneField("disks.Manifest", on_delete=models.PROTECT, related_name="+")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"thumbnail of {self.version}"


class Star(models.Model):
    """A person's bookmark on a file or folder, for the dashboard's Starred view."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "node"], name="star_once_per_user_and_node")]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.node}"


class Vault(models.Model):
    """An end-to-end encrypted folder (docs/vault-format.md): what clients need to unlock it.

    The server keeps only the KDF parameters, the vault key wrapped by the passphrase's key and a
    verifier; the passphrase and every key stay with the clients.
    """

    node = models.OneToOneField(Node, primary_key=True, on_delete=models.CASCADE, related_name="vault")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    format = models.PositiveSmallIntegerField(default=1)
    kdf = models.JSONField(help_text='{"name": "PBKDF2-SHA-256", "iterations": n, "salt": b64}')
    wrapped_key = models.CharField(max_length=200, help_text="b64 of AES-KW(passphrase key, vault key).")
    verifier = models.CharField(max_length=200, help_text="b64 of HMAC-SHA-256(vault key, label).")
    created_at = models.DateTimeField(default=timezone.now)
    key_changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"vault {self.node}"
