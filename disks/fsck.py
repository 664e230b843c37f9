"""Checking (and repairing) every stored content, file by file: the engine of ``manage.py fsck``.

A file's status is the worst of its chunks': "ok" (every chunk has its full number of verified
copies on in-service primary disks), "degraded" (some chunk has fewer, but at least one good copy,
maybe the backup tier's, is left),
"lost" (some chunk has no good copy, or the manifest's chunks do not cover its size). Repair only
ever adds copies made from a verified good copy; it never edits or drops a manifest, so a file that
cannot be repaired stays exactly as it was (and reads fail loudly) until its bytes come back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.utils import timezone

from disks.backends import BackendError, ObjectMissing, backend_for
from disks.chunks import chunk_verify_blob
from disks.crypto import CryptoError, WorkspaceKeys, workspace_keys
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE, replicas_wanted
from disks.repair import chunk_repair

logger = logging.getLogger(__name__)

OK, DEGRADED, LOST = "ok", "degraded", "lost"
_RANK = {OK: 0, DEGRADED: 1, LOST: 2}
IN_SERVICE = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)
LABEL_BATCH = 500


@dataclass
class FileReport:
    manifest_id: object
    workspace_id: object
    label: str
    size: int
    chunks: int
    status: str = OK
    damaged_chunks: int = 0  # chunks short of copies (or without any) before any repair
    repaired_chunks: int = 0
    problems: list[str] = field(default_factory=list)


def _replica_verify(replica: Replica, chunk: Chunk, keys: WorkspaceKeys) -> bool | None:
    """True when the copy is exactly the chunk, False when it is missing or corrupt, None when the
    disk could not be asked. Copies already marked bad are looked at again: an operator may have put
    a lost disk's objects back, and a copy that verifies again is good again."""
    try:
        blob = backend_for(replica.disk).get(chunk.key)
        chunk_verify_blob(chunk=chunk, blob=blob, keys=keys)
    except ObjectMissing:
        good, error = False, "missing"
    except CryptoError as exc:
        good, error = False, f"corrupt: {exc}"
    except BackendError as exc:
        logger.warning("fsck: disk %s could not be read: %s", replica.disk.name, exc)
        return None
    else:
        good, error = True, ""
    now = timezone.now()
    if good:
        Replica.objects.filter(pk=replica.pk).update(state=Replica.State.OK, error="", verified_at=now)
    elif replica.state == Replica.State.OK:
        Replica.objects.filter(pk=replica.pk).update(state=Replica.State.BAD, error=error[:300])
    return good


def _chunk_status(chunk: Chunk, *, verify: bool, keys_for) -> str:
    wanted = replicas_wanted()
    replicas = list(
        Replica.objects.filter(chunk=chunk, disk__status__in=READABLE)
        .exclude(state=Replica.State.NEW)
        .select_related("disk")
    )
    if verify:
        keys = keys_for(chunk.workspace_id)
        good = [r for r in replicas if _replica_verify(r, chunk, keys)]
    else:
        good = [r for r in replicas if r.state == Replica.State.OK]
    if not good:
        return LOST
    in_service = sum(1 for r in good if r.disk.status in IN_SERVICE and r.disk.role == Disk.Role.PRIMARY)
    return OK if in_service >= wanted else DEGRADED


def _coverage_problem(manifest: Manifest) -> str | None:
    """The chunks must tile [0, size) exactly, in order; anything else would serve wrong bytes."""
    expected = 0
    for offset, size in (
        ManifestChunk.objects.filter(manifest=manifest).order_by("seq").values_list("offset", "chunk__size")
    ):
        if offset != expected:
            return f"chunk at offset {offset}, expected {expected}"
        expected += size
    if expected != manifest.size:
        return f"chunks cover {expected} of {manifest.size} bytes"
    return None


def manifests_fsck(
    *,
    workspace=None,
    repair: bool = False,
    verify: bool = True,
    labels_for: Callable[[list], dict] | None = None,
) -> Iterator[FileReport]:
    """Check every complete content (of one workspace, or all), one report per file.

    ``verify`` reads and authenticates every copy (otherwise the recorded states are trusted);
    ``repair`` brings damaged chunks back to their full number of copies from a verified copy.
    A chunk shared by many files is checked (and repaired) once. ``labels_for`` names the contents in
    the report (manifest ids -> text, such as the owning file's path; the files app knows those, this
    layer does not); a content it does not name is called by its manifest id."""
    manifests = Manifest.objects.filter(state=Manifest.State.READY).order_by("workspace_id", "created_at", "pk")
    if workspace is not None:
        manifests = manifests.filter(workspace=workspace)
    keys_cache: dict = {}

    def keys_for(workspace_id):
        if workspace_id not in keys_cache:
            keys_cache[workspace_id] = workspace_keys(workspace_id=workspace_id)
        return keys_cache[workspace_id]

    before: dict = {}  # chunk id -> status found
    after: dict = {}  # chunk id -> status once repaired
    ids = list(manifests.values_list("pk", flat=True))
    for start in range(0, len(ids), LABEL_BATCH):
        found = Manifest.objects.in_bulk(ids[start : start + LABEL_BATCH])
        batch = [found[pk] for pk in ids[start : start + LABEL_BATCH] if pk in found]
        labels = labels_for([m.pk for m in batch]) if labels_for is not None else {}
        for manifest in batch:
            chunks = list(Chunk.objects.filter(references__manifest=manifest).distinct().order_by("pk"))
            report = FileReport(
                manifest_id=manifest.pk,
                workspace_id=manifest.workspace_id,
                label=labels.get(manifest.pk) or f"manifest {manifest.pk}",
                size=manifest.size,
                chunks=len(chunks),
            )
            problem = _coverage_problem(manifest)
            if problem:
                report.problems.append(problem)
                report.status = LOST
            for chunk in chunks:
                if chunk.pk not in before:
                    before[chunk.pk] = _chunk_status(chunk, verify=verify, keys_for=keys_for)
                    after[chunk.pk] = before[chunk.pk]
                    if repair and before[chunk.pk] != OK:
                        chunk_repair(chunk_id=chunk.pk)
                        # The new copies were written from a verified copy: the records can be trusted.
                        after[chunk.pk] = _chunk_status(chunk, verify=False, keys_for=keys_for)
                status = after[chunk.pk]
                if before[chunk.pk] != OK:
                    report.damaged_chunks += 1
                    if status == OK:
                        report.repaired_chunks += 1
                if _RANK[status] > _RANK[report.status]:
                    report.status = status
            if report.status == LOST and not problem:
                report.problems.append("a chunk has no good copy left")
            yield report
