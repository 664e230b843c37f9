"""Reads of the namespace: listings, paths, search, versions and usage analytics.

Callers pass nodes and workspaces they got from :mod:`files.access`; nothing here decides who may
see what.
"""

from __future__ import annotations

import json
import re
import unicodedata

from django.db import models
from django.db.models import Aggregate, Count, F, OuterRef, Q, QuerySet, Subquery, Sum

from accounts.models import Workspace
from cloudstorage.compiled import CompiledQuery
from cloudstorage.keyset import keyset_filter, position_read
from files.models import FileVersion, Node, Tag
from files.tree import folders_up, path_from

# Coarse kinds of file for search (?type=) and the file-type analytics: MIME prefixes and exact types.
FILE_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "image": (("image/",), ()),
    "video": (("video/",), ()),
    "audio": (("audio/",), ()),
    "pdf": ((), ("application/pdf",)),
    "text": (("text/",), ("application/json", "application/xml", "application/javascript")),
    "document": (
        ("application/vnd.openxmlformats", "application/vnd.oasis.opendocument"),
        ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "application/rtf"),
    ),
    "archive": (
        (),
        (
            "application/zip",
            "application/gzip",
            "application/x-tar",
            "application/x-7z-compressed",
            "application/x-rar-compressed",
            "application/vnd.rar",
            "application/x-bzip2",
            "application/x-xz",
            "application/zstd",
        ),
    ),
}


def file_type_condition(kind: str) -> Q:
    prefixes, exact = FILE_TYPES[kind]
    condition = Q(mime_type__in=exact) if exact else Q(pk__in=[])
    for prefix in prefixes:
        condition |= Q(mime_type__startswith=prefix)
    return condition


def file_type_of(mime_type: str) -> str:
    """The coarse kind of a MIME type (the rules of :data:`FILE_TYPES`), ``other`` when none fits."""
    for kind, (prefixes, exact) in FILE_TYPES.items():
        if mime_type in exact or mime_type.startswith(prefixes or ("\0",)):
            return kind
    return "other"


LISTING_FIELDS = (
    "id",
    "workspace_id",
    "parent_id",
    "kind",
    "name",
    "name_key",
    "size",
    "mime_type",
    "sha256",
    "version",
    "created_at",
    "modified_at",
    "description",
)


def children_of(*, parent: Node) -> QuerySet[Node]:
    """A folder's live children as nodes: one indexed query (the listing indexes are (parent,
    trashed_in, name_key / size / modified_at)). Only the columns a listing shows."""
    return Node.objects.filter(parent=parent, trashed_in__isnull=True).only(*LISTING_FIELDS)


class _NameList(models.Field):
    """A column of names aggregated by :class:`_Names`: a PostgreSQL array, or SQLite's JSON text."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return []
        return json.loads(value) if isinstance(value, str) else list(value)


class _Names(Aggregate):
    function = "ARRAY_AGG"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra_context)


def _tag_names() -> Subquery:
    """A node's tag names, in the row itself: a page of 100 children costs no second query with a
    hundred ids to build and send (one probe of the (node, name) index per row instead)."""
    names = (
        Tag.objects.filter(node_id=OuterRef("id"))
        .order_by()
        .values("node_id")
        .annotate(names=_Names("name", output_field=_NameList()))
        .values("names")
    )
    return Subquery(names, output_field=_NameList())


def children_rows(*, parent: Node) -> QuerySet:
    """A folder's live children as dicts of :data:`LISTING_FIELDS` (but the parent's and
    workspace's ids: the caller has them) and their ``tag_names``: one indexed query per page (the
    listing indexes are (parent, trashed_in, name_key / size / modified_at))."""
    fields = [field for field in LISTING_FIELDS if field not in ("parent_id", "workspace_id")]
    return Node.objects.filter(parent=parent, trashed_in__isnull=True).values(*fields, tag_names=_tag_names())


def _children_page(ordering: tuple, after: tuple | None, page: slice):
    def build(*, parent, position=None, tiebreak=None) -> QuerySet:
        rows = children_rows(parent=parent).order_by(*ordering)
        if after is not None:
            rows = keyset_filter(rows, after, position, tiebreak)
        return rows[page]

    return build


class ChildrenSource:
    """A folder's live children for cursor pagination (cloudstorage/pagination.py), which orders them,
    filters by its cursor's position and slices a page: the same rows as
    :func:`children_rows` ordered, filtered and sliced, run as a query compiled once per shape
    (ordering, cursor direction, offset, page size; cloudstorage/compiled.py). The shapes kept are
    bounded; others are built by the ORM each time."""

    SHAPES_KEPT = 256
    _compiled: dict = {}

    def __init__(self, parent: Node, ordering: tuple = (), after: tuple | None = None, position=None, tiebreak=None):
        self.parent = parent
        self.ordering = ordering
        # (column, "gt" or "lt"[, the column that breaks ties]) of the cursor's position, if any
        self.after = after
        self.position = position
        self.tiebreak = tiebreak

    def order_by(self, *ordering: str) -> ChildrenSource:
        return ChildrenSource(self.parent, tuple(ordering), self.after, self.position, self.tiebreak)

    def filter(self, **lookup) -> ChildrenSource:
        if self.after is not None:
            raise ValueError("ChildrenSource filters by one position")
        after, values = position_read(Node, self.ordering, lookup)
        return ChildrenSource(self.parent, self.ordering, after, *values)

    def __getitem__(self, page: slice) -> list:
        build = _children_page(self.ordering, self.after, page)
        fields = {"parent": Node._meta.get_field("parent")}
        values = {"parent": self.parent}
        if self.after is not None:
            fields["position"] = Node._meta.get_field(self.after[0])
            values["position"] = self.position
            if len(self.after) == 3:
                fields["tiebreak"] = Node._meta.get_field(self.after[2])
                values["tiebreak"] = self.tiebreak
        shape = (self.ordering, self.after, page.start, page.stop)
        compiled = self._compiled.get(shape)
        if compiled is None:
            if len(self._compiled) >= self.SHAPES_KEPT:
                return list(build(**values))
            compiled = self._compiled[shape] = CompiledQuery(build, **fields)
        return compiled.all(**values)


def node_paths(*, nodes: list[Node]) -> dict:
    """``{node id: "/a/b/name"}`` for many nodes at once: one query, whatever their number and depth."""
    known = folders_up(start_ids=[node.parent_id for node in nodes])
    folder_paths: dict = {}
    paths = {}
    for node in nodes:
        if node.parent_id is None:
            paths[node.pk] = "/"
            continue
        if node.parent_id not in folder_paths:
            folder_paths[node.parent_id] = path_from(known, node.parent_id).rstrip("/")
        paths[node.pk] = f"{folder_paths[node.parent_id]}/{node.name}"
    return paths


# A MIME type as RFC 6838 names them (type "/" subtype, restricted characters), for ?type= in search.
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}", re.IGNORECASE)


def search_kinds() -> list[str]:
    """The named values of search's ``type`` (besides an exact MIME type such as ``text/plain``)."""
    return [Node.Kind.FOLDER, Node.Kind.FILE, *FILE_TYPES, "other"]


def search_kind_valid(kind: str) -> bool:
    """Whether ``kind`` is a type :func:`nodes_search` knows: one of :func:`search_kinds` or a MIME
    type. Anything else would silently find nothing (it was taken for a MIME type)."""
    return not kind or kind in search_kinds() or _MIME_TYPE.fullmatch(kind) is not None


def nodes_search(
    *, workspace: Workspace, q: str = "", kind: str = "", tag: str = "", limit: int | None = None
) -> QuerySet[Node]:
    """Live nodes of the workspace whose name, description or a tag contains ``q`` (case-insensitive),
    optionally only of a type (``folder``, ``file``, a coarse kind such as ``image``, or a MIME type)
    and carrying ``tag``."""
    nodes = Node.objects.filter(workspace=workspace, trashed_in__isnull=True, parent__isnull=False)
    if q:
        folded = unicodedata.normalize("NFC", q.casefold())
        nodes = nodes.filter(
            Q(name_key__contains=folded)
            | Q(description__icontains=q)
            | Q(pk__in=Node.objects.filter(workspace=workspace, tags__name__icontains=q).values("pk"))
        )
    if kind:
        if kind in (Node.Kind.FOLDER, Node.Kind.FILE):
            nodes = nodes.filter(kind=kind)
        elif kind in FILE_TYPES:
            nodes = nodes.filter(file_type_condition(kind), kind=Node.Kind.FILE)
        elif kind == "other":
            excluded = Q()
            for name in FILE_TYPES:
                excluded |= file_type_condition(name)
            nodes = nodes.filter(kind=Node.Kind.FILE).exclude(excluded)
        else:
            nodes = nodes.filter(kind=Node.Kind.FILE, mime_type=kind.lower())  # MIME types ignore case
    if tag:
        nodes = nodes.filter(pk__in=Node.objects.filter(workspace=workspace, tags__name__iexact=tag).values("pk"))
    return nodes


def versions_of(*, node: Node) -> QuerySet[FileVersion]:
    return FileVersion.objects.filter(node=node).select_related("created_by").order_by("-number")


def workspace_usage(*, workspace: Workspace) -> dict:
    """Used / quota / free, and where the logical bytes are: current files, older versions, trash;
    plus the bytes actually stored once (chunk-level deduplication within the workspace)."""
    from disks.models import Chunk  # read-only aggregate: the store's unique plaintext bytes

    workspace.refresh_from_db(fields=["used_bytes", "plan_gb"])
    live = FileVersion.objects.filter(workspace=workspace, node__trashed_in__isnull=True)
    current = live.filter(node__current_version=F("pk")).aggregate(n=Count("id"), b=Sum("size"))
    older = live.exclude(node__current_version=F("pk")).aggregate(n=Count("id"), b=Sum("size"))
    trash = FileVersion.objects.filter(workspace=workspace, node__trashed_in__isnull=False).aggregate(
        n=Count("id"), b=Sum("size")
    )
    nodes = Node.objects.filter(workspace=workspace, trashed_in__isnull=True, parent__isnull=False).aggregate(
        files=Count("id", filter=Q(kind=Node.Kind.FILE)), folders=Count("id", filter=Q(kind=Node.Kind.FOLDER))
    )
    stored = Chunk.objects.filter(workspace=workspace).aggregate(b=Sum("size"))["b"] or 0
    logical = (current["b"] or 0) + (older["b"] or 0) + (trash["b"] or 0)
    quota = workspace.quota_bytes
    return {
        "used_bytes": workspace.used_bytes,
        "quota_bytes": quota,
        "free_bytes": max(quota - workspace.used_bytes, 0),
        "percent_used": round(100.0 * workspace.used_bytes / quota, 2) if quota else 0.0,
        "current_bytes": current["b"] or 0,
        "versions_bytes": older["b"] or 0,
        "trash_bytes": trash["b"] or 0,
        "logical_bytes": logical,
        "stored_bytes": stored,
        "dedup_saved_bytes": max(logical - stored, 0),
        "files": nodes["files"],
        "folders": nodes["folders"],
        "versions": (current["n"] or 0) + (older["n"] or 0),
        "trashed_versions": trash["n"] or 0,
    }


def workspace_usage_by_type(*, workspace: Workspace) -> dict:
    """Bytes and counts of the current files (not in the trash) by coarse type and by MIME type."""
    rows = (
        Node.objects.filter(workspace=workspace, kind=Node.Kind.FILE, trashed_in__isnull=True)
        .values("mime_type")
        .annotate(count=Count("id"), bytes=Sum("size"))
        .order_by("-bytes", "mime_type")
    )
    by_mime = [
        {"mime_type": row["mime_type"] or "application/octet-stream", "count": row["count"], "bytes": row["bytes"] or 0}
        for row in rows
    ]
    by_type: dict[str, dict] = {}
    for row in by_mime:
        kind = file_type_of(row["mime_type"])
        entry = by_type.setdefault(kind, {"type": kind, "count": 0, "bytes": 0})
        entry["count"] += row["count"]
        entry["bytes"] += row["bytes"]
    return {
        "types": sorted(by_type.values(), key=lambda entry: (-entry["bytes"], entry["type"])),
        "mime_types": by_mime,
    }


def manifest_labels(*, manifest_ids: list) -> dict:
    """``{manifest id: "/path/name (v3)"}`` for the versions that own these contents (fsck's report
    names files by path rather than by manifest id); contents no version owns are left out."""
    versions = list(
        FileVersion.objects.filter(manifest_id__in=manifest_ids)
        .select_related("node")
        .only("manifest_id", "number", "node__id", "node__parent_id", "node__name", "node__trashed_in_id")
    )
    paths = node_paths(nodes=[version.node for version in versions])
    labels = {}
    for version in versions:
        trashed = " (in the trash)" if version.node.trashed_in_id else ""
        labels[version.manifest_id] = f"{paths[version.node.pk]} (v{version.number}){trashed}"
    return labels
