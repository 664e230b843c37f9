"""The chunk store's public interface: the only module files/ imports from disks (with Manifest).

A stream goes in, a saved :class:`Manifest` comes out; a manifest opens as a verified plaintext
stream, any byte range of it. Nothing outside disks/ ever sees a chunk, a key or a disk path.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Count, Q

from disks.errors import ChunkLostError, ManifestGone, SizeLimitExceeded, StorageFullError, StoreError
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE, replicas_wanted
from disks.reading import manifest_open
from disks.writing import READ_BLOCK, ManifestWriter, manifest_release, manifest_write, manifest_writer, stream_blocks

logger = logging.getLogger(__name__)

__all__ = [
    "ChunkLostError",
    "Manifest",
    "ManifestGone",
    "ManifestWriter",
    "READ_BLOCK",
    "SizeLimitExceeded",
    "StorageFullError",
    "StoreError",
    "manifest_check",
    "manifest_clone",
    "manifest_open",
    "manifest_release",
    "manifest_write",
    "manifest_writer",
    "stream_blocks",
]


def _copy_counts(manifest: Manifest):
    """(good primary copies, good copies of any role) of each chunk of the manifest."""
    good = Q(replicas__state=Replica.State.OK, replicas__disk__status__in=READABLE)
    return (
        Chunk.objects.filter(references__manifest=manifest)
        .annotate(
            primary=Count("replicas", filter=good & Q(replicas__disk__role=Disk.Role.PRIMARY)),
            good=Count("replicas", filter=good),
        )
        .values_list("primary", "good")
    )


def manifest_check(*, manifest: Manifest) -> str:
    """ "ok" when every chunk has all its copies, "degraded" when some have fewer (a backup-tier
    copy does not count toward them), "lost" when a chunk has none at all. From the recorded state
    of the copies (scrub and reads keep it current)."""
    wanted = replicas_wanted()
    status = "ok"
    for primary, good in set(_copy_counts(manifest)):
        if good == 0:
            return "lost"
        if primary < wanted:
            status = "degraded"
    return status


def manifest_clone(*, manifest: Manifest) -> Manifest:
    """A new ready manifest with the same content, sharing the chunks (no bytes copied).

    ManifestGone when the source was released meanwhile: a caller holding it from an earlier read
    (a version restore, a copy) races the version policy or a version delete, and cloning a
    manifest whose entries are gone would make an acknowledged file of no bytes. The source is
    locked while its entries are copied, so a release either went first or waits for the clone."""
    with transaction.atomic():
        if not Manifest.objects.select_for_update().filter(pk=manifest.pk, state=Manifest.State.READY).exists():
            raise ManifestGone(f"manifest {manifest.pk} was released")
        clone = Manifest.objects.create(
            workspace_id=manifest.workspace_id,
            state=Manifest.State.READY,
            size=manifest.size,
            sha256=manifest.sha256,
        )
        entries = (
            ManifestChunk.objects.filter(manifest=manifest).order_by("seq").values_list("seq", "offset", "chunk_id")
        )
        ManifestChunk.objects.bulk_create(
            [
                ManifestChunk(manifest=clone, seq=seq, offset=offset, chunk_id=chunk_id)
                for seq, offset, chunk_id in entries
            ],
            batch_size=1000,
        )
    return clone
