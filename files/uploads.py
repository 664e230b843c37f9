"""Uploads: a stream as a file or a new version, and a batch of stored contents at relative paths.

The entry points of the REST and WebDAV uploads. Each streams through files.content (bounded
memory, quota reserved as bytes arrive) and commits through files.versions, so a crash at any point
leaves no visible partial file and no leaked quota. The top of the upload path: nothing here is
imported by content, versions or folders.
"""

from __future__ import annotations

from cloudstorage.errors import ServiceError
from files.activity import activity_record
from files.content import StoredContent, content_store, contents_hold
from files.folders import child_get, folder_ensure, folder_writable_check, name_conflict
from files.models import FileVersion, Node
from files.names import name_clean, name_key
from files.preconditions import Precondition, precondition_check
from files.versions import content_commit, version_commit


def file_upload(
    *,
    user,
    parent: Node,
    name: str,
    stream,
    size: int | None = None,
    precondition: Precondition | None = None,
    activity_verb: str | None = None,
) -> FileVersion:
    """Upload ``stream`` as ``parent/name``: a new file, or a new version of the file of that name.
    A failing ``precondition`` is refused before the body is read, and again at the commit.
    ``activity_verb``: the activity entry recorded with the commit."""
    name = name_clean(name)
    folder_writable_check(parent)
    existing = child_get(parent=parent, name=name)
    precondition_check(precondition, existing)
    if existing is not None and existing.is_folder:
        raise name_conflict(name, existing=existing)
    content = content_store(workspace=parent.workspace, stream=stream, size=size)
    return content_commit(
        user=user, parent=parent, name=name, content=content, precondition=precondition, activity_verb=activity_verb
    )


def file_upload_version(
    *,
    user,
    node: Node,
    stream,
    size: int | None = None,
    precondition: Precondition | None = None,
    activity_verb: str | None = None,
) -> FileVersion:
    """Upload ``stream`` as a new version of the file ``node`` (if ``precondition`` holds, before and
    after); ``activity_verb``: the activity entry recorded with the commit."""
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="Only a file has versions.", status_code=400)
    precondition_check(precondition, node)
    content = content_store(workspace=node.workspace, stream=stream, size=size)
    return version_commit(user=user, node=node, content=content, precondition=precondition, activity_verb=activity_verb)


# --- Multipart uploads: commit many stored contents to their relative paths -------------------------


def _upload_plan_check(*, parent: Node, targets: list[list[str]]) -> None:
    """Refuse (before anything is committed) a batch whose paths clash with each other or with what
    exists: a folder of the path is a file, or a file's name is a folder."""
    planned: dict[tuple, tuple[str, str]] = {}  # key path -> (kind, name as given)
    for parts in targets:
        keys = tuple(name_key(part) for part in parts)
        for depth in range(1, len(keys) + 1):
            kind = Node.Kind.FILE if depth == len(keys) else Node.Kind.FOLDER
            seen = planned.setdefault(keys[:depth], (kind, parts[depth - 1]))
            if seen[0] != kind:
                raise name_conflict(parts[depth - 1])
    existing: dict[tuple, object] = {(): parent.pk}
    for depth in range(1, max((len(key) for key in planned), default=0) + 1):
        by_parent: dict = {}
        for key in planned:
            if len(key) == depth and key[:-1] in existing:
                by_parent.setdefault(existing[key[:-1]], {})[key[-1]] = key
        for parent_id, keys in by_parent.items():
            rows = Node.objects.filter(parent_id=parent_id, name_key__in=list(keys), trashed_in__isnull=True)
            for pk, key_name, kind in rows.values_list("pk", "name_key", "kind"):
                key = keys[key_name]
                if kind != planned[key][0]:
                    raise name_conflict(planned[key][1], existing=Node(pk=pk))
                if kind == Node.Kind.FOLDER:
                    existing[key] = pk


def uploads_commit(
    *, user, parent: Node, items: list[tuple[list[str], StoredContent]], activity_verb: str | None = None
) -> list[FileVersion]:
    """Make uploaded contents visible at their relative paths under ``parent`` (folders created on the
    way; an existing file of the name gets a new version). Every path is checked first, so a bad batch
    changes nothing. Takes ownership of the contents: each is committed or discarded when this returns.
    ``activity_verb``: one activity entry, on the file (recorded in its commit) or, for several
    files, on ``parent`` with their number."""
    versions: list[FileVersion] = []
    handed = 0
    try:
        folder_writable_check(parent)
        _upload_plan_check(parent=parent, targets=[parts for parts, _ in items])
        contents_hold([content for _, content in items])  # all or nothing
        folders: dict[tuple, Node] = {}
        for parts, content in items:
            folder_key = tuple(name_key(part) for part in parts[:-1])
            folder = folders.get(folder_key)
            if folder is None:
                folder = folder_ensure(user=user, parent=parent, names=parts[:-1]) if parts[:-1] else parent
                folders[folder_key] = folder
            handed += 1  # content_commit discards the content itself if it fails
            verb = activity_verb if len(items) == 1 else None
            versions.append(
                content_commit(user=user, parent=folder, name=parts[-1], content=content, activity_verb=verb)
            )
    except BaseException:
        for _, content in items[handed:]:
            content.discard()
        raise
    if activity_verb is not None and len(versions) > 1:
        activity_record(
            workspace_id=parent.workspace_id,
            actor=user,
            verb=activity_verb,
            node=parent,
            details={"files": len(versions)},
        )
    return versions
