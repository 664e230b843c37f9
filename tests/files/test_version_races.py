"""A version restore or a copy racing the version policy, with real threads and row locks: the other
request runs on its own connection and commits while the first one is between two statements. The
restore or the copy is refused, or reads a content that is still there; never an acknowledged file
whose manifest has no chunks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from cloudstorage.errors import ServiceError
from disks.store import manifest_open
from files import nodes as nodes_module
from files import versions as versions_module
from files.folders import folder_ensure
from files.models import FilesPolicy, Node
from files.nodes import node_copy
from files.versions import version_restore, versions_thin
from tests.factories import UserFactory, personal_workspace
from tests.files.sharing_helpers import root_of, upload

pytestmark = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database serialises writers; the race needs PostgreSQL (CI's second pass)",
)


def in_other_connection(job, timeout=20):
    """Run ``job`` to completion on another thread (its own connection); fail if it blocks."""
    outcome: list = []

    def run():
        try:
            outcome.append(job())
        except BaseException as exc:  # noqa: BLE001 - raised again below
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the other request blocked on this one's locks"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def content(node: Node) -> bytes:
    node.refresh_from_db()
    return b"".join(manifest_open(manifest=node.current_version.manifest))


def test_a_restore_racing_the_version_policy_is_refused(transactional_db, disks, monkeypatch):
    owner = UserFactory()
    workspace = personal_workspace(owner)
    node = upload(owner, root_of(workspace), "a.txt", b"version one " * 500)
    upload(owner, root_of(workspace), "a.txt", b"version two")
    real_clone = versions_module.manifest_clone

    def clone_after_the_policy(*, manifest):
        def thin():
            FilesPolicy.objects.update_or_create(workspace=workspace, defaults={"keep_versions": 1})
            return versions_thin(node_id=node.pk)

        assert in_other_connection(thin) == 1  # version 1 is gone, committed
        return real_clone(manifest=manifest)

    monkeypatch.setattr(versions_module, "manifest_clone", clone_after_the_policy)
    with pytest.raises(ServiceError) as refused:
        version_restore(user=owner, node=Node.objects.get(pk=node.pk), number=1)
    assert refused.value.status_code == 404
    assert content(node) == b"version two"


def test_a_copy_racing_a_new_version_and_its_thinning_is_refused(transactional_db, disks, monkeypatch):
    owner = UserFactory()
    workspace = personal_workspace(owner)
    source = upload(owner, root_of(workspace), "src.txt", b"precious " * 1000)
    dest = folder_ensure(user=owner, parent=root_of(workspace), names=["dest"])
    FilesPolicy.objects.create(workspace=workspace, keep_versions=1)
    real_lock = nodes_module.workspace_lock

    # The last moment another writer can still commit: the copy's transaction takes the
    # workspace's lock first (accounts.locks), and the source was read before it, unlocked.
    def lock_after_a_new_version(workspace_id):
        def new_version():
            upload(owner, root_of(workspace), "src.txt", b"new content")
            return versions_thin(node_id=source.pk)

        in_other_connection(new_version)
        return real_lock(workspace_id)

    monkeypatch.setattr(nodes_module, "workspace_lock", lock_after_a_new_version)
    with pytest.raises(ServiceError) as refused:
        node_copy(user=owner, node=Node.objects.get(pk=source.pk), parent=dest)
    assert refused.value.status_code == 409
    assert not Node.objects.filter(parent=dest).exists()
    assert content(source) == b"new content"
