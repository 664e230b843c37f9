"""A folder as a zip, built lazily as it streams (zipstream-ng): no temporary file, bounded memory.

Used by the API's zip route and by public links' folder downloads.
"""

from __future__ import annotations

from zipstream import ZIP_STORED, ZipStream

from cloudstorage.errors import ServiceError
from disks.store import manifest_open
from files.models import Node
from files.tree import cycle_error

# Guard against a zip no one can want in one go; a client can still zip subfolders.
MAX_ZIP_ENTRIES = 100_000


def _member(path_parts: list[str]) -> str:
    # Names are already validated (no "/", "\\", "..", control characters); belt and braces for
    # names created before a rule existed: no absolute paths, no parent references.
    safe = [part.replace("/", "_").replace("\\", "_") for part in path_parts if part not in ("", ".", "..")]
    return "/".join(safe)


def _lazy(manifest):
    # Opened only when the zip stream reaches this member, so a big tree costs no query up front.
    yield from manifest_open(manifest=manifest)


def folder_zip(*, folder: Node) -> ZipStream:
    """A sized ZipStream of the folder's live subtree (trashed items are excluded; the top folder's
    name is the members' first path component)."""
    zip_stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    level = [(folder.pk, [folder.name or "files"])]
    seen = {folder.pk}  # a folder met twice is a cycle: the walk would never end
    count = 0
    while level:
        parents = {pk: parts for pk, parts in level}
        children = (
            Node.objects.filter(parent_id__in=list(parents), trashed_in__isnull=True)
            .select_related("current_version__manifest")
            .order_by("parent_id", "name_key")
        )
        level = []
        empty = set(parents)
        for child in children.iterator(chunk_size=1000):
            count += 1
            if count > MAX_ZIP_ENTRIES:
                raise ServiceError(
                    code="zip_too_large",
                    message=f"This folder has more than {MAX_ZIP_ENTRIES} items; download subfolders instead.",
                    status_code=400,
                )
            empty.discard(child.parent_id)
            parts = [*parents[child.parent_id], child.name]
            if child.is_folder:
                if child.pk in seen:
                    raise cycle_error(node_id=child.pk)
                seen.add(child.pk)
                level.append((child.pk, parts))
            elif child.current_version is not None:
                version = child.current_version
                zip_stream.add(_lazy(version.manifest), _member(parts), size=version.size)
            else:
                zip_stream.add(b"", _member(parts))
        for pk in empty:
            zip_stream.mkdir(_member(parents[pk]))
    return zip_stream
