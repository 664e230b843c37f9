"""Folders nest at most CLOUDSTORAGE_MAX_FOLDER_DEPTH levels below the root, however they get there
(created, uploaded with a relative path, moved, copied); and no move ever makes a cycle, even under
a chain deeper than the walk up the tree goes."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from files.models import Node
from files.names import name_key
from files.trash import subtree_ids
from files.tree import MAX_DEPTH
from tests.files.api_helpers import url


def _chain(owner, parent: Node, depth: int, prefix: str = "d") -> list[Node]:
    """``depth`` nested folders under ``parent``, written straight to the table (as a tree made
    before the limit existed would be)."""
    nodes: list[Node] = []
    for level in range(depth):
        nodes.append(
            Node(
                id=uuid.uuid4(),
                workspace_id=parent.workspace_id,
                parent_id=nodes[-1].pk if nodes else parent.pk,
                kind=Node.Kind.FOLDER,
                name=f"{prefix}{level}",
                name_key=name_key(f"{prefix}{level}"),
                created_by=owner,
            )
        )
    Node.objects.bulk_create(nodes, batch_size=1000)
    return nodes


def _refused_too_deep(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "too_deep"


def test_folders_go_as_deep_as_the_limit_and_no_deeper(api, owner, root, settings):
    settings.CLOUDSTORAGE_MAX_FOLDER_DEPTH = 4
    chain = _chain(owner, root, 3)  # depths 1, 2, 3
    created = api.post(url(chain[-1], "children/"), {"type": "folder", "name": "four"}, format="json")
    assert created.status_code == 201, created.content
    four = Node.objects.get(pk=created.json()["id"])
    _refused_too_deep(api.post(url(four, "children/"), {"type": "folder", "name": "five"}, format="json"))
    # A file may still go into the deepest folder; a folder path uploaded with it may not.
    file = SimpleUploadedFile("f.txt", b"f", content_type="text/plain")
    assert api.post(url(four, "children/"), {"file": [file]}, format="multipart").status_code == 201
    nested = SimpleUploadedFile("g.txt", b"g", content_type="text/plain")
    _refused_too_deep(
        api.post(url(chain[-1], "children/"), {"file": [nested], "relative_path": ["x/y/g.txt"]}, format="multipart")
    )
    assert not Node.objects.filter(name__in=["five", "g.txt", "y"]).exists()


def test_a_folder_moved_or_copied_below_the_limit_counts_its_own_subfolders(api, owner, root, settings):
    settings.CLOUDSTORAGE_MAX_FOLDER_DEPTH = 4
    deep = _chain(owner, root, 2)[-1]  # depth 2
    tree = _chain(owner, root, 3, prefix="t")[0]  # a folder holding two more levels: height 3
    _refused_too_deep(api.patch(url(tree), {"parent": str(deep.pk)}, format="json"))
    _refused_too_deep(api.post(url(tree, "copy/"), {"parent": str(deep.pk)}, format="json"))
    tree.refresh_from_db()
    assert tree.parent_id == root.pk
    shallow = _chain(owner, root, 1, prefix="s")[-1]  # depth 1: 1 + 3 fits
    assert api.patch(url(tree), {"parent": str(shallow.pk)}, format="json").status_code == 200


def test_no_move_makes_a_cycle_under_a_chain_deeper_than_the_walk_up(api, owner, root, settings):
    """Before the limit, a folder moved into its own descendant more than 10,000 levels down was not
    seen among the target's ancestors (the walk up stops there): the move made a cycle cut off from
    the root, and a DELETE of it walked the cycle for ever."""
    settings.CLOUDSTORAGE_MAX_FOLDER_DEPTH = 5_000
    chain = _chain(owner, root, MAX_DEPTH + 5)
    top, bottom = chain[0], chain[-1]
    response = api.patch(url(top), {"parent": str(bottom.pk)}, format="json")
    assert response.status_code == 400, response.content
    top.refresh_from_db()
    assert top.parent_id == root.pk
    assert len(subtree_ids(node=top)) == len(chain)  # and a walk down ends


def test_a_walk_down_a_cycle_left_by_then_ends(owner, root):
    a, b = _chain(owner, root, 2)
    Node.objects.filter(pk=a.pk).update(parent_id=b.pk)  # a -> b -> a
    assert sorted(subtree_ids(node=a)) == sorted([a.pk, b.pk])


def test_a_zip_or_a_copy_of_a_cycle_left_by_then_is_refused(api, owner, root):
    """A zip walked a cycle level by level until 100,000 entries, each level's paths one name
    longer: a worker at 100% CPU for hours, after the client had gone. A copy is refused by its
    height check, which stops counting at the limit."""
    a, b = _chain(owner, root, 2)
    target = _chain(owner, root, 1, prefix="t")[0]
    Node.objects.filter(pk=a.pk).update(parent_id=b.pk)  # a -> b -> a
    response = api.get(url(a, "zip"))
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "broken_tree"
    copied = api.post(url(a, "copy/"), {"parent": str(target.pk)}, format="json")
    assert copied.status_code == 400 and copied.json()["error"]["code"] == "too_deep", copied.content
    assert not Node.objects.filter(parent=target).exists()


@pytest.mark.parametrize("bad", [0, 5_001])
def test_the_limit_is_refused_outside_its_range_at_start(bad):
    import subprocess
    import sys

    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **__import__("os").environ,
            "CLOUDSTORAGE_MAX_FOLDER_DEPTH": str(bad),
            "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
        },
        capture_output=True,
        text=True,
    )
    assert started.returncode != 0 and "CLOUDSTORAGE_MAX_FOLDER_DEPTH" in started.stderr
