"""Small helpers shared by the files API tests."""

from __future__ import annotations

import io

from files.folders import folder_create
from files.models import Node
from files.uploads import file_upload


def url(node, suffix: str = "") -> str:
    node_id = node if isinstance(node, str) else node.pk
    return f"/api/v1/nodes/{node_id}/{suffix}"


def make_file(user, parent: Node, name: str, data: bytes = b"hello") -> Node:
    return file_upload(user=user, parent=parent, name=name, stream=io.BytesIO(data)).node


def make_folder(user, parent: Node, name: str) -> Node:
    return folder_create(user=user, parent=parent, name=name)


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def workspace_root(workspace) -> Node:
    return Node.objects.get(workspace=workspace, parent__isnull=True)
