"""Downloads stream in whole chunks (large blocks, not many small writes), ranges included."""

from __future__ import annotations

import os

from disks.models import ManifestChunk
from tests.files.api_helpers import make_file, url

DATA = os.urandom(600_000)


def test_download_sends_one_block_per_chunk_and_a_range_only_its_part(api, owner, root):
    node = make_file(owner, root, "data.bin", DATA)
    sizes = list(
        ManifestChunk.objects.filter(manifest=node.current_version.manifest)
        .order_by("seq")
        .values_list("chunk__size", flat=True)
    )
    assert len(sizes) > 4
    response = api.get(url(node, "content"))
    blocks = list(response.streaming_content)
    assert [len(b) for b in blocks] == sizes and b"".join(blocks) == DATA

    start, end = sizes[0] - 3, sizes[0] + sizes[1] + sizes[2] + 3  # ends 3 bytes into the 4th chunk
    response = api.get(url(node, "content"), HTTP_RANGE=f"bytes={start}-{end - 1}")
    blocks = list(response.streaming_content)
    assert response.status_code == 206
    assert [len(b) for b in blocks] == [3, sizes[1], sizes[2], 3] and b"".join(blocks) == DATA[start:end]
