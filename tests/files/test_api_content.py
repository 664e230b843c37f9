"""Downloads: streamed content with Range, ETag, Last-Modified, Content-Disposition; folders as zips."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from urllib.parse import unquote

import pytest

from tests.files.api_helpers import body_of, make_file, make_folder, url

DATA = os.urandom(300_000)


@pytest.fixture
def big(owner, root):
    return make_file(owner, root, "data.bin", DATA)


def test_download_streams_the_whole_content_with_headers(api, big):
    response = api.get(url(big, "content"))
    assert response.status_code == 200 and response.streaming
    assert body_of(response) == DATA
    assert response["Content-Length"] == str(len(DATA))
    assert response["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Last-Modified"].endswith("GMT")
    assert response["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=100000-", 100000, 300000),
        ("bytes=-500", 299500, 300000),
        ("bytes=299999-999999", 299999, 300000),
        ("bytes=65530-131080", 65530, 131081),
    ],
)
def test_single_range_is_206_with_the_right_bytes(api, big, header, start, end):
    response = api.get(url(big, "content"), HTTP_RANGE=header)
    assert response.status_code == 206
    assert body_of(response) == DATA[start:end]
    assert response["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response["Content-Length"] == str(end - start)


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=999999-1000000", "bytes=-0"])
def test_range_past_the_end_is_416(api, big, header):
    response = api.get(url(big, "content"), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_multi_range_or_garbage_gets_the_whole_content(api, big):
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=5-1"):
        response = api.get(url(big, "content"), HTTP_RANGE=header)
        assert response.status_code == 200 and len(body_of(response)) == len(DATA)


def test_if_none_match_gives_304(api, big):
    etag = api.get(url(big, "content"))["ETag"]
    response = api.get(url(big, "content"), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304 and response["ETag"] == etag and response.content == b""
    assert api.get(url(big, "content"), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_if_modified_since_gives_304(api, big):
    last_modified = api.get(url(big, "content"))["Last-Modified"]
    assert api.get(url(big, "content"), HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_304_has_no_content_type_and_the_200s_length(api, big, method):
    """It was sent as text/html with Content-Length 0 (RFC 9110 §15.4.5 and §8.6: a 304 has no
    content of its own; a Content-Length, if any, is the one the 200 would have)."""
    full = api.get(url(big, "content"))
    request = getattr(api, method)
    for path, headers in (
        (url(big, "content"), {"HTTP_IF_NONE_MATCH": full["ETag"]}),
        (url(big, "content"), {"HTTP_IF_MODIFIED_SINCE": full["Last-Modified"]}),
        (url(big, "content") + "?version=1", {"HTTP_IF_NONE_MATCH": f"W/{full['ETag']}"}),
    ):
        response = request(path, **headers)
        assert response.status_code == 304, response.content
        assert "Content-Type" not in response.headers, response.headers
        assert response["Content-Length"] == str(len(DATA)) and response.content == b""
        assert (response["ETag"], response["Last-Modified"]) == (full["ETag"], full["Last-Modified"])
        assert response["Cache-Control"] == full["Cache-Control"]


def test_if_range_with_a_stale_etag_sends_everything(api, big):
    response = api.get(url(big, "content"), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"stale"')
    assert response.status_code == 200
    etag = response["ETag"]
    assert api.get(url(big, "content"), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag).status_code == 206


@pytest.mark.parametrize(
    "name", ["résumé.pdf", "日本語 ファイル.txt", 'quote"s; and%.txt', "emoji 🎉.bin", "plain.txt"]
)
def test_content_disposition_is_rfc6266_for_any_name(api, owner, root, name):
    node = make_file(owner, root, name, b"x")
    header = api.get(url(node, "content"))["Content-Disposition"]
    kind, plain, star = [part.strip() for part in header.split(";", 1)[0:1] + header.split(";", 1)[1].rsplit(";", 1)]
    assert kind == "attachment"
    assert plain.startswith('filename="') and plain.endswith('"')
    assert all(32 <= ord(ch) < 127 for ch in plain)
    assert '"' not in plain[len('filename="') : -1]
    assert star.startswith("filename*=UTF-8''")
    assert unquote(star[len("filename*=UTF-8''") :]) == name


def test_download_an_older_version(api, owner, root):
    node = make_file(owner, root, "v.txt", b"one")
    api.put(url(node, "content"), b"two", content_type="text/plain")
    assert body_of(api.get(url(node, "content") + "?version=1")) == b"one"
    assert body_of(api.get(url(node, "content"))) == b"two"
    assert api.get(url(node, "content") + "?version=9").status_code == 404
    assert api.get(url(node, "content") + "?version=x").status_code == 400
    etag_v1 = api.get(url(node, "content") + "?version=1")["ETag"]
    assert etag_v1 == f'"{hashlib.sha256(b"one").hexdigest()}"'


def test_folder_content_is_400(api, owner, root):
    folder = make_folder(owner, root, "f")
    assert api.get(url(folder, "content")).status_code == 400


def test_zip_streams_the_live_tree_with_safe_names(api, owner, root):
    folder = make_folder(owner, root, "Project")
    make_file(owner, folder, "a.txt", b"alpha")
    sub = make_folder(owner, folder, "sub")
    make_file(owner, sub, "b é.bin", DATA)
    make_folder(owner, folder, "empty")
    trashed = make_file(owner, folder, "gone.txt", b"gone")
    api.delete(url(trashed))
    response = api.get(url(folder, "zip"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert "Project.zip" in response["Content-Disposition"]
    raw = body_of(response)
    assert response["Content-Length"] == str(len(raw))
    archive = zipfile.ZipFile(io.BytesIO(raw))
    names = sorted(archive.namelist())
    assert names == ["Project/a.txt", "Project/empty/", "Project/sub/b é.bin"]
    assert archive.read("Project/sub/b é.bin") == DATA
    assert archive.testzip() is None
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/")


def test_zip_of_a_file_is_400(api, big):
    assert api.get(url(big, "zip")).status_code == 400


def test_head_gives_the_headers_without_a_body(api, big):
    response = api.head(url(big, "content"))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA)) and body_of(response) == b""
