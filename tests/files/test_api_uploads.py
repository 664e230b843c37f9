"""Uploads through the API: multipart (many files, folder trees), raw PUT by name, new versions."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import encode_multipart

from files.models import Activity, FileVersion, Node
from tests.files.api_helpers import body_of, make_file, make_folder, url


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def used(workspace) -> int:
    workspace.refresh_from_db()
    return workspace.used_bytes


def test_multipart_uploads_many_files(api, root, owner_workspace):
    response = api.post(
        url(root, "children/"), {"file": [upload("a.txt", b"aaa"), upload("b.bin", b"\0" * 70_000)]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 2 and body["versioned"] == 0
    assert sorted(n["path"] for n in body["nodes"]) == ["/a.txt", "/b.bin"]
    b = Node.objects.get(parent=root, name="b.bin")
    assert b.size == 70_000
    assert body_of(api.get(url(b, "content"))) == b"\0" * 70_000
    assert used(owner_workspace) == 70_003


def test_multipart_relative_paths_create_the_folder_tree(api, root):
    files = [upload("x.jpg", b"1"), upload("y.jpg", b"22"), upload("z.txt", b"333")]
    paths = ["photos/2024/x.jpg", "photos/2024/y.jpg", "photos/notes/z.txt"]
    response = api.post(url(root, "children/"), {"file": files, "relative_path": paths}, format="multipart")
    assert response.status_code == 201, response.content
    assert sorted(n["path"] for n in response.json()["nodes"]) == ["/" + p for p in sorted(paths)]
    photos = Node.objects.get(parent=root, name="photos")
    assert sorted(Node.objects.filter(parent=photos).values_list("name", flat=True)) == ["2024", "notes"]


def test_multipart_upload_records_one_activity_entry_with_the_right_path(api, owner, root):
    # One file: the file's path; several: one entry for the folder they went into.
    folder = make_folder(owner, root, "inbox")
    one = api.post(url(folder, "children/"), {"file": [upload("a.txt", b"a")]}, format="multipart")
    two = api.post(
        url(folder, "children/"), {"file": [upload("b.txt", b"b"), upload("c.txt", b"c")]}, format="multipart"
    )

    assert one.status_code == 201 and two.status_code == 201, (one.content, two.content)
    entries = list(Activity.objects.filter(verb="upload").order_by("pk").values_list("path", "details"))
    assert entries == [("/inbox/a.txt", {}), ("/inbox", {"files": 2})]
    assert [n["path"] for n in one.json()["nodes"]] == ["/inbox/a.txt"]
    assert sorted(n["path"] for n in two.json()["nodes"]) == ["/inbox/b.txt", "/inbox/c.txt"]


def test_multipart_relative_paths_may_come_before_the_files(api, root):
    # Field order is the client's business: the paths are matched to the files by position.
    content = encode_multipart(
        "BoUnDaRy", {"relative_path": ["d/first.txt", "d/second.txt"], "file": [upload("1", b"1"), upload("2", b"2")]}
    )
    response = api.post(url(root, "children/"), content, content_type="multipart/form-data; boundary=BoUnDaRy")
    assert response.status_code == 201, response.content
    first = Node.objects.get(name="first.txt")
    assert body_of(api.get(url(first, "content"))) == b"1"


def test_same_name_becomes_a_new_version(api, owner, root):
    node = make_file(owner, root, "a.txt", b"one")
    response = api.post(url(root, "children/"), {"file": [upload("A.txt", b"two!")]}, format="multipart")
    assert response.status_code == 201
    assert response.json()["versioned"] == 1
    node.refresh_from_db()
    assert node.version == 2 and node.size == 4 and node.name == "a.txt"


@pytest.mark.parametrize("bad", ["a/../b.txt", "../x", "a/./b", "a\0b/c", "/", "x" * 256 + "/y"])
def test_bad_relative_paths_are_refused_and_store_nothing(api, root, owner_workspace, bad):
    before = (Node.objects.count(), FileVersion.objects.count(), used(owner_workspace))
    response = api.post(
        url(root, "children/"),
        {"file": [upload("ok.txt", b"fine"), upload("b.txt", b"bad")], "relative_path": ["ok/ok.txt", bad]},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_name"
    assert (Node.objects.count(), FileVersion.objects.count(), used(owner_workspace)) == before


def raw_multipart(files: list[tuple[str, bytes]], boundary: str = "XyZzY") -> tuple[bytes, str]:
    """A multipart body with file names exactly as given (Django's test helpers refuse odd names)."""
    body = b""
    for name, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("bad", ["..", ".", "a\x01b", "x" * 256])
def test_bad_file_names_are_refused(api, root, owner_workspace, bad):
    body, content_type = raw_multipart([("fine.txt", b"ok"), (bad, b"data")])
    response = api.post(url(root, "children/"), body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert Node.objects.filter(parent=root).count() == 0
    assert used(owner_workspace) == 0


def test_a_batch_clashing_with_a_folder_changes_nothing(api, owner, root, owner_workspace):
    make_folder(owner, root, "report")
    response = api.post(
        url(root, "children/"),
        {"file": [upload("a", b"1"), upload("b", b"2")], "relative_path": ["new/a.txt", "report"]},
        format="multipart",
    )
    assert response.status_code == 409
    assert not Node.objects.filter(name="new").exists()
    assert used(owner_workspace) == 0


def test_paths_count_must_match_files(api, root, owner_workspace):
    response = api.post(
        url(root, "children/"),
        {"file": [upload("a", b"1"), upload("b", b"2")], "relative_path": ["a"]},
        format="multipart",
    )
    assert response.status_code == 400
    assert used(owner_workspace) == 0


def test_files_must_be_in_the_file_field(api, root, owner_workspace):
    response = api.post(url(root, "children/"), {"document": [upload("a", b"1")]}, format="multipart")
    assert response.status_code == 400
    assert used(owner_workspace) == 0
    response = api.post(url(root, "children/"), {"relative_path": ["a"]}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_files"


def test_multipart_over_quota_is_refused_and_leaves_nothing(api, root, owner_workspace):
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 1000
    owner_workspace.save(update_fields=["used_bytes"])
    response = api.post(url(root, "children/"), {"file": [upload("big.bin", b"x" * 5000)]}, format="multipart")
    assert response.status_code == 413 and response.json()["error"]["code"] == "quota_exceeded"
    assert used(owner_workspace) == owner_workspace.quota_bytes - 1000
    assert not Node.objects.filter(name="big.bin").exists()


def test_multipart_does_not_use_django_spooling_handlers(api, root, settings):
    # If Django's default handlers were used, a file above this limit would go to a temporary file.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1
    settings.FILE_UPLOAD_TEMP_DIR = "/nonexistent-dir-uploads-must-not-spool"
    response = api.post(url(root, "children/"), {"file": [upload("a.bin", b"q" * 300_000)]}, format="multipart")
    assert response.status_code == 201, response.content


def test_put_by_name_creates_then_versions(api, root, owner_workspace):
    response = api.put(url(root, "children/notes.txt"), b"first", content_type="text/plain")
    assert response.status_code == 201 and response.json()["version"] == 1
    response = api.put(url(root, "children/Notes.txt"), b"second!", content_type="text/plain")
    assert response.status_code == 200 and response.json()["version"] == 2
    node = Node.objects.get(parent=root, name="notes.txt")
    assert body_of(api.get(url(node, "content"))) == b"second!"
    assert used(owner_workspace) == 5 + 7


def test_put_by_name_unicode_name_in_url(api, root):
    response = api.put(url(root, "children/r%C3%A9sum%C3%A9%20%E2%9C%93.txt"), b"x", content_type="text/plain")
    assert response.status_code == 201
    assert response.json()["name"] == "résumé ✓.txt"


@pytest.mark.parametrize("bad", ["a%2Fb", "a%00b", "..", "a%0Ab", "x" * 256])
def test_put_by_name_bad_names_are_400(api, root, owner_workspace, bad):
    response = api.put(url(root, f"children/{bad}"), b"x", content_type="text/plain")
    assert response.status_code == 400, response.content
    assert Node.objects.filter(parent=root).count() == 0 and used(owner_workspace) == 0


def test_put_by_name_onto_a_folder_is_409(api, owner, root):
    make_folder(owner, root, "docs")
    response = api.put(url(root, "children/docs"), b"x", content_type="text/plain")
    assert response.status_code == 409


def test_put_by_name_over_quota_is_refused_before_storing(api, root, owner_workspace):
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 3
    owner_workspace.save(update_fields=["used_bytes"])
    response = api.put(url(root, "children/a.bin"), b"12345", content_type="application/octet-stream")
    assert response.status_code == 413
    assert used(owner_workspace) == owner_workspace.quota_bytes - 3
    assert not Node.objects.filter(parent=root).exists()


def test_put_content_makes_a_new_version_storing_only_changed_chunks(api, owner, root, owner_workspace):
    import os

    from disks.models import Chunk

    data = os.urandom(1_000_000)
    node = make_file(owner, root, "big.bin", data)
    chunks_before = Chunk.objects.count()
    changed = data[:500_000] + b"EDIT" + data[500_004:]
    response = api.put(url(node, "content"), changed, content_type="application/octet-stream")
    assert response.status_code == 200 and response.json()["version"] == 2
    assert body_of(api.get(url(node, "content"))) == changed
    assert body_of(api.get(url(node, "content") + "?version=1")) == data
    new_chunks = Chunk.objects.count() - chunks_before
    assert 0 < new_chunks <= 3  # only the chunks around the edit (64 KiB average chunks in tests)
    assert used(owner_workspace) == 2_000_000


def test_put_content_on_a_folder_is_400(api, owner, root):
    folder = make_folder(owner, root, "f")
    assert api.put(url(folder, "content"), b"x", content_type="text/plain").status_code == 400


def test_mime_type_is_sniffed_from_content(api, root):
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\0" * 32
    response = api.put(url(root, "children/picture"), png, content_type="application/octet-stream")
    assert response.json()["mime_type"] == "image/png"
    response = api.post(url(root, "children/"), {"file": [upload("n.md", b"# title")]}, format="multipart")
    assert response.json()["nodes"][0]["mime_type"] in ("text/markdown", "text/plain")


def test_empty_file_upload(api, root):
    response = api.put(url(root, "children/empty.txt"), b"", content_type="text/plain")
    assert response.status_code == 201 and response.json()["size"] == 0
    node = Node.objects.get(name="empty.txt")
    response = api.get(url(node, "content"))
    assert response.status_code == 200 and body_of(response) == b""


def test_session_auth_multipart_with_csrf_header_streams_and_commits(owner, root):
    # A browser's session request: DRF's CSRF check reads request.POST before the view runs, which
    # runs our streaming parser with the session's user; the upload must still land exactly once.
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get("/api/v1/schema/")  # any page; the token comes from the cookie we set below
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post(url(root, "children/"), {"file": io.BytesIO(b"from a browser")}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert Node.objects.filter(parent=root).count() == 1


def test_session_auth_without_csrf_token_stores_nothing(owner, root, owner_workspace):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(url(root, "children/"), {"file": io.BytesIO(b"forged")})
    assert response.status_code == 403
    assert Node.objects.filter(parent=root).count() == 0
    assert used(owner_workspace) == 0


def test_multipart_batch_running_over_quota_midway_leaves_nothing(api, root, owner_workspace):
    from disks.models import Manifest

    owner_workspace.used_bytes = owner_workspace.quota_bytes - 150_000
    owner_workspace.save(update_fields=["used_bytes"])
    manifests = Manifest.objects.count()
    files = [upload("a.bin", b"a" * 100_000), upload("b.bin", b"b" * 100_000)]
    response = api.post(url(root, "children/"), {"file": files}, format="multipart")
    assert response.status_code == 413
    assert used(owner_workspace) == owner_workspace.quota_bytes - 150_000
    assert not Node.objects.filter(parent=root).exists()
    assert Manifest.objects.count() == manifests  # the first file's stored content was released too


def test_upload_into_a_100_gb_plan(api, root, owner_workspace):
    # The quota check multiplies plan_gb (a small integer column) by GB: it must not overflow 32-bit
    # arithmetic on PostgreSQL (CI's second pass runs this on PostgreSQL).
    owner_workspace.plan_gb = 100
    owner_workspace.save(update_fields=["plan_gb"])
    response = api.put(url(root, "children/big-plan.txt"), b"fits", content_type="text/plain")
    assert response.status_code == 201, response.content
    assert used(owner_workspace) == 4


# --- The streaming multipart parser (files/uploadhandler.py) on bodies a browser never sends -------

BOUNDARY = "test-boundary-7d1"


def post_raw(api, root, body: bytes):
    return api.generic("POST", url(root, "children/"), body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def part(name: str, data: bytes, *, filename: str | None = None, headers: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{headers}\r\n".encode() + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def test_a_body_cut_before_its_closing_boundary_stores_nothing(api, root, owner_workspace):
    body = part("file", b"a" * 1000, filename="a.bin") + part("file", b"b" * 5000, filename="b.bin")[:-100]
    response = post_raw(api, root, body)
    assert response.status_code == 400 and "closing boundary" in response.json()["error"]["message"]
    assert not Node.objects.filter(parent=root).exists()
    assert used(owner_workspace) == 0


def test_fields_and_files_in_any_order_with_a_preamble_and_an_epilogue(api, root):
    body = (
        b"This is a preamble.\r\n"
        + part("relative_path", "Fotos/Été/plage.jpg".encode())
        + part("file", b"\x00\r\n--not-the-boundary\r\n" * 50, filename="plage.jpg")
        + END
        + b"an epilogue"
    )
    response = post_raw(api, root, body)
    assert response.status_code == 201, response.content
    assert [n["path"] for n in response.json()["nodes"]] == ["/Fotos/Été/plage.jpg"]
    stored = Node.objects.get(name="plage.jpg")
    assert body_of(api.get(url(stored, "content"))) == b"\x00\r\n--not-the-boundary\r\n" * 50


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (part("file", b"x", filename="a", headers="Content-Transfer-Encoding: base64\r\n") + END, "not supported"),
        (part("file", b"x", filename="a", headers="X-Pad: " + "p" * 20_000 + "\r\n") + END, "header size"),
        (b"no boundary at all " * 10, "no boundary"),
    ],
    ids=["transfer-encoding", "huge-part-headers", "no-boundary"],
)
def test_malformed_multipart_bodies_are_400_and_store_nothing(api, root, owner_workspace, body, says):
    response = post_raw(api, root, body)
    assert response.status_code == 400 and says in response.json()["error"]["message"], response.content
    assert not Node.objects.filter(parent=root).exists()
    assert used(owner_workspace) == 0


def test_too_much_field_data_is_400(api, root, owner_workspace, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = part("relative_path", b"a" * 2000) + part("file", b"x", filename="a") + END
    response = post_raw(api, root, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_parts"
    assert used(owner_workspace) == 0
