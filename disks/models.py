from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from disks.categories import CATEGORIES
from disks.fields import SealedTextField


class Disk(models.Model):
    """A place chunks are stored: a local folder or an S3-compatible bucket/prefix."""

    class Backend(models.TextChoices):
        LOCAL = "local", "Local folder"
        S3 = "s3", "S3-compatible bucket"
        # Kept in the s3_* columns: bucket, prefix, endpoint (emulators only), service account JSON
        # key as the secret (disks.backends.GCSBackend).
        GCS = "gcs", "Google Cloud Storage bucket"

    class Status(models.TextChoices):
        ACTIVE = "active"
        READ_ONLY = "read_only", "read-only"
        DRAINING = "draining"
        FAILED = "failed"
        # Registered, probed, holding no data: activated when its category fills (disks.standby).
        STANDBY = "standby"

    class Role(models.TextChoices):
        PRIMARY = "primary", "primary: holds the copies placement chooses"
        # The backup tier: one extra copy of every chunk of a finished file, written by a worker
        # after the upload's quorum (disks.repair.chunks_backup). Never chosen by placement, never
        # counted toward a chunk's replicas or a category's capacity; read only when every primary
        # copy is missing or corrupt, and the source that repairs them then.
        BACKUP = "backup", "backup tier: one more copy of every chunk"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=5, choices=Backend.choices, default=Backend.LOCAL)
    path = models.CharField(max_length=500, blank=True, help_text="Local folder (local disks).")
    s3_endpoint_url = models.CharField(max_length=500, blank=True)
    s3_bucket = models.CharField(max_length=255, blank=True)
    s3_prefix = models.CharField(max_length=255, blank=True)
    s3_region = models.CharField(max_length=50, blank=True)
    s3_access_key = models.CharField(max_length=255, blank=True)
    # Sealed under the master key in the database; plaintext only in memory (disks.fields).
    s3_secret_key = SealedTextField(blank=True)
    category = models.CharField(max_length=1, choices=[(c, c) for c in CATEGORIES])
    capacity_bytes = models.BigIntegerField()
    used_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    role = models.CharField(max_length=7, choices=Role.choices, default=Role.PRIMARY)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_error = models.TextField(blank=True)
    # Failed probes since the disk was last steadily healthy (see health.damped_failures).
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The last probe results, newest last ("1" ok, "0" failed): lets a flapping disk be damped.
    probe_history = models.CharField(max_length=32, blank=True)
    # When its identity marker was written (disks.identity); null for a disk attached before markers
    # existed, which gets one on its first probe if its recorded copies are really there.
    marked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["category", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(used_bytes__gte=0), name="disk_used_bytes_not_negative"),
            models.CheckConstraint(condition=models.Q(capacity_bytes__gt=0), name="disk_capacity_positive"),
        ]

    def __str__(self) -> str:
        where = "backup" if self.role == Disk.Role.BACKUP else self.category
        return f"{self.name} ({where}, {self.status})"

    @property
    def free_bytes(self) -> int:
        return max(self.capacity_bytes - self.used_bytes, 0)

    @property
    def is_backup(self) -> bool:
        return self.role == Disk.Role.BACKUP


class Placement(models.Model):
    """The disks a workspace's chunks go to, in order of preference (rank 0 = primary)."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="placements")
    disk = models.ForeignKey(Disk, on_delete=models.PROTECT, related_name="placements")
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["workspace", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "rank"], name="placement_one_disk_per_rank"),
            models.UniqueConstraint(fields=["workspace", "disk"], name="placement_disk_once_per_workspace"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} #{self.rank} on {self.disk_id}"


class DataKey(models.Model):
    """A workspace's AES-256 data key, stored only wrapped by the master key."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="data_key"
    )
    wrapped = models.BinaryField()
    # Which master key wrapped it (a short fingerprint), so rotation knows what is left to rewrap.
    master_key_id = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"data key of {self.workspace_id} ({self.master_key_id})"


class Chunk(models.Model):
    """One stored piece of plaintext of one workspace, addressed by a keyed hash of the plaintext."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="chunks")
    digest = models.CharField(max_length=64, help_text="HMAC-SHA256 of the plaintext under the workspace's key.")
    size = models.PositiveIntegerField(help_text="Plaintext bytes.")
    stored_size = models.PositiveIntegerField(default=0, help_text="Bytes of one encrypted copy.")
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the last reference may have gone; GC waits a grace period after it.
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "digest"], name="chunk_unique_digest_per_workspace"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.digest[:12]} of {self.workspace_id}"

    @property
    def key(self) -> str:
        """The object key, identical on every disk holding a copy; unique per chunk row, so a chunk
        re-created after GC never shares a key with the one being deleted."""
        return f"ws/{self.workspace_id}/{self.id.hex[:2]}/{self.id.hex}"


class Replica(models.Model):
    """One copy of a chunk on one disk."""

    class State(models.TextChoices):
        OK = "ok"
        BAD = "bad", "bad (corrupt or missing)"
        # Recorded (and its bytes reserved) before an upload writes it, so a process killed
        # mid-write leaves a row GC drops with its object; never read, repaired or scrubbed.
        NEW = "new", "being written"

    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="replicas")
    disk = models.ForeignKey(Disk, on_delete=models.PROTECT, related_name="replicas")
    state = models.CharField(max_length=3, choices=State.choices, default=State.OK)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chunk", "disk"], name="replica_one_copy_per_disk"),
        ]
        indexes = [models.Index(fields=["disk", "verified_at"], name="replica_scrub_order")]

    def __str__(self) -> str:
        return f"{self.chunk_id} on {self.disk_id} ({self.state})"


class Manifest(models.Model):
    """The ordered chunks of one immutable content. Pending while an upload is still being written."""

    class State(models.TextChoices):
        PENDING = "pending"
        READY = "ready"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="manifests")
    state = models.CharField(max_length=7, choices=State.choices, default=State.PENDING)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Last write activity while pending; a pending manifest idle past the grace period is a crash orphan.
    touched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gte=0), name="manifest_size_not_negative"),
        ]
        indexes = [models.Index(fields=["state", "touched_at"], name="manifest_pending_age")]

    def __str__(self) -> str:
        return f"manifest {self.id} ({self.size} bytes, {self.state})"


class ManifestChunk(models.Model):
    """Position ``seq`` of a manifest: ``chunk`` covers plaintext bytes [offset, offset + chunk.size)."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="entries")
    seq = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    # PROTECT: a referenced chunk can never be deleted, whatever a GC bug would try.
    chunk = models.ForeignKey(Chunk, on_delete=models.PROTECT, related_name="references")

    class Meta:
        ordering = ["manifest", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["manifest", "seq"], name="manifest_chunk_unique_seq"),
        ]
        indexes = [models.Index(fields=["manifest", "offset"], name="manifest_chunk_offset")]

    def __str__(self) -> str:
        return f"{self.manifest_id}[{self.seq}]"


class PendingTail(models.Model):
    """The bytes of a resumable upload received but not yet cut into a chunk (at most one
    maximum-size chunk), sealed under the workspace's key. In the database rather than on a web
    node's disk, so the next request may land on any node. Named by the offset it ends at: a tail
    written by a request whose state was never committed is never mistaken for the committed one.

    The sealed bytes are split into rows of at most ``PART_BYTES`` (``part`` 0, 1, ...): PostgreSQL's
    client library keeps its send and receive buffers as large as the largest message a connection
    ever carried, so one multi-MiB row per tail left every web thread's connection holding ~2 x 9 MB
    (bytea travels as hex text) for good."""

    PART_BYTES = 256 * 1024

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tails")
    received = models.BigIntegerField()
    # The writer (one request) that staged it: two requests that reach the same offset (one stalled
    # past its lease, one that took the upload over) never replace or delete each other's rows.
    token = models.CharField(max_length=32, null=True, blank=True)
    part = models.PositiveIntegerField(default=0)
    sealed = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["manifest", "received", "token", "part"], name="pending_tail_part_per_writer"
            ),
        ]

    def __str__(self) -> str:
        return f"tail of {self.manifest_id} at {self.received}, part {self.part}"


class PendingDelete(models.Model):
    """An object to remove from a disk, recorded in the same transaction that forgot it, so a crash
    between forgetting and deleting never leaks a file."""

    disk = models.ForeignKey(Disk, on_delete=models.CASCADE, related_name="pending_deletes")
    key = models.CharField(max_length=200)
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"delete {self.key} from {self.disk_id}"


class CapacityAlert(models.Model):
    """When operators were last told that a category is filling up (deleted once it is below the
    threshold again, so the next crossing is announced at once)."""

    category = models.CharField(max_length=1, primary_key=True)
    sent_at = models.DateTimeField()
    percent = models.FloatField()

    def __str__(self) -> str:
        return f"{self.category} at {self.percent:.0f}%"
