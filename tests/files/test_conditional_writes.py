"""Conditional writes: If-Match / If-None-Match on PUT content, PUT children/{name} and PATCH refuse
with 412 when the file changed meanwhile, and keep nothing of the refused write."""

from __future__ import annotations

import hashlib
import io

import pytest

from cloudstorage.errors import ServiceError
from files.models import FileVersion, Node, Upload
from files.preconditions import Precondition
from files.uploads import file_upload_version
from tests.files.api_helpers import make_file, make_folder, url
from tests.files.test_tus import create as tus_create
from tests.files.test_tus import patch as tus_patch


def etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


def used(workspace) -> int:
    workspace.refresh_from_db()
    return workspace.used_bytes


def test_put_content_with_the_current_etag_makes_a_new_version(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    response = api.put(url(node, "content"), b"two", content_type="text/plain", HTTP_IF_MATCH=etag(b"one"))
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2


def test_put_content_with_a_stale_etag_is_412_and_stores_nothing(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.txt", b"one")
    file_upload_version(user=owner, node=node, stream=io.BytesIO(b"edited elsewhere"))
    before = used(owner_workspace)
    response = api.put(url(node, "content"), b"mine", content_type="text/plain", HTTP_IF_MATCH=etag(b"one"))
    assert response.status_code == 412
    error = response.json()["error"]
    assert error["code"] == "precondition_failed"
    assert "changed since you read it" in error["message"]
    assert error["details"]["current_etag"] == etag(b"edited elsewhere")
    assert error["details"]["version"] == 2
    assert FileVersion.objects.filter(node=node).count() == 2
    assert used(owner_workspace) == before


def test_a_write_that_lands_while_the_body_streams_is_412_at_the_commit(api, owner, root, owner_workspace):
    """The early check passed; another editor's version committed meanwhile; the row-locked check refuses."""
    node = make_file(owner, root, "a.txt", b"one")

    def body():
        yield b"mine, part 1 "
        file_upload_version(user=owner, node=Node.objects.get(pk=node.pk), stream=io.BytesIO(b"theirs"))
        yield b"part 2"

    before = used(owner_workspace)
    precondition = Precondition.from_headers({"HTTP_IF_MATCH": etag(b"one")})
    with pytest.raises(ServiceError) as refused:
        file_upload_version(user=owner, node=node, stream=body(), precondition=precondition)
    assert refused.value.status_code == 412
    node.refresh_from_db()
    assert node.sha256 == hashlib.sha256(b"theirs").hexdigest() and node.version == 2
    assert used(owner_workspace) == before + len(b"theirs")


def test_put_by_name_if_match_replaces_only_the_unchanged_file(api, owner, root):
    make_file(owner, root, "doc.txt", b"v1")
    stale = api.put(url(root, "children/doc.txt"), b"x", content_type="text/plain", HTTP_IF_MATCH=etag(b"other"))
    assert stale.status_code == 412
    ok = api.put(url(root, "children/doc.txt"), b"v2", content_type="text/plain", HTTP_IF_MATCH=etag(b"v1"))
    assert ok.status_code == 200 and ok.json()["version"] == 2


def test_put_by_name_if_match_on_a_missing_file_is_412(api, root):
    response = api.put(url(root, "children/gone.txt"), b"x", content_type="text/plain", HTTP_IF_MATCH=etag(b"x"))
    assert response.status_code == 412
    assert "does not exist" in response.json()["error"]["message"]
    assert not Node.objects.filter(name="gone.txt").exists()


def test_put_by_name_if_none_match_star_only_creates(api, owner, root):
    created = api.put(url(root, "children/new.txt"), b"1", content_type="text/plain", HTTP_IF_NONE_MATCH="*")
    assert created.status_code == 201
    again = api.put(url(root, "children/new.txt"), b"2", content_type="text/plain", HTTP_IF_NONE_MATCH="*")
    assert again.status_code == 412
    assert again.json()["error"]["details"]["existing_id"] == created.json()["id"]
    assert Node.objects.get(pk=created.json()["id"]).version == 1


def test_if_match_star_needs_an_existing_file(api, owner, root):
    make_file(owner, root, "here.txt", b"1")
    assert (
        api.put(url(root, "children/here.txt"), b"2", content_type="text/plain", HTTP_IF_MATCH="*").status_code == 200
    )
    assert (
        api.put(url(root, "children/nope.txt"), b"2", content_type="text/plain", HTTP_IF_MATCH="*").status_code == 412
    )


def test_weak_etag_never_matches(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    response = api.put(url(node, "content"), b"two", content_type="text/plain", HTTP_IF_MATCH=f"W/{etag(b'one')}")
    assert response.status_code == 412


def test_patch_with_a_stale_etag_is_412_and_renames_nothing(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    file_upload_version(user=owner, node=node, stream=io.BytesIO(b"two"))
    stale = api.patch(url(node), {"name": "b.txt"}, format="json", HTTP_IF_MATCH=etag(b"one"))
    assert stale.status_code == 412
    node.refresh_from_db()
    assert node.name == "a.txt"
    ok = api.patch(url(node), {"name": "b.txt"}, format="json", HTTP_IF_MATCH=etag(b"two"))
    assert ok.status_code == 200 and ok.json()["name"] == "b.txt"


def test_a_move_with_a_stale_etag_is_412_and_moves_nothing(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    into = make_folder(owner, root, "docs")
    file_upload_version(user=owner, node=node, stream=io.BytesIO(b"two"))
    move = {"parent": str(into.pk)}
    assert api.patch(url(node), move, format="json", HTTP_IF_MATCH=etag(b"one")).status_code == 412
    node.refresh_from_db()
    assert node.parent_id == root.pk
    ok = api.patch(url(node), move, format="json", HTTP_IF_MATCH=etag(b"two"))
    assert ok.status_code == 200 and ok.json()["parent"] == str(into.pk)


def test_patch_if_match_on_a_folder_matches_only_star(api, owner, root):
    folder = make_folder(owner, root, "docs")
    assert api.patch(url(folder), {"name": "d2"}, format="json", HTTP_IF_MATCH='"abc"').status_code == 412
    assert api.patch(url(folder), {"name": "d2"}, format="json", HTTP_IF_MATCH="*").status_code == 200


def test_delete_with_a_stale_etag_is_412_and_trashes_nothing(api, owner, root):
    """A sync client deleting the version it saw must not trash the newer one another client wrote."""
    node = make_file(owner, root, "a.txt", b"one")
    file_upload_version(user=owner, node=node, stream=io.BytesIO(b"two by someone else"))
    stale = api.delete(url(node), HTTP_IF_MATCH=etag(b"one"))
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    node.refresh_from_db()
    assert node.trashed_in_id is None
    assert api.delete(url(node), HTTP_IF_MATCH=etag(b"two by someone else")).status_code == 204
    node.refresh_from_db()
    assert node.trashed_in_id == node.pk


def test_unconditional_writes_still_work(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    assert api.put(url(node, "content"), b"two", content_type="text/plain").status_code == 200


# --- Resumable uploads (tus): the creation request's conditions hold until the upload completes ---


def test_tus_if_none_match_star_on_an_existing_name_is_412_before_any_byte(api, owner, root, owner_workspace):
    make_file(owner, root, "doc.txt", b"v1")
    before = used(owner_workspace)
    response = tus_create(api, length=5, root=root, filename="doc.txt", HTTP_IF_NONE_MATCH="*")
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert not Upload.objects.exists()
    assert used(owner_workspace) == before


def test_tus_if_match_current_etag_completes_as_a_new_version(api, owner, root):
    node = make_file(owner, root, "doc.txt", b"v1")
    created = tus_create(api, length=2, root=root, filename="doc.txt", HTTP_IF_MATCH=etag(b"v1"))
    assert created.status_code == 201, created.content
    assert tus_patch(api, created["Location"], b"v2", offset=0).status_code == 204
    node.refresh_from_db()
    assert node.version == 2 and node.sha256 == hashlib.sha256(b"v2").hexdigest()


def test_tus_upload_whose_file_changed_meanwhile_is_412_at_completion(api, owner, root, owner_workspace):
    node = make_file(owner, root, "doc.txt", b"v1")
    created = tus_create(api, length=10, root=root, filename="doc.txt", HTTP_IF_MATCH=etag(b"v1"))
    assert created.status_code == 201
    assert tus_patch(api, created["Location"], b"mine-", offset=0).status_code == 204
    file_upload_version(user=owner, node=Node.objects.get(pk=node.pk), stream=io.BytesIO(b"theirs"))
    before = used(owner_workspace)

    last = tus_patch(api, created["Location"], b"part2", offset=5)

    assert last.status_code == 412, last.content
    assert "changed since you read it" in last.json()["error"]["message"]
    node.refresh_from_db()
    assert node.version == 2 and node.sha256 == hashlib.sha256(b"theirs").hexdigest()
    assert Upload.objects.get().state == Upload.State.FAILED
    assert used(owner_workspace) == before - 10  # the upload's reservation is given back


def test_tus_if_none_match_star_refuses_a_name_created_during_the_upload(api, owner, root):
    created = tus_create(api, length=4, root=root, filename="new.txt", HTTP_IF_NONE_MATCH="*")
    assert created.status_code == 201
    make_file(owner, root, "new.txt", b"first")
    assert tus_patch(api, created["Location"], b"late", offset=0).status_code == 412
    assert Node.objects.get(parent=root, name="new.txt").sha256 == hashlib.sha256(b"first").hexdigest()


def test_tus_if_match_under_a_relative_path_is_checked_at_completion(api, owner, root):
    from tests.files.test_tus import TUS, URL, meta

    node = make_file(owner, make_folder(owner, root, "sub"), "doc.txt", b"v1")
    created = api.post(
        URL,
        **TUS,
        HTTP_UPLOAD_LENGTH="2",
        HTTP_UPLOAD_METADATA=meta(filename="doc.txt", parent=root.pk, relative_path="sub/doc.txt"),
        HTTP_IF_MATCH=etag(b"v1"),
    )
    assert created.status_code == 201, created.content
    assert tus_patch(api, created["Location"], b"v2", offset=0).status_code == 204
    node.refresh_from_db()
    assert node.version == 2 and node.sha256 == hashlib.sha256(b"v2").hexdigest()
