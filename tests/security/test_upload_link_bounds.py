"""An upload link (a file request) takes files from anyone who has it: a free name for each is found
in one query however many files already share it, and the number of files one request and one
link in an hour may bring is bounded, since quota bounds only bytes and empty files cost none
(audit 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloudstorage.errors import ServiceError
from files.links import link_upload_reserve
from files.models import Node, PublicLink
from tests.factories import personal_workspace
from tests.files.sharing_helpers import folder, root_of


def _file(name: str, data: bytes = b""):
    return SimpleUploadedFile(name, data, content_type="text/plain")


def _upload_link(api, inbox: Node) -> str:
    response = api.post(f"/api/v1/nodes/{inbox.pk}/links/", {"permission": "upload"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["token"]


def _send(token: str, *names: str):
    return Client().post(f"/s/{token}/upload", {"file": [_file(name) for name in names]})


def _names(inbox: Node) -> set[str]:
    return set(Node.objects.filter(parent=inbox).values_list("name", flat=True))


def test_a_free_name_costs_the_same_queries_next_to_a_hundred_taken(owner, api):
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    token = _upload_link(api, inbox)
    assert _send(token, *["a.txt"] * 100).status_code == 302
    assert {"a.txt", "a (2).txt", "a (100).txt"} <= _names(inbox)

    with CaptureQueriesContext(connection) as fresh:
        assert _send(token, "b.txt").status_code == 302
    with CaptureQueriesContext(connection) as crowded:
        assert _send(token, "A.TXT").status_code == 302
    # Before, each taken name was one more query: 100 + the upload's own.
    assert len(crowded) == len(fresh), (len(fresh), len(crowded))
    assert "A (101).TXT" in _names(inbox)


def test_a_long_name_is_cut_to_fit_its_number(owner, api):
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    token = _upload_link(api, inbox)
    long = "é" * 125 + ".txt"  # 254 bytes
    assert _send(token, long, long, long).status_code == 302
    names = _names(inbox)
    assert names == {long, "é" * 123 + " (2).txt", "é" * 123 + " (3).txt"}
    assert all(len(name.encode()) <= 255 for name in names)


def test_one_request_brings_at_most_the_per_request_cap(owner, api, settings):
    settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_REQUEST = 3
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    token = _upload_link(api, inbox)

    response = _send(token, "1.txt", "2.txt", "3.txt", "4.txt")
    assert response.status_code == 400
    assert b"At most 3 files can be sent at once" in response.content
    assert _names(inbox) == set()
    assert _send(token, "1.txt", "2.txt", "3.txt").status_code == 302


def test_one_link_takes_at_most_the_hourly_cap(owner, api, settings):
    settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR = 5
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    token = _upload_link(api, inbox)

    assert _send(token, "1.txt", "2.txt", "3.txt").status_code == 302
    refused = _send(token, "4.txt", "5.txt", "6.txt")
    assert refused.status_code == 429
    assert b"at most 5 files an hour" in refused.content
    assert _names(inbox) == {"1.txt", "2.txt", "3.txt"}
    assert _send(token, "4.txt", "5.txt").status_code == 302
    assert _send(token, "6.txt").status_code == 429

    PublicLink.objects.filter(token=token).update(uploads_window_start=timezone.now() - timedelta(minutes=61))
    assert _send(token, "6.txt", "7.txt").status_code == 302
    assert len(_names(inbox)) == 7


def test_a_request_of_more_files_than_an_hour_takes_is_400_not_429(owner, api, settings):
    # Retrying could never help it: it is told to send fewer at once, not to try again later.
    settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR = 3
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    token = _upload_link(api, inbox)

    response = _send(token, "1.txt", "2.txt", "3.txt", "4.txt")
    assert response.status_code == 400, response.status_code
    assert b"At most 3 files can be sent at once" in response.content
    assert b"try again later" not in response.content
    assert _names(inbox) == set()
    # Nothing was counted against the hour: three still come, and a fourth alone is then 429.
    assert PublicLink.objects.get(token=token).uploads_in_window == 0
    assert _send(token, "1.txt", "2.txt", "3.txt").status_code == 302
    assert _send(token, "4.txt").status_code == 429


def test_link_upload_reserve_refuses_more_than_an_hour_takes_with_400(owner, api, settings):
    settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR = 3
    inbox = folder(owner, root_of(personal_workspace(owner)), "inbox")
    link = PublicLink.objects.get(token=_upload_link(api, inbox))

    with pytest.raises(ServiceError) as refused:
        link_upload_reserve(link=link, count=4)
    assert (refused.value.status_code, refused.value.code) == (400, "too_many_files")
    assert "send the rest separately" in refused.value.message
    link_upload_reserve(link=link, count=2)
    with pytest.raises(ServiceError) as later:
        link_upload_reserve(link=link, count=2)
    assert later.value.status_code == 429
