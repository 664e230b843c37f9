"""Small builders for the sharing, link and trash tests."""

from __future__ import annotations

import io

from rest_framework.test import APIClient

from accounts.services import token_create
from disks.store import manifest_open
from files.folders import folder_ensure
from files.models import Node
from files.uploads import file_upload


def upload(user, parent: Node, name: str, data: bytes) -> Node:
    return file_upload(user=user, parent=parent, name=name, stream=io.BytesIO(data)).node


def folder(user, parent: Node, path: str) -> Node:
    return folder_ensure(user=user, parent=parent, names=path.strip("/").split("/"))


def content(node: Node) -> bytes:
    node.refresh_from_db()
    return b"".join(manifest_open(manifest=node.current_version.manifest))


def body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def root_of(workspace) -> Node:
    return Node.objects.get(workspace=workspace, parent__isnull=True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t').raw}")
    return client
