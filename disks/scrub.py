"""Scrub: reading and verifying stored copies, least recently verified first, and repairing the
chunks of the copies found bad in the same pass. Sits above disks.repair."""

from __future__ import annotations

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from disks.chunks import replica_read
from disks.crypto import workspace_keys
from disks.models import Disk, Replica
from disks.placement import READABLE
from disks.repair import chunk_repair


def replicas_scrub(*, disk: Disk | None = None, limit: int | None = None) -> dict[str, int]:
    """Read and verify copies, least recently verified first; bad ones are marked and their chunks
    repaired in the same pass. ``limit`` None means every copy (on ``disk`` if given)."""
    replicas = Replica.objects.filter(state=Replica.State.OK, disk__status__in=READABLE).select_related("disk", "chunk")
    if disk is not None:
        replicas = replicas.filter(disk=disk)
    replicas = replicas.order_by(F("verified_at").asc(nulls_first=True), "pk")
    if limit is not None:
        replicas = replicas[:limit]
    keys_by_workspace: dict = {}
    checked = bad = 0
    to_repair = set()
    for replica in replicas.iterator(chunk_size=500):
        chunk = replica.chunk
        keys = keys_by_workspace.get(chunk.workspace_id)
        if keys is None:
            keys = keys_by_workspace[chunk.workspace_id] = workspace_keys(workspace_id=chunk.workspace_id)
        checked += 1
        if replica_read(replica=replica, chunk=chunk, keys=keys) is None:
            bad += 1
            to_repair.add(chunk.pk)
        else:
            Replica.objects.filter(pk=replica.pk).update(verified_at=timezone.now())
    repaired = 0
    for chunk_id in to_repair:
        if chunk_repair(chunk_id=chunk_id) in ("repaired", "ok"):
            repaired += 1
    return {"checked": checked, "bad": bad, "repaired": repaired}


def scrub_batch_size() -> int:
    """How many copies one scheduled scrub run verifies so every copy is verified once per period."""
    total = Replica.objects.count()
    runs = max(1, settings.CLOUDSTORAGE_SCRUB_PERIOD // max(1, settings.CLOUDSTORAGE_SCRUB_INTERVAL))
    return max(1, -(-total // runs))
