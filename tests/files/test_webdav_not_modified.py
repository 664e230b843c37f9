"""WebDAV's 304 Not Modified (a GET or HEAD with If-None-Match or If-Modified-Since that still
matches): no content, and so no Content-Length but the 200's (RFC 9110 §8.6). WsgiDAV sent
``Content-Length: 0``, which tells a cache that stores the 304's headers that the file is empty.
The WSGI app is called in process, as in test_webdav_locks.py."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from files.folders import folder_create
from files.models import Node
from tests.files.api_helpers import make_file
from tests.files.test_webdav_locks import dav_as


@pytest.fixture
def report(transactional_db, owner, team):
    # Committed rows (transactional_db): DavDispatcher closes a connection it finds inside a
    # transaction (close_old_connections), as a test's wrapping one is on PostgreSQL.
    root = Node.objects.get(workspace=team, parent__isnull=True)
    return make_file(owner, folder_create(user=owner, parent=root, name="docs"), "report.txt", b"twelve bytes")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("condition", ["If-None-Match", "If-Modified-Since"])
def test_not_modified_says_no_content_length_of_zero(owner, report, method, condition):
    call = dav_as(owner)
    status, ok, body = call(method, "/Acme/docs/report.txt")
    assert status == 200 and ok["Content-Length"] == "12"
    if method == "GET":
        assert body == b"twelve bytes"
    # A day past Last-Modified: WsgiDAV answers 304 only for a date strictly after it.
    later = format_datetime(parsedate_to_datetime(ok["Last-Modified"]) + timedelta(days=1), usegmt=True)
    header = {"If-None-Match": ok["ETag"], "If-Modified-Since": later}[condition]

    status, headers, body = call(
        method, "/Acme/docs/report.txt", **{f"HTTP_{condition.upper().replace('-', '_')}": header}
    )

    assert status == 304
    assert body == b""
    # None, or the 200's: never a length the file does not have.
    assert headers.get("Content-Length", "12") == "12", headers
    assert "Content-Type" not in headers


def test_other_answers_keep_their_content_length(owner, report):
    """Only the 304 loses it: a 200 still says how long the file is, an error page how long it is."""
    call = dav_as(owner)
    assert call("GET", "/Acme/docs/report.txt")[1]["Content-Length"] == "12"
    status, headers, body = call("GET", "/Acme/docs/missing.txt")
    assert status == 404 and headers["Content-Length"] == str(len(body))
