"""Odd but possible inputs on the content routes get a clear 4xx, never a 500."""

from __future__ import annotations

import base64
import io

from files.models import Node, Upload
from files.uploads import file_upload
from tests.files.api_helpers import url


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


HUGE = str(10**26)  # past 2**63: no database integer holds it


def test_a_declared_size_past_any_integer_is_a_413_and_changes_nothing(owner, root, api, owner_workspace):
    """Each reached the reserving UPDATE, which overflowed (SQLite: OverflowError): a 500."""
    node = file_upload(user=owner, parent=root, name="a.txt", stream=io.BytesIO(b"abc")).node
    owner_workspace.refresh_from_db()
    used = owner_workspace.used_bytes
    metadata = ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}"
        for key, value in {"filename": "huge.bin", "parent": root.pk}.items()
    )
    for response in (
        api.put(
            url(root, "children/huge.bin"), data=b"abc", content_type="application/octet-stream", CONTENT_LENGTH=HUGE
        ),
        api.put(url(node, "content"), data=b"abc", content_type="application/octet-stream", CONTENT_LENGTH=HUGE),
        api.post(
            "/api/v1/uploads/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_LENGTH=HUGE, HTTP_UPLOAD_METADATA=metadata
        ),
    ):
        assert response.status_code == 413, response.content
        assert response.json()["error"]["code"] == "too_large"
    assert not Node.objects.filter(name="huge.bin").exists()
    assert not Upload.objects.exists()
    node.refresh_from_db()
    assert node.version == 1
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == used
