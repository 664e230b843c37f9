"""Odd but possible inputs on the content routes get a clear 4xx, never a 500."""

from __future__ import annotations

import io

from files.models import Node
from files.uploads import file_upload


def test_a_non_ascii_digit_version_is_a_400(owner, root, api):
    node = file_upload(user=owner, parent=root, name="a.txt", stream=io.BytesIO(b"abc")).node
    for raw in ("²", "１", "9" * 30):
        response = api.get(f"/api/v1/nodes/{node.pk}/content?version={raw}")
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "invalid"


def test_a_suffix_range_on_an_empty_file_is_416(owner, root, api):
    node = file_upload(user=owner, parent=root, name="empty.txt", stream=io.BytesIO(b"")).node
    response = api.get(f"/api/v1/nodes/{node.pk}/content", HTTP_RANGE="bytes=-5")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */0"


def test_a_negative_content_length_is_a_400_and_stores_nothing(owner, root, api, owner_workspace):
    response = api.put(
        f"/api/v1/nodes/{root.pk}/children/neg.bin",
        data=b"abc",
        content_type="application/octet-stream",
        CONTENT_LENGTH="-5",
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Bad Content-Length."
    assert not Node.objects.filter(name="neg.bin").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 0
