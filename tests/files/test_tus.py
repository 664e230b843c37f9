"""tus 1.0 resumable uploads: driven by tuspy (a real tus client) against a live server, plus the
protocol's edges through the API client."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import os
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader import Uploader

from accounts.services import token_create
from cloudstorage.errors import ServiceError
from disks.models import Chunk, Manifest, ManifestChunk, PendingTail
from disks.store import manifest_open
from files.models import FileVersion, Node, Upload
from files.resumable import uploads_expire

MB = 1024 * 1024
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
URL = "/api/v1/uploads/"


def meta(**values) -> str:
    return ",".join(f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in values.items())


def create(api, *, length, root, filename="f.bin", **extra):
    headers = {"HTTP_UPLOAD_LENGTH": str(length)} if length is not None else {"HTTP_UPLOAD_DEFER_LENGTH": "1"}
    return api.post(URL, **TUS, **headers, HTTP_UPLOAD_METADATA=meta(filename=filename, parent=root.pk), **extra)


def patch(api, location, body: bytes, *, offset: int, **extra):
    return api.generic(
        "PATCH",
        location,
        data=body,
        content_type="application/offset+octet-stream",
        **TUS,
        HTTP_UPLOAD_OFFSET=str(offset),
        **extra,
    )


def content_of(node: Node) -> bytes:
    node.refresh_from_db()
    return b"".join(manifest_open(manifest=node.current_version.manifest))


def chunk_ids(version: FileVersion) -> list:
    return list(
        ManifestChunk.objects.filter(manifest=version.manifest).order_by("seq").values_list("chunk_id", flat=True)
    )


def used(workspace) -> int:
    workspace.refresh_from_db(fields=["used_bytes"])
    return workspace.used_bytes


def staged_tails() -> list:
    return list(PendingTail.objects.all())


# --- A real client ------------------------------------------------------------------------------


@pytest.fixture
def live(live_server):
    yield live_server
    # The live server answers each connection in its own thread; one still open when the test
    # database goes away fails in the background. A client socket kept alive only by a reference
    # cycle (an exception's traceback) is closed by a collection; then the threads end.
    gc.collect()
    for _ in range(200):
        if not any("process_request_thread" in thread.name for thread in threading.enumerate()):
            break
        time.sleep(0.05)


@pytest.fixture
def tus_for(live):
    def make(user):
        issued = token_create(user=user, name="tus")
        return tus_client.TusClient(live.url + URL, headers={"Authorization": f"Bearer {issued.raw}"})

    return make


def test_50_mb_upload_interrupted_several_times_resumes_byte_identical(settings, tus_for, owner, root):
    settings.CLOUDSTORAGE_CHUNK_AVG = 256 * 1024
    data = os.urandom(50 * MB)
    client = tus_for(owner)
    metadata = {"filename": "big.bin", "parent": str(root.pk)}
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=3 * MB, metadata=metadata, upload_checksum=True)
    uploader.upload(stop_at=2 * MB)
    url = uploader.url
    assert url.startswith(client.url)
    reached = 2 * MB
    for stop in (7 * MB, 20 * MB + 12345, 38 * MB):
        # The connection "drops": this uploader is gone; a new one finds the offset with HEAD.
        uploader = client.uploader(file_stream=io.BytesIO(data), url=url, chunk_size=3 * MB, upload_checksum=True)
        assert uploader.offset == reached
        uploader.upload(stop_at=stop)
        reached = stop
        assert not Node.objects.filter(name="big.bin").exists()
    uploader = client.uploader(file_stream=io.BytesIO(data), url=url, chunk_size=3 * MB, upload_checksum=True)
    assert uploader.offset == 38 * MB
    uploader.upload()

    node = Node.objects.get(parent=root, name="big.bin")
    assert content_of(node) == data
    assert node.sha256 == hashlib.sha256(data).hexdigest()
    assert node.size == len(data)
    assert used(root.workspace) == len(data)
    upload = Upload.objects.get()
    assert upload.state == Upload.State.COMPLETE and upload.node_id == node.pk and upload.reserved_bytes == 0
    assert staged_tails() == []


def test_uploading_to_an_existing_name_makes_a_new_version(tus_for, owner, root):
    client = tus_for(owner)
    for body in (b"first version", b"second, longer version"):
        uploader = client.uploader(
            file_stream=io.BytesIO(body), chunk_size=5, metadata={"filename": "notes.txt", "parent": str(root.pk)}
        )
        uploader.upload()
    node = Node.objects.get(parent=root, name="notes.txt")
    assert node.version == 2 and content_of(node) == b"second, longer version"
    assert node.mime_type == "text/plain"


def test_another_users_upload_url_is_a_404(tus_for, owner, outsider, teammate, root):
    uploader = tus_for(owner).uploader(
        file_stream=io.BytesIO(b"x" * 1000), chunk_size=100, metadata={"filename": "a", "parent": str(root.pk)}
    )
    uploader.upload_chunk()
    for other in (outsider, teammate):
        with pytest.raises(TusCommunicationError) as caught:
            tus_for(other).uploader(file_stream=io.BytesIO(b"x" * 1000), url=uploader.url, chunk_size=100)
        assert caught.value.status_code == 404


def test_larger_than_free_quota_is_refused_at_creation_with_413(tus_for, owner, root, owner_workspace):
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 1000
    owner_workspace.save(update_fields=["used_bytes"])
    uploader = tus_for(owner).uploader(
        file_stream=io.BytesIO(b"x" * 1001), chunk_size=100, metadata={"filename": "a", "parent": str(root.pk)}
    )
    with pytest.raises(TusCommunicationError) as caught:
        uploader.upload()
    assert caught.value.status_code == 413
    assert used(owner_workspace) == owner_workspace.quota_bytes - 1000
    assert not Upload.objects.exists() and not Manifest.objects.exists()


# --- The protocol -------------------------------------------------------------------------------


def test_options_advertises_version_extensions_checksums_and_max_size(api, owner_workspace):
    response = api.options(URL)
    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0" and response["Tus-Version"] == "1.0.0"
    extensions = set(response["Tus-Extension"].split(","))
    assert {"creation", "creation-with-upload", "creation-defer-length", "termination", "checksum", "expiration"} <= (
        extensions
    )
    assert "sha1" in response["Tus-Checksum-Algorithm"].split(",")
    assert int(response["Tus-Max-Size"]) == owner_workspace.quota_bytes - used(owner_workspace)


def test_wrong_tus_version_is_412_with_tus_version(api, root):
    response = api.post(URL, HTTP_TUS_RESUMABLE="0.2.2", HTTP_UPLOAD_LENGTH="10")
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0" and response["Tus-Resumable"] == "1.0.0"
    assert not Upload.objects.exists()


def test_creation_reserves_quota_and_head_reports_the_offset(api, root, owner_workspace):
    before = used(owner_workspace)
    created = create(api, length=100, root=root)
    assert created.status_code == 201
    assert created["Upload-Offset"] == "0" and "Upload-Expires" in created
    assert used(owner_workspace) == before + 100
    patch(api, created["Location"], b"a" * 40, offset=0)
    head = api.head(created["Location"], **TUS)
    assert head.status_code == 200
    assert head["Upload-Offset"] == "40" and head["Upload-Length"] == "100"
    assert head["Cache-Control"] == "no-store"
    assert "filename" in head["Upload-Metadata"]


def test_wrong_offset_is_409_and_changes_nothing(api, root):
    location = create(api, length=100, root=root)["Location"]
    assert patch(api, location, b"a" * 10, offset=0).status_code == 204
    response = patch(api, location, b"b" * 10, offset=5)
    assert response.status_code == 409
    assert response["Tus-Resumable"] == "1.0.0"
    assert api.head(location, **TUS)["Upload-Offset"] == "10"


def test_patch_without_offset_content_type_is_415(api, root):
    location = create(api, length=10, root=root)["Location"]
    response = api.generic(
        "PATCH", location, data=b"x", content_type="application/octet-stream", **TUS, HTTP_UPLOAD_OFFSET="0"
    )
    assert response.status_code == 415


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_bad_checksum_is_460_and_the_offset_is_unchanged(settings, api, root, algorithm):
    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024  # so the rejected body really was cut into chunks
    location = create(api, length=300_000, root=root)["Location"]
    good = os.urandom(100_000)
    digest = base64.b64encode(hashlib.new(algorithm, good).digest()).decode()
    ok = patch(api, location, good, offset=0, HTTP_UPLOAD_CHECKSUM=f"{algorithm} {digest}")
    assert ok.status_code == 204 and ok["Upload-Offset"] == "100000"
    manifest = Upload.objects.get().manifest
    entries = ManifestChunk.objects.filter(manifest=manifest).count()

    bad = patch(api, location, os.urandom(100_000), offset=100_000, HTTP_UPLOAD_CHECKSUM=f"{algorithm} {digest}")
    assert bad.status_code == 460
    assert api.head(location, **TUS)["Upload-Offset"] == "100000"
    assert ManifestChunk.objects.filter(manifest=manifest).count() == entries

    rest = os.urandom(200_000)
    assert patch(api, location, rest, offset=100_000).status_code == 204
    node = Node.objects.get(name="f.bin")
    assert content_of(node) == good + rest
    assert node.sha256 == hashlib.sha256(good + rest).hexdigest()


def test_unsupported_checksum_algorithm_is_400(api, root):
    location = create(api, length=10, root=root)["Location"]
    response = patch(api, location, b"x", offset=0, HTTP_UPLOAD_CHECKSUM="crc32 AAAA")
    assert response.status_code == 400


def test_creation_with_upload_stores_the_first_bytes(api, root):
    response = api.post(
        URL,
        data=b"hello ",
        content_type="application/offset+octet-stream",
        **TUS,
        HTTP_UPLOAD_LENGTH="11",
        HTTP_UPLOAD_METADATA=meta(filename="hi.txt", parent=root.pk),
    )
    assert response.status_code == 201 and response["Upload-Offset"] == "6"
    assert patch(api, response["Location"], b"world", offset=6).status_code == 204
    assert content_of(Node.objects.get(name="hi.txt")) == b"hello world"


def test_deferred_length_is_declared_later_and_quota_follows(api, root, owner_workspace):
    before = used(owner_workspace)
    location = create(api, length=None, root=root, filename="stream.log")["Location"]
    assert api.head(location, **TUS)["Upload-Defer-Length"] == "1"
    assert patch(api, location, b"a" * 1000, offset=0).status_code == 204
    assert used(owner_workspace) == before + 1000
    done = patch(api, location, b"b" * 500, offset=1000, HTTP_UPLOAD_LENGTH="1500")
    assert done.status_code == 204
    node = Node.objects.get(name="stream.log")
    assert content_of(node) == b"a" * 1000 + b"b" * 500
    assert used(owner_workspace) == before + 1500


def test_relative_path_creates_the_folders(api, root):
    response = api.post(
        URL,
        **TUS,
        HTTP_UPLOAD_LENGTH="3",
        HTTP_UPLOAD_METADATA=meta(filename="c.txt", parent=root.pk, relative_path="a/b/c.txt"),
    )
    patch(api, response["Location"], b"abc", offset=0)
    node = Node.objects.get(name="c.txt")
    assert node.parent.name == "b" and node.parent.parent.name == "a" and node.parent.parent.parent_id == root.pk


def test_empty_upload_completes_at_creation(api, root):
    response = create(api, length=0, root=root, filename="empty")
    assert response.status_code == 201
    assert Node.objects.get(name="empty").size == 0


def test_body_past_the_length_is_refused(api, root):
    location = create(api, length=5, root=root)["Location"]
    assert patch(api, location, b"123456", offset=0).status_code == 413
    assert api.head(location, **TUS)["Upload-Offset"] == "0"


def test_termination_is_404_afterwards_and_gives_bytes_back(settings, api, root, owner_workspace):
    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    before = used(owner_workspace)
    location = create(api, length=300_000, root=root)["Location"]
    patch(api, location, os.urandom(200_000), offset=0)
    manifest_id = Upload.objects.get().manifest_id
    assert ManifestChunk.objects.filter(manifest_id=manifest_id).exists()
    assert staged_tails()

    assert api.delete(location, **TUS).status_code == 204
    assert api.head(location, **TUS).status_code == 404
    assert patch(api, location, b"x", offset=200_000).status_code == 404
    assert used(owner_workspace) == before
    assert not Manifest.objects.filter(pk=manifest_id).exists()
    assert not Chunk.objects.filter(released_at__isnull=True).exists()  # all handed to GC
    assert staged_tails() == []


def test_a_big_tail_is_staged_in_bounded_rows_and_read_back_whole(settings, api, root):
    # Zeros never hit a content-defined cut point: the whole first PATCH stays an uncut tail.
    settings.CLOUDSTORAGE_CHUNK_AVG = 1024 * 1024
    first, second = bytes(700_000), os.urandom(300_000)
    location = create(api, length=1_000_000, root=root)["Location"]
    assert patch(api, location, first, offset=0).status_code == 204
    rows = sorted(staged_tails(), key=lambda row: row.part)
    assert [row.part for row in rows] == [0, 1, 2]
    assert all(len(row.sealed) <= PendingTail.PART_BYTES for row in rows)
    assert sum(len(row.sealed) for row in rows) > 700_000

    assert patch(api, location, second, offset=700_000).status_code == 204
    assert content_of(Node.objects.get(name="f.bin")) == first + second
    assert staged_tails() == []


def test_a_tail_with_a_part_missing_is_refused_not_read_short(settings, api, root):
    settings.CLOUDSTORAGE_CHUNK_AVG = 1024 * 1024
    location = create(api, length=1_000_000, root=root)["Location"]
    assert patch(api, location, bytes(700_000), offset=0).status_code == 204
    PendingTail.objects.filter(part=1).delete()
    response = patch(api, location, os.urandom(300_000), offset=700_000)
    assert response.status_code == 503 and b"damaged" in response.content, response.content
    assert not Node.objects.filter(name="f.bin").exists()


def test_expired_upload_is_410_and_the_beat_job_reclaims_it(settings, api, root, owner_workspace):
    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    before = used(owner_workspace)
    location = create(api, length=300_000, root=root)["Location"]
    created = Upload.objects.get()
    assert created.expires_at > timezone.now() + timedelta(days=6, hours=23)
    patch(api, location, os.urandom(200_000), offset=0)
    assert ManifestChunk.objects.filter(manifest_id=created.manifest_id).exists()
    Upload.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    assert uploads_expire()["expired"] == 1
    assert used(owner_workspace) == before
    assert not Manifest.objects.filter(pk=created.manifest_id).exists()
    assert staged_tails() == []
    assert api.head(location, **TUS).status_code == 410
    assert patch(api, location, b"x", offset=200_000).status_code == 410


def test_expired_upload_is_410_even_before_the_beat_job(api, root, owner_workspace):
    before = used(owner_workspace)
    location = create(api, length=100, root=root)["Location"]
    Upload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert patch(api, location, b"x", offset=0).status_code == 410
    assert used(owner_workspace) == before


def test_outsider_and_anonymous_cannot_touch_an_upload(api, outsider_api, anon_api, root):
    location = create(api, length=100, root=root)["Location"]
    assert outsider_api.head(location, **TUS).status_code == 404
    assert patch(outsider_api, location, b"x", offset=0).status_code == 404
    assert outsider_api.delete(location, **TUS).status_code == 404
    assert anon_api.head(location, **TUS).status_code in (401, 403)
    assert Upload.objects.get().offset == 0


def test_outsider_cannot_create_an_upload_into_someone_elses_folder(outsider_api, root):
    assert create(outsider_api, length=10, root=root).status_code == 404
    assert not Upload.objects.exists()


def test_a_folder_trashed_during_the_upload_fails_it_and_gives_bytes_back(api, owner, root, owner_workspace):
    from files.folders import folder_create
    from files.trash import node_trash

    folder = folder_create(user=owner, parent=root, name="inbox")
    before = used(owner_workspace)
    location = create(api, length=10, root=folder)["Location"]
    patch(api, location, b"12345", offset=0)
    node_trash(user=owner, node=folder)
    response = patch(api, location, b"67890", offset=5)
    assert response.status_code == 409
    assert used(owner_workspace) == before
    assert not FileVersion.objects.exists()
    assert api.head(location, **TUS).status_code == 410


class CorruptingUploader(Uploader):
    """A client that announces SHA-1 but hashes with MD5: every checksum it sends is wrong."""

    CHECKSUM_ALGORITHM_PAIR = ("sha1", hashlib.md5)


def test_tuspy_gets_460_for_a_wrong_checksum_and_the_offset_stays(tus_for, owner, root):
    client = tus_for(owner)
    good = client.uploader(
        file_stream=io.BytesIO(b"x" * 200), chunk_size=100, metadata={"filename": "a", "parent": str(root.pk)}
    )
    good.upload_chunk()
    bad = CorruptingUploader(
        client=client, url=good.url, file_stream=io.BytesIO(b"x" * 200), chunk_size=100, upload_checksum=True
    )
    assert bad.offset == 100
    with pytest.raises(TusUploadFailed) as caught:
        bad.upload_chunk()
    assert caught.value.status_code == 460
    assert Upload.objects.get().offset == 100


def test_a_patch_cut_short_by_a_dropped_connection_keeps_what_arrived(live, owner, root):
    import socket
    from urllib.parse import urlsplit

    live_server = live
    issued = token_create(user=owner, name="raw")
    client = tus_client.TusClient(live_server.url + URL, headers={"Authorization": f"Bearer {issued.raw}"})
    data = os.urandom(300_000)
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=1000, metadata={"filename": "cut.bin"})
    uploader.upload_chunk()
    path = urlsplit(uploader.url).path
    host, port = urlsplit(live_server.url).hostname, urlsplit(live_server.url).port
    with socket.create_connection((host, port)) as sock:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {issued.raw}\r\n"
            "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 1000\r\nContent-Length: {len(data) - 1000}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[1000:150_000])
    for _ in range(100):  # the server notices the end of the body, keeps it, lets go of the upload
        upload = Upload.objects.get()
        if upload.offset == 150_000 and upload.locked_until is None:
            break
        time.sleep(0.05)
    resumed = client.uploader(file_stream=io.BytesIO(data), url=uploader.url, chunk_size=100_000)
    assert resumed.offset == 150_000
    resumed.upload()
    assert content_of(Node.objects.get(name="cut.bin")) == data


def test_the_beat_job_finishes_an_upload_whose_completion_was_cut_short(settings, api, root):
    location = create(api, length=6, root=root, filename="late.txt")["Location"]
    # As if the process died right after the last PATCH was committed, before completing.
    Upload.objects.update(length=None)
    patch(api, location, b"abcdef", offset=0)
    Upload.objects.update(
        length=6, created_at=timezone.now() - timedelta(seconds=settings.CLOUDSTORAGE_UPLOAD_LEASE * 2)
    )
    assert not Node.objects.filter(name="late.txt").exists()
    assert uploads_expire()["completed"] == 1
    assert content_of(Node.objects.get(name="late.txt")) == b"abcdef"


def test_sha256_state_is_carried_between_requests_on_this_python(api, root):
    from disks import resumable

    assert resumable.SHA_STATE_SUPPORTED  # the self-test passed: completion hashes nothing again
    location = create(api, length=10, root=root)["Location"]
    patch(api, location, b"01234", offset=0)
    assert Upload.objects.get().store_state["sha"]
    patch(api, location, b"56789", offset=5)
    assert Node.objects.get(name="f.bin").sha256 == hashlib.sha256(b"0123456789").hexdigest()


def test_sha256_states_of_either_format_continue_exactly():
    from disks import sha_state

    openssl = sha_state.sha_new()
    openssl.update(b"x" * 100)
    saved = sha_state.sha_save(openssl)
    assert saved.startswith(sha_state.OPENSSL_PREFIX)
    resumed = sha_state.sha_load(saved)
    resumed.update(b"y" * 70_000)
    assert resumed.hexdigest() == hashlib.sha256(b"x" * 100 + b"y" * 70_000).hexdigest()

    # A state saved by an earlier version (CPython's builtin SHA-256, no prefix) still loads.
    if sha_state.BUILTIN_STATE:
        builtin = sha_state._builtin_new()
        builtin.update(b"abc")
        old = sha_state.sha_load(base64.b64encode(sha_state._builtin_save(builtin)).decode())
        old.update(b"def")
        assert old.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_without_a_savable_sha256_state_the_hash_is_computed_at_completion(monkeypatch, api, root):
    from disks import resumable

    # As on a Python whose builtin SHA-256 layout the import-time self-test does not recognise.
    monkeypatch.setattr(resumable, "SHA_STATE_SUPPORTED", False)
    location = create(api, length=10, root=root)["Location"]
    patch(api, location, b"01234", offset=0)
    assert Upload.objects.get().store_state["sha"] is None
    patch(api, location, b"56789", offset=5)
    assert Node.objects.get(name="f.bin").sha256 == hashlib.sha256(b"0123456789").hexdigest()


def test_a_patch_while_another_request_writes_the_upload_is_423(api, root):
    location = create(api, length=10, root=root)["Location"]
    Upload.objects.update(locked_until=timezone.now() + timedelta(minutes=1))
    response = patch(api, location, b"x", offset=0)
    assert response.status_code == 423
    assert Upload.objects.get().offset == 0
    Upload.objects.update(locked_until=timezone.now() - timedelta(seconds=1))  # a crashed writer's lease lapses
    assert patch(api, location, b"x", offset=0).status_code == 204


def test_an_upload_whose_stored_part_was_collected_fails_with_410_and_frees_its_quota(api, root, owner_workspace):
    from disks.gc import chunks_gc

    before = used(owner_workspace)
    location = create(api, length=10, root=root)["Location"]
    patch(api, location, b"12345", offset=0)
    manifest = Upload.objects.get().manifest
    assert manifest.touched_at >= Upload.objects.get().expires_at  # the GC leaves it alone until expiry
    assert chunks_gc()["abandoned_uploads"] == 0
    chunks_gc(pending_grace=-timedelta(days=30))  # an operator's run that ignores the expiry
    assert patch(api, location, b"67890", offset=5).status_code == 410
    assert used(owner_workspace) == before
    assert api.head(location, **TUS).status_code == 410


def test_x_http_method_override_turns_a_post_into_a_patch(api, root):
    location = create(api, length=3, root=root, filename="o.txt")["Location"]
    response = api.post(
        location,
        data=b"abc",
        content_type="application/offset+octet-stream",
        **TUS,
        HTTP_UPLOAD_OFFSET="0",
        HTTP_X_HTTP_METHOD_OVERRIDE="PATCH",
    )
    assert response.status_code == 204 and response["Upload-Offset"] == "3"
    assert content_of(Node.objects.get(name="o.txt")) == b"abc"


def test_a_stalled_request_whose_lease_was_taken_over_stops_and_leaves_the_upload_intact(settings, owner, root):
    import uuid

    from files.resumable import upload_create
    from files.upload_writing import upload_write

    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    settings.CLOUDSTORAGE_UPLOAD_LEASE = 0  # check the lease on every block
    data = os.urandom(300_000)
    upload = upload_create(user=owner, filename="s.bin", parent_id=root.pk, length=len(data))
    body = [data[:150_000], data[150_000:]]

    def read(size):
        if len(body) == 1:
            # The connection went silent, the lease lapsed and a retry took the upload over.
            Upload.objects.update(lock_token=uuid.uuid4(), locked_until=timezone.now() + timedelta(minutes=1))
        return body.pop(0) if body else b""

    with pytest.raises(ServiceError) as caught:
        upload_write(upload=upload, offset=0, read=read, content_length=len(data))
    assert caught.value.status_code == 409
    upload.refresh_from_db()
    assert upload.offset == 0 and upload.state == Upload.State.ACTIVE

    Upload.objects.update(lock_token=None, locked_until=None)  # the retry finished without writing
    upload_write(upload=upload, offset=0, read=io.BytesIO(data).read, content_length=len(data))
    assert content_of(Node.objects.get(name="s.bin")) == data


def test_a_request_that_stalls_in_its_checkpoint_leaves_what_the_takeover_committed(settings, owner, root, monkeypatch):
    from disks.resumable import ResumableWriter
    from files.resumable import upload_create
    from files.upload_writing import upload_write

    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    data = os.urandom(300_000)
    upload = upload_create(user=owner, filename="t.bin", parent_id=root.pk, length=len(data))
    upload_write(upload=upload, offset=0, read=io.BytesIO(data[:100_000]).read, content_length=100_000)
    original = ResumableWriter.checkpoint
    stalls = [True]

    def stalling_checkpoint(writer):
        state = original(writer)
        if stalls.pop() if stalls else False:
            # Stalled past its lease right here (renew() was not due): a retry of the same PATCH
            # takes the upload over, writes the same bytes and commits the same offset.
            Upload.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
            retry = Upload.objects.get()
            upload_write(
                upload=retry, offset=100_000, read=io.BytesIO(data[100_000:200_000]).read, content_length=100_000
            )
        return state

    monkeypatch.setattr(ResumableWriter, "checkpoint", stalling_checkpoint)
    upload.refresh_from_db()
    with pytest.raises(ServiceError) as caught:
        upload_write(upload=upload, offset=100_000, read=io.BytesIO(data[100_000:200_000]).read, content_length=100_000)
    assert caught.value.status_code == 409

    upload.refresh_from_db()
    assert upload.offset == 200_000
    upload_write(upload=upload, offset=200_000, read=io.BytesIO(data[200_000:]).read, content_length=100_000)
    assert content_of(Node.objects.get(name="t.bin")) == data


def _takeover_commits(data, *, start, stop):
    """A retry of the PATCH takes the upload over (the stalled request's lease lapsed), writes
    [start, stop) and has that offset acknowledged."""
    from files.upload_writing import upload_write

    Upload.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    upload_write(
        upload=Upload.objects.get(), offset=start, read=io.BytesIO(data[start:stop]).read, content_length=stop - start
    )
    assert Upload.objects.get().offset == stop


@pytest.mark.parametrize("ending", ["no bytes", "connection reset with a checksum"])
def test_a_stalled_request_that_fails_after_a_takeover_keeps_what_the_takeover_committed(settings, owner, root, ending):
    """A request that stalled past its lease and then fails (its body ended empty, or was cut short
    under an Upload-Checksum) rolls back nothing: the entries from its base on are the ones the
    request that took over has committed, under an offset already acknowledged."""
    from files.resumable import upload_create
    from files.upload_writing import upload_write

    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    data = os.urandom(300_000)
    upload = upload_create(user=owner, filename="t.bin", parent_id=root.pk, length=len(data))
    upload_write(upload=upload, offset=0, read=io.BytesIO(data[:100_000]).read, content_length=100_000)
    upload.refresh_from_db()
    body = [] if ending == "no bytes" else [data[100_000:120_000]]

    def read(size):
        if body:
            return body.pop()
        _takeover_commits(data, start=100_000, stop=200_000)
        if ending == "no bytes":
            return b""  # the silent connection is closed at last
        raise OSError("connection reset")

    checksum = None if ending == "no bytes" else ("sha256", hashlib.sha256(data[100_000:200_000]).digest())
    try:
        upload_write(upload=upload, offset=100_000, read=read, content_length=100_000, checksum=checksum)
    except ServiceError as error:
        assert error.status_code == 460
    else:
        assert ending == "no bytes"

    upload.refresh_from_db()
    assert upload.offset == 200_000
    upload_write(upload=upload, offset=200_000, read=io.BytesIO(data[200_000:]).read, content_length=100_000)
    node = Node.objects.get(name="t.bin")
    assert content_of(node) == data


@pytest.mark.parametrize(
    "lost", ["share revoked", "share revoked, folder in the trash", "membership ended", "role lowered to viewer"]
)
def test_a_patch_after_the_creator_lost_write_access_fails_the_upload_and_gives_its_quota_back(db, lost):
    """Access is asked again on every PATCH, not only at the creation and the completion: a grantee
    whose share was revoked, or a member removed or made a viewer, kept streaming bytes into the
    workspace and (with a deferred length) taking its quota for the upload's 7 days."""
    from accounts.models import Membership
    from files.access import node_get_for_user
    from files.models import Share
    from files.sharing import share_create
    from files.trash import node_trash
    from tests.factories import UserFactory, team_workspace
    from tests.files.sharing_helpers import client_for, folder, root_of

    alice, gus = UserFactory(email="alice@example.com"), UserFactory(email="gus@example.com")
    shared = lost.startswith("share revoked")
    team = team_workspace(alice, "Alice's team", members={} if shared else {gus: "member"})
    inbox = folder(alice, root_of(team), "inbox")
    if shared:
        share_create(
            actor=alice, node=node_get_for_user(user=alice, node_id=inbox.pk), email=gus.email, permission="edit"
        )
    gus_api = client_for(gus)
    location = gus_api.post(
        URL, **TUS, HTTP_UPLOAD_DEFER_LENGTH="1", HTTP_UPLOAD_METADATA=meta(filename="blob.bin", parent=inbox.pk)
    )["Location"]
    assert patch(gus_api, location, b"x" * 100_000, offset=0).status_code == 204
    before = used(team)
    assert before >= 100_000

    if shared:
        Share.objects.filter(node=inbox, user=gus).delete()
        if lost.endswith("in the trash"):
            node_trash(user=alice, node=Node.objects.get(pk=inbox.pk))
    elif lost == "membership ended":
        Membership.objects.filter(workspace=team, user=gus).delete()
    else:
        Membership.objects.filter(workspace=team, user=gus).update(role=Membership.Role.VIEWER)
    response = patch(gus_api, location, b"y" * 300_000, offset=100_000)

    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert used(team) == before - 100_000  # what it held is given back, nothing more taken
    upload = Upload.objects.get()
    assert upload.state == Upload.State.FAILED and upload.offset == 100_000
    assert not Manifest.objects.exists()  # its stored part went too...
    assert not Chunk.objects.filter(released_at__isnull=True).exists()  # ...its chunks handed to GC
    assert patch(gus_api, location, b"y", offset=100_000).status_code == 410
    assert not Node.objects.filter(name="blob.bin").exists()


def test_a_patch_into_a_folder_in_the_trash_goes_on_and_the_completion_decides(api, owner, root):
    from files.trash import node_trash, trash_restore
    from tests.files.sharing_helpers import folder

    inbox = folder(owner, root, "inbox")
    location = create(api, length=6, root=inbox, filename="later.txt")["Location"]
    node_trash(user=owner, node=inbox)
    assert patch(api, location, b"abc", offset=0).status_code == 204  # it may be restored before the end
    trash_restore(user=owner, node=Node.objects.get(pk=inbox.pk))
    assert patch(api, location, b"def", offset=3).status_code == 204
    assert content_of(Node.objects.get(name="later.txt")) == b"abcdef"


def test_operators_see_uploads_in_the_admin_and_can_expire_one(client, api, root, owner_workspace):
    from tests.factories import UserFactory

    before = used(owner_workspace)
    create(api, length=100, root=root, filename="held.bin")
    staff = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert b"held.bin" in client.get("/admin/files/upload/").content
    upload = Upload.objects.get()
    assert client.get(f"/admin/files/upload/{upload.pk}/change/").status_code == 200
    client.post("/admin/files/upload/", {"action": "reclaim", "_selected_action": [str(upload.pk)]})
    assert Upload.objects.get().state == Upload.State.EXPIRED
    assert used(owner_workspace) == before


def test_patch_boundaries_do_not_move_chunk_boundaries_so_content_deduplicates(settings, api, owner, root):
    from files.uploads import file_upload

    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    data = os.urandom(1_000_000)
    plain = file_upload(user=owner, parent=root, name="plain.bin", stream=io.BytesIO(data))
    chunks_before = Chunk.objects.count()

    location = create(api, length=len(data), root=root, filename="resumed.bin")["Location"]
    offset = 0
    for size in (1, 70_001, 4_096, 333_333, 250_000, 10**6):
        piece = data[offset : offset + size]
        assert patch(api, location, piece, offset=offset).status_code == 204
        offset += len(piece)
        if offset == len(data):
            break

    resumed = Node.objects.get(name="resumed.bin").current_version
    assert Chunk.objects.count() == chunks_before  # every chunk was already stored: nothing new
    assert chunk_ids(resumed) == chunk_ids(plain)


def test_tail_between_patches_is_sealed_in_the_database(settings, api, root):
    # Any web node may serve the next PATCH: nothing of the upload waits on one node's disk.
    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    data = os.urandom(150_000)
    location = create(api, length=len(data), root=root)["Location"]
    assert patch(api, location, data[:100_000], offset=0).status_code == 204

    (tail,) = staged_tails()
    state = Upload.objects.get().store_state
    assert tail.received == 100_000 and state["received"] == 100_000
    plain_tail = data[state["cut"] : 100_000]
    assert plain_tail and plain_tail[:64] not in bytes(tail.sealed)

    assert patch(api, location, data[100_000:], offset=100_000).status_code == 204
    assert content_of(Node.objects.get(name="f.bin")) == data
    assert staged_tails() == []


def test_a_tail_staged_before_writer_tokens_is_still_read(settings, api, root, owner_workspace):
    """Rows and states from before the writer's token (token NULL) resume as they were, on both
    databases (PostgreSQL reads tails with its own statement)."""
    from disks.crypto import workspace_keys
    from disks.resumable import PendingState, _tail_read, _tail_rows, _tail_seal, _tail_store

    settings.CLOUDSTORAGE_CHUNK_AVG = 1024 * 1024
    first, second = bytes(700_000), os.urandom(300_000)
    location = create(api, length=1_000_000, root=root)["Location"]
    assert patch(api, location, first, offset=0).status_code == 204
    upload = Upload.objects.get()
    state = PendingState.from_json(upload.store_state)
    keys = workspace_keys(workspace_id=owner_workspace.pk)
    staged = _tail_read(keys, state)
    _tail_rows(state).delete()
    state.tail_token = None  # as a writer before tokens staged it: no token, sealed without one
    _tail_store(state, _tail_seal(keys, state, staged))
    Upload.objects.filter(pk=upload.pk).update(store_state=state.to_json())
    assert [row.token for row in staged_tails()] == [None, None, None]

    assert patch(api, location, second, offset=700_000).status_code == 204
    assert content_of(Node.objects.get(name="f.bin")) == first + second
    assert staged_tails() == []
