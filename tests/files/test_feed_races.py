"""The change feed's paths under concurrent renames, with real threads and row locks: an entry's
path is where the node is at the entry's position, even when a folder above it is renamed by
another request while this one runs."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from files import nodes as nodes_module
from files.folders import folder_ensure
from files.models import Change, Node
from files.nodes import node_update
from files.trash import node_trash
from tests.factories import UserFactory, personal_workspace
from tests.files.sharing_helpers import root_of, upload

pytestmark = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database serialises writers; the race needs PostgreSQL (CI's second pass)",
)


def _folder_renamed_meanwhile(monkeypatch, owner, folder: Node, watched: Node) -> list:
    """When this request has read ``watched``'s path, another request (its own connection) renames
    ``folder`` to G: it commits at once unless this request's locks hold it back."""
    real_node_path = nodes_module.node_path
    others: list[threading.Thread] = []

    def node_path_then_other_request(*, node):
        path = real_node_path(node=node)
        if node.pk == watched.pk and not others:

            def rename():
                try:
                    node_update(user=owner, node=Node.objects.get(pk=folder.pk), name="G")
                finally:
                    connections.close_all()

            others.append(threading.Thread(target=rename))
            others[0].start()
            others[0].join(2)  # committed by now, unless it waits for this request
        return path

    monkeypatch.setattr(nodes_module, "node_path", node_path_then_other_request)
    return others


def _feed() -> list[tuple]:
    return list(Change.objects.order_by("pk").values_list("kind", "path", "from_path"))


def test_a_rename_racing_the_rename_of_its_folder_records_the_paths_of_its_position(
    transactional_db, disks, monkeypatch
):
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    folder = folder_ensure(user=owner, parent=root, names=["F"])
    file = upload(owner, folder, "x.txt", b"data")
    before = Change.objects.count()
    others = _folder_renamed_meanwhile(monkeypatch, owner, folder, file)

    node_update(user=owner, node=Node.objects.get(pk=file.pk), name="y.txt")
    others[0].join()

    assert _feed()[before:] == [("rename", "/F/y.txt", "/F/x.txt"), ("rename", "/G", "/F")]


def test_a_trash_racing_the_rename_of_its_folder_remembers_where_it_was(transactional_db, disks, monkeypatch):
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    folder = folder_ensure(user=owner, parent=root, names=["F"])
    file = upload(owner, folder, "x.txt", b"data")
    others = _folder_renamed_meanwhile(monkeypatch, owner, folder, folder)

    import files.trash as trash_module

    monkeypatch.setattr(trash_module, "node_path", nodes_module.node_path)
    trashed = node_trash(user=owner, node=Node.objects.get(pk=file.pk))
    others[0].join()

    assert trashed.original_path in ("/F", "/G")
    trash_entry = Change.objects.filter(kind=Change.Kind.TRASH).get()
    renamed_at = Change.objects.filter(kind="rename").get().pk
    assert trash_entry.path == ("/F/x.txt" if trash_entry.pk < renamed_at else "/G/x.txt")
