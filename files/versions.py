"""Versions of a file: stored content committed as a file or its next version, and the version policy.

The file or its new version becomes visible in one transaction only after every chunk of the
content has its write quorum, so a crash at any point leaves no visible partial file and no leaked
quota. Also restore, pin, delete and the thinning of old versions by the workspace's policy.
Imports files.activity, files.folders and files.content; files.uploads builds on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.locks import workspace_lock
from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.store import ManifestGone, manifest_clone, manifest_release
from files.activity import activity_record, author_of, node_path
from files.changes import change_record
from files.content import StoredContent, mime_type_guess
from files.folders import child_create, folder_lock_live, folder_writable_check, name_conflict
from files.models import Change, FilesPolicy, FileVersion, Node
from files.names import name_clean, name_key
from files.preconditions import Precondition, precondition_check
from files.quota import Reservation, quota_release, writable_check
from files.vault_rules import vault_content_check

logger = logging.getLogger(__name__)


def _next_version(
    *,
    node: Node,
    user,
    content: StoredContent,
    mime_type: str,
    restored_from: int | None = None,
    activity_verb: str | None = None,
):
    """Attach ``content`` to the locked ``node`` as its next version (inside a transaction that
    took the workspace's lock before the node's: accounts.locks), and record the activity entry
    ``activity_verb`` if given (in the same commit: one fewer)."""
    number = node.version + 1
    version = FileVersion.objects.create(
        workspace_id=node.workspace_id,
        node=node,
        number=number,
        manifest=content.manifest,
        size=content.manifest.size,
        sha256=content.manifest.sha256,
        mime_type=mime_type,
        created_by=author_of(user),
        restored_from=restored_from,
    )
    node.version = number
    node.current_version = version
    node.size = version.size
    node.sha256 = version.sha256
    node.mime_type = mime_type
    node.modified_at = timezone.now()
    node.save(update_fields=["version", "current_version", "size", "sha256", "mime_type", "modified_at"])
    content.reservation.settle(version.size)
    # Kept on the version for the caller's activity entry and response: one path query, not two.
    version.node_path = node_path(node=node)
    change_record(
        node=node, kind=Change.Kind.CREATE if number == 1 else Change.Kind.UPDATE, path=version.node_path, locked=True
    )
    if activity_verb is not None:
        activity_record(
            workspace_id=node.workspace_id, actor=user, verb=activity_verb, node=node, path=version.node_path
        )
    return version


def content_commit(
    *,
    user,
    parent: Node,
    name: str,
    content: StoredContent,
    replace: bool = True,
    precondition: Precondition | None = None,
    activity_verb: str | None = None,
    guard: Callable[[], None] | None = None,
) -> FileVersion:
    """Make stored content visible as ``parent/name``: a new file, or a new version of the file of
    that name (``replace``); refused (and the content discarded) when a folder has the name or the
    ``precondition`` fails on what is there now (checked under the row lock). ``activity_verb``:
    the activity entry to record in the same transaction. ``guard``: called in that transaction
    once the folder is locked; whatever it raises refuses the commit (a right read before a long
    body is read again where the file becomes visible)."""
    try:
        name = name_clean(name)
        folder_writable_check(parent)
        vault_content_check(place=parent, size=content.manifest.size, head=content.head)
        for _ in range(3):
            try:
                with transaction.atomic():
                    workspace_lock(parent.workspace_id)  # first, before the folder (accounts.locks)
                    folder_lock_live(parent)
                    if guard is not None:
                        guard()
                    existing = (
                        Node.objects.select_for_update()
                        .filter(parent=parent, name_key=name_key(name), trashed_in__isnull=True)
                        .first()
                    )
                    precondition_check(precondition, existing)
                    if existing is not None:
                        if existing.is_folder or not replace:
                            raise name_conflict(name, existing=existing)
                        node = existing
                    else:
                        node = child_create(user=user, parent=parent, name=name, kind=Node.Kind.FILE)
                    version = _next_version(
                        node=node,
                        user=user,
                        content=content,
                        mime_type=mime_type_guess(name=name, head=content.head),
                        activity_verb=activity_verb,
                    )
                break
            except IntegrityError:
                # A concurrent upload created the same name first: become a version of it.
                continue
        else:
            raise name_conflict(name)
    except BaseException:
        content.discard()
        raise
    if version.number > 1:
        # A first version has nothing older to thin.
        transaction.on_commit(lambda: _versions_thin_later(version.node_id))
    return version


def version_commit(
    *,
    user,
    node: Node,
    content: StoredContent,
    restored_from: int | None = None,
    precondition: Precondition | None = None,
    activity_verb: str | None = None,
) -> FileVersion:
    """Make stored content the next version of the file ``node`` (if ``precondition`` still holds);
    ``activity_verb``: the activity entry to record in the same transaction."""
    try:
        if restored_from is None:  # a restore brings back the file's own content
            vault_content_check(place=node, size=content.manifest.size, head=content.head)
        with transaction.atomic():
            workspace_lock(node.workspace_id)  # first, before the file (accounts.locks)
            locked = Node.objects.select_for_update().get(pk=node.pk)
            if not locked.is_file or locked.trashed_in_id is not None:
                raise ServiceError(
                    code="not_a_file", message="Only a live file can get a new version.", status_code=409
                )
            precondition_check(precondition, locked)
            version = _next_version(
                node=locked,
                user=user,
                content=content,
                mime_type=mime_type_guess(name=locked.name, head=content.head)
                if content.head or not restored_from
                else locked.mime_type,
                restored_from=restored_from,
                activity_verb=activity_verb,
            )
    except BaseException:
        content.discard()
        raise
    transaction.on_commit(lambda: _versions_thin_later(node.pk))
    return version


def policy_for(*, workspace_id) -> FilesPolicy:
    policy = FilesPolicy.objects.filter(workspace_id=workspace_id).first()
    return policy or FilesPolicy(workspace_id=workspace_id)


def version_delete(*, version: FileVersion, unless_pinned: bool = False) -> bool:
    """Drop an old version: its manifest is released and its bytes leave the quota. With
    ``unless_pinned`` (the version policy), a version pinned meanwhile is kept: the flag is read
    again under the row's lock, which version_pin takes too. False when nothing was dropped."""
    with transaction.atomic():
        # The workspace first (accounts.locks): a purge of the file's trash entry holds it while it
        # deletes this row, and the quota's UPDATE below would take it after the row otherwise.
        workspace_lock(version.workspace_id)
        locked = (
            FileVersion.objects.select_for_update(of=("self",))
            .filter(pk=version.pk)
            .exclude(node__current_version=version.pk)
        )
        if unless_pinned:
            locked = locked.filter(pinned=False)
        if not locked.exists():
            return False
        FileVersion.objects.filter(pk=version.pk).delete()
        quota_release(workspace=version.workspace, nbytes=version.size)
        manifest_release(manifest=version.manifest)
    return True


def versions_thin(*, node_id) -> int:
    """Apply the workspace's version policy to one file: keep the last N versions (and, with an age
    limit, none older than it), never the current one and never a pinned one. Returns how many went."""
    node = Node.objects.filter(pk=node_id).select_related("workspace").first()
    if node is None or not node.is_file:
        return 0
    policy = policy_for(workspace_id=node.workspace_id)
    versions = list(FileVersion.objects.filter(node=node).select_related("workspace", "manifest").order_by("-number"))
    cutoff = timezone.now() - timezone.timedelta(days=policy.keep_days) if policy.keep_days else None
    removed = 0
    for index, version in enumerate(versions):
        if version.pk == node.current_version_id or version.pinned:
            continue
        if index >= policy.keep_versions or (cutoff is not None and version.created_at < cutoff):
            # The pinned flags above may be stale by now: version_delete reads it again.
            removed += version_delete(version=version, unless_pinned=True)
    return removed


def _versions_thin_later(node_id) -> None:
    try:
        versions_thin(node_id=node_id)
    except Exception:
        # Thinning only frees space; the nightly job (versions_thin_due) retries what failed here.
        logger.exception("could not thin the versions of node %s", node_id)


def _files_due(*, limit: int) -> list:
    """Up to ``limit`` files the version policy would drop a version of now. Each one found has a
    version that goes, so a file the policy cannot thin further is not found again (no run fills
    its batch with files it can do nothing for)."""
    from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    found: list = []
    # Past the age limit: an unpinned version, not the current one, older than the workspace's
    # keep_days (only workspaces that set one, so one query each).
    for workspace_id, keep_days in FilesPolicy.objects.filter(keep_days__isnull=False).values_list(
        "workspace_id", "keep_days"
    ):
        if len(found) >= limit:
            return found
        cutoff = timezone.now() - timezone.timedelta(days=keep_days)
        found += list(
            FileVersion.objects.filter(workspace_id=workspace_id, pinned=False, created_at__lt=cutoff)
            .exclude(node__current_version=F("pk"))
            .order_by("node_id")  # not the model's ordering: DISTINCT would add its columns
            .values_list("node_id", flat=True)
            .distinct()[: limit - len(found)]
        )
    # Past the count: more unpinned versions than the policy keeps (the current one is the newest,
    # so the oldest unpinned one goes). What a failed thinning after an upload left, retried.
    keep = Coalesce(
        Subquery(FilesPolicy.objects.filter(workspace_id=OuterRef("workspace_id")).values("keep_versions")[:1]),
        Value(FilesPolicy._meta.get_field("keep_versions").default),
        output_field=IntegerField(),
    )
    if len(found) < limit:
        seen = set(found)
        found += [
            node_id
            # Grouped by the workspace too (one per node) so that the policy's subquery, which
            # reads it, is grouped however the default is bound (a server-side bound parameter
            # makes the HAVING's copy of it a different expression from the SELECT's).
            for node_id in FileVersion.objects.filter(pinned=False)
            .values("node_id", "workspace_id")
            .annotate(unpinned=Count("id"), keep=keep)
            .filter(unpinned__gt=F("keep"))
            .order_by("node_id")
            .values_list("node_id", flat=True)[: limit - len(found)]
            if node_id not in seen
        ]
    return found


def versions_thin_due(*, limit: int | None = None) -> dict[str, int]:
    """The nightly job: apply the version policy to files nothing else thins, up to ``limit``
    (CLOUDSTORAGE_VERSIONS_THIN_BATCH) files per run. The policy is otherwise applied only when a
    file gets a new version, is unpinned or the policy is saved: an age limit reached by time alone,
    and a thinning that failed, are applied here. One file's error is logged and skipped."""
    from django.conf import settings

    limit = limit or settings.CLOUDSTORAGE_VERSIONS_THIN_BATCH
    files = _files_due(limit=limit)
    removed = failed = 0
    for node_id in files:
        try:
            removed += versions_thin(node_id=node_id)
        except Exception:
            failed += 1
            logger.exception("could not thin the versions of node %s", node_id)
    if len(files) >= limit:
        logger.warning("version policy: a full batch of %s files thinned; the rest waits for the next run", limit)
    return {"files": len(files), "removed": removed, "failed": failed}


def version_restore(*, user, node: Node, number: int) -> FileVersion:
    """Rollback: a new version with the content of version ``number`` (history is never rewritten)."""
    old = FileVersion.objects.filter(node=node, number=number).select_related("manifest").first()
    if old is None:
        raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404)
    writable_check(workspace=node.workspace)
    reservation = Reservation(workspace=node.workspace, expected=old.size)
    try:
        manifest = manifest_clone(manifest=old.manifest)
    except ManifestGone:
        reservation.cancel()  # dropped since it was read (the version policy, a delete)
        raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404) from None
    except BaseException:
        reservation.cancel()
        raise
    content = StoredContent(manifest=manifest, reservation=reservation, head=b"")
    version = version_commit(user=user, node=node, content=content, restored_from=number)
    FileVersion.objects.filter(pk=version.pk).update(mime_type=old.mime_type)
    Node.objects.filter(pk=node.pk, current_version=version).update(mime_type=old.mime_type)
    version.mime_type = old.mime_type
    return version


def version_pin(*, user, node: Node, number: int, pinned: bool) -> FileVersion:
    """Pin a version (the version policy never removes it) or unpin it. Under the version row's
    lock, which the policy's version_delete takes too: a pin answered 200 is never thinned away."""
    with transaction.atomic():
        version = FileVersion.objects.select_for_update().filter(node=node, number=number).first()
        if version is None:
            raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404)
        if version.pinned != pinned:
            version.pinned = pinned
            version.save(update_fields=["pinned"])
            activity_record(
                workspace_id=node.workspace_id,
                actor=user,
                verb="pin" if pinned else "unpin",
                node=node,
                details={"version": number},
            )
            if not pinned:
                transaction.on_commit(lambda: _versions_thin_later(node.pk))
    return version


def version_policy_set(*, workspace: Workspace, keep_versions: int, keep_days: int | None) -> FilesPolicy:
    """Set a workspace's version policy and apply it to its files with more versions than it keeps."""
    if not isinstance(keep_versions, int) or keep_versions < 1 or keep_versions > 10_000:
        raise ServiceError(code="invalid_policy", message="keep_versions is 1 to 10,000.", status_code=400)
    if keep_days is not None and (not isinstance(keep_days, int) or keep_days < 1 or keep_days > 36_500):
        raise ServiceError(code="invalid_policy", message="keep_days is empty or 1 to 36,500.", status_code=400)
    policy, _ = FilesPolicy.objects.get_or_create(workspace=workspace)
    policy.keep_versions = keep_versions
    policy.keep_days = keep_days
    policy.save(update_fields=["keep_versions", "keep_days"])
    transaction.on_commit(lambda: versions_thin_workspace(workspace_id=workspace.pk))
    return policy


def versions_thin_workspace(*, workspace_id) -> int:
    """Apply the version policy to every file of a workspace that has more than one version."""
    from django.db.models import Count

    node_ids = (
        FileVersion.objects.filter(workspace_id=workspace_id)
        .values("node_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("node_id", flat=True)
    )
    return sum(versions_thin(node_id=node_id) for node_id in list(node_ids))
