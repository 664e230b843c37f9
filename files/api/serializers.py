"""Shapes of the files API (DESIGN.md's contract); thin, no business rules."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cloudstorage.api_fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictUUIDField
from files.access import node_path_for_user
from files.models import FileVersion, Node, Tag
from files.selectors import LISTING_FIELDS


class NodeOut(serializers.Serializer):
    """A file or folder.

    The view passes in its context the caller (``user``) and what it knows for many nodes at once:
    ``paths`` (node id -> path as the caller may see it, from files.access.node_paths_for_user),
    ``tags`` (node id -> names) and ``permission``; what is missing is looked up per node.
    ``to_representation`` is a plain function (:func:`node_row_out`): a listing page of 100 nodes
    is the hot path and DRF's per-field machinery costs more than the database there. The declared
    fields document the shape (and must match).
    """

    id = serializers.UUIDField()
    type = serializers.CharField(help_text="folder or file")
    name = serializers.CharField()
    parent = serializers.UUIDField(allow_null=True)
    workspace = serializers.UUIDField()
    path = serializers.CharField(
        help_text="/a/b/name from the workspace root; for someone who sees the item through a share, from the "
        "highest item shared with them (/shared-folder/b/name)"
    )
    size = serializers.IntegerField()
    mime_type = serializers.CharField()
    sha256 = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    modified_at = serializers.DateTimeField()
    tags = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    permission = serializers.CharField(allow_null=True, help_text="The caller's permission: view, edit or manage.")

    def to_representation(self, node: Node) -> dict:
        context = self.context
        paths = context.get("paths")
        if paths is not None and node.pk in paths:
            path = paths[node.pk]
        else:
            # Whose path: a grantee sees it from their share down, never the folders above it.
            path = node_path_for_user(user=context["user"], node=node)
        tags = context.get("tags")
        names = tags.get(node.pk, []) if tags is not None else [tag.name for tag in node.tags.all()]
        row = {field: getattr(node, field) for field in LISTING_FIELDS}
        return node_row_out(
            row, path=path, tags=names, permission=getattr(node, "permission", None) or context.get("permission")
        )


def node_row_out(row: dict, *, path: str, tags: list, permission: str | None) -> dict:
    """The shape of :class:`NodeOut` from a row of :data:`files.selectors.LISTING_FIELDS` (a
    listing page's rows are fetched as dicts: building 100 model instances cost more than the query).

    Ids and times stay UUIDs and datetimes: the renderer writes them as DRF's fields would (a UUID's
    text, ISO 8601 with a "Z"), in C (cloudstorage/renderers.py)."""
    return {
        "id": row["id"],
        "type": row["kind"],
        "name": row["name"],
        "parent": row["parent_id"],
        "workspace": row["workspace_id"],
        "path": path,
        "size": row["size"],
        "mime_type": row["mime_type"],
        "sha256": row["sha256"],
        "version": row["version"],
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
        "tags": sorted(tags),
        "description": row["description"],
        "permission": permission,
    }


def tags_by_node(node_ids: list) -> dict:
    """``{node id: [tag names]}`` in one query (cheaper than prefetch_related for a page)."""
    result: dict = {}
    for node_id, name in Tag.objects.filter(node_id__in=node_ids).values_list("node_id", "name"):
        result.setdefault(node_id, []).append(name)
    return result


class NodeUpdateIn(serializers.Serializer):
    name = StrictCharField(required=False, trim_whitespace=False, allow_blank=True, max_length=1000)
    parent = StrictUUIDField(required=False, help_text="Move into this folder (same workspace).")
    tags = serializers.ListField(child=StrictCharField(trim_whitespace=False, allow_blank=True), required=False)
    description = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=10_000)


class FolderCreateIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=["folder"])
    name = StrictCharField(trim_whitespace=False, allow_blank=True, max_length=1000)


class UploadIn(serializers.Serializer):
    """``multipart/form-data``: one or more ``file`` parts, and optionally one ``relative_path`` per
    file (in the same order) such as ``photos/2024/a.jpg`` to upload a folder tree."""

    file = serializers.ListField(child=serializers.FileField())
    relative_path = serializers.ListField(child=StrictCharField(), required=False)


class UploadOut(serializers.Serializer):
    created = serializers.IntegerField(help_text="How many uploaded files are new files.")
    versioned = serializers.IntegerField(help_text="How many became a new version of an existing file.")
    nodes = NodeOut(many=True)


class CopyIn(serializers.Serializer):
    parent = StrictUUIDField(help_text="The folder to copy into (same workspace).")
    name = StrictCharField(required=False, trim_whitespace=False, allow_blank=True, max_length=1000)


class VersionOut(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    current = serializers.SerializerMethodField()

    class Meta:
        model = FileVersion
        fields = [
            "number",
            "size",
            "sha256",
            "mime_type",
            "created_at",
            "created_by",
            "pinned",
            "restored_from",
            "current",
        ]

    @extend_schema_field(serializers.BooleanField())
    def get_current(self, version: FileVersion) -> bool:
        return version.number == self.context.get("current_number")


class VersionPinIn(serializers.Serializer):
    pinned = StrictBooleanField()


class VersionPolicyIO(serializers.Serializer):
    keep_versions = StrictIntegerField(min_value=1, max_value=10_000, help_text="Keep the last N versions.")
    keep_days = StrictIntegerField(
        min_value=1, max_value=36_500, allow_null=True, required=False, help_text="Also drop versions older than this."
    )


class UsageOut(serializers.Serializer):
    used_bytes = serializers.IntegerField(help_text="What counts against the quota (all versions and the trash).")
    quota_bytes = serializers.IntegerField()
    free_bytes = serializers.IntegerField()
    percent_used = serializers.FloatField()
    current_bytes = serializers.IntegerField(help_text="Current versions of files not in the trash.")
    versions_bytes = serializers.IntegerField(help_text="Older versions of files not in the trash.")
    trash_bytes = serializers.IntegerField(help_text="Every version of files in the trash.")
    logical_bytes = serializers.IntegerField()
    stored_bytes = serializers.IntegerField(help_text="Unique bytes actually stored (after deduplication).")
    dedup_saved_bytes = serializers.IntegerField()
    files = serializers.IntegerField()
    folders = serializers.IntegerField()
    versions = serializers.IntegerField()
    trashed_versions = serializers.IntegerField()


class TypeUsageOut(serializers.Serializer):
    type = serializers.CharField()
    count = serializers.IntegerField()
    bytes = serializers.IntegerField()


class MimeUsageOut(serializers.Serializer):
    mime_type = serializers.CharField()
    count = serializers.IntegerField()
    bytes = serializers.IntegerField()


class FileTypesOut(serializers.Serializer):
    types = TypeUsageOut(many=True)
    mime_types = MimeUsageOut(many=True)
