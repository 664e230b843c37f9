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


def pages_walk(api, start: str, key: str, field: str = "name") -> list:
    """``field`` of every item of a cursor-paginated list, following ``key`` ("next" or "previous")."""
    values, next_url = [], start
    while next_url:
        page = api.get(next_url).json()
        values += [item[field] for item in page["results"]]
        next_url = page[key]
    return values


def pages_both_ways(api, first: str, field: str = "name") -> list:
    """Walk a list forward from ``first``, then back from its last page: the backward walk must
    give the same pages in reverse (no gap, no repeat). Returns the forward walk."""
    forward = pages_walk(api, first, "next", field)
    assert len(forward) == len(set(forward))
    last = first
    while (following := api.get(last).json()["next"]) is not None:
        last = following
    size = len(api.get(first).json()["results"])
    pages = [forward[i : i + size] for i in range(0, len(forward), size)]
    assert pages_walk(api, last, "previous", field) == [item for page in reversed(pages) for item in page]
    return forward
