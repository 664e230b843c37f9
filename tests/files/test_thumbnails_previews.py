"""Thumbnails (made by the Celery task queued on commit, stored through the chunk store, in no
quota, released with their file) and the preview responses of the dashboard and public links."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.test import Client
from PIL import Image, ImageFile

from disks.store import Manifest
from files.access import node_get_for_user
from files.links import link_create
from files.models import Thumbnail
from files.thumbnails import MAX_SOURCE_PIXELS
from files.trash import node_purge, node_trash
from tests.files.api_helpers import body_of, make_file


def _png(size=(800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 800), (20, 90, 200)).save(out, "PDF")
    return out.getvalue()


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def upload(owner, root, django_capture_on_commit_callbacks):
    """Upload a file and run what was queued on commit (the thumbnail task, eager in tests)."""

    def _upload(name: str, data: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            return make_file(owner, root, name, data)

    return _upload


def test_image_gets_a_small_jpeg_thumbnail_counted_in_no_quota(owner, owner_workspace, upload):
    data = _png()
    node = upload("photo.png", data)
    thumbnail = Thumbnail.objects.get(version=node.current_version)
    assert max(thumbnail.width, thumbnail.height) == 320
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == len(data)  # the thumbnail's bytes are not the customer's

    response = _browser(owner).get(f"/app/thumbnail/{node.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(body_of(response)))
    assert picture.format == "JPEG" and picture.size == (320, 240)


def test_pdf_first_page_gets_a_thumbnail(owner, upload):
    node = upload("report.pdf", _pdf())
    thumbnail = Thumbnail.objects.get(version=node.current_version)
    assert (thumbnail.width, thumbnail.height) == (240, 320)


def _blank_png_streamed(width: int, height: int) -> bytes:
    """A transparent RGBA PNG built row by row, so the test never holds it decoded: 13,000 x 13,000
    pixels compress to ~640 KiB."""
    row = b"\x00" * (1 + width * 4)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class DecodedInFull(Exception):
    pass


@pytest.fixture
def big_decodes(monkeypatch):
    """Every image over the pixel budget that Pillow starts to decode, stopped right there (so the
    test does not itself need the 1.3 GB)."""
    decoded = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        if self.size[0] * self.size[1] > MAX_SOURCE_PIXELS:
            decoded.append(self.size)
            raise DecodedInFull(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return decoded


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, at open: expected
def test_a_decompression_bomb_png_is_refused_from_its_header_not_decoded(owner, upload, big_decodes):
    # 169 M pixels: under the 179 M where Pillow raises, so Pillow alone only warns.
    data = _blank_png_streamed(13_000, 13_000)
    assert len(data) < 700 * 1024
    node = upload("bomb.png", data)
    assert big_decodes == []
    assert not Thumbnail.objects.filter(version=node.current_version).exists()
    assert _browser(owner).get(f"/app/thumbnail/{node.pk}/").status_code == 404


def test_a_24_megapixel_camera_photo_gets_its_thumbnail_upright(upload, big_decodes):
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shot with the camera on its side, shown turned 90 degrees
    Image.new("RGB", (6000, 4000), (90, 140, 60)).save(out, "JPEG", exif=exif)
    node = upload("IMG_0001.jpg", out.getvalue())
    thumbnail = Thumbnail.objects.get(version=node.current_version)
    assert (thumbnail.width, thumbnail.height) == (213, 320)


def test_a_broken_image_or_other_type_gets_none_and_the_grid_gets_404(owner, upload):
    broken = upload("broken.png", b"\x89PNG\r\n\x1a\n not really")
    text = upload("notes.txt", b"hello")
    assert not Thumbnail.objects.exists()
    assert _browser(owner).get(f"/app/thumbnail/{broken.pk}/").status_code == 404
    assert _browser(owner).get(f"/app/thumbnail/{text.pk}/").status_code == 404


def test_thumbnail_is_released_with_its_file(owner, upload, django_capture_on_commit_callbacks):
    node = upload("photo.png", _png())
    manifest_id = Thumbnail.objects.get(version=node.current_version).manifest_id
    with django_capture_on_commit_callbacks(execute=True):
        node_trash(user=owner, node=node)
        node_purge(user=owner, node=node)
    assert not Thumbnail.objects.exists()
    assert not Manifest.objects.filter(pk=manifest_id).exists()


def test_outsider_gets_404_for_thumbnail_and_preview(owner, outsider, upload):
    node = upload("photo.png", _png())
    browser = _browser(outsider)
    assert browser.get(f"/app/thumbnail/{node.pk}/").status_code == 404
    assert browser.get(f"/app/preview/{node.pk}/").status_code == 404


def test_video_preview_answers_range_requests(owner, upload):
    data = bytes(range(256)) * 40
    node = upload("clip.webm", data)
    response = _browser(owner).get(f"/app/preview/{node.pk}/", HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert response["Content-Type"] == "video/webm"
    assert body_of(response) == data[100:200]
    whole = _browser(owner).get(f"/app/preview/{node.pk}/")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and body_of(whole) == data


def test_public_folder_link_lists_thumbnails_and_previews_files(owner, root, upload):
    node = upload("photo.png", _png())
    link = link_create(actor=owner, node=node_get_for_user(user=owner, node_id=root.pk))
    anon = Client()
    page = anon.get(f"/s/{link.token}")
    assert f"/s/{link.token}/thumbnail?node={node.pk}".encode() in page.content
    thumb = anon.get(f"/s/{link.token}/thumbnail", {"node": str(node.pk)})
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    preview = anon.get(f"/s/{link.token}/preview", {"node": str(node.pk)}, HTTP_RANGE="bytes=0-7")
    assert preview.status_code == 206 and body_of(preview) == b"\x89PNG\r\n\x1a\n"


def test_a_link_with_a_download_limit_shows_no_preview(owner, root, upload):
    node = upload("photo.png", _png())
    link = link_create(actor=owner, node=node_get_for_user(user=owner, node_id=node.pk), max_downloads=3)
    anon = Client()
    assert b"public-preview" not in anon.get(f"/s/{link.token}").content
    assert anon.get(f"/s/{link.token}/preview").status_code == 404
    link.refresh_from_db()
    assert link.download_count == 0


def test_a_folder_link_with_a_download_limit_serves_no_thumbnail(owner, root, upload):
    # A thumbnail is the picture in small: a link whose every byte counts as a download gives none
    # outside its counted downloads, as it gives no preview.
    node = upload("photo.png", _png())
    link = link_create(actor=owner, node=node_get_for_user(user=owner, node_id=root.pk), max_downloads=1)
    anon = Client()

    page = anon.get(f"/s/{link.token}")
    assert page.status_code == 200 and b"photo.png" in page.content
    assert b"/thumbnail" not in page.content
    assert anon.get(f"/s/{link.token}/thumbnail", {"node": str(node.pk)}).status_code == 404
    link.refresh_from_db()
    assert link.download_count == 0


def test_unknown_link_gets_the_site_404_page_even_with_debug(settings):
    settings.DEBUG = True
    for path in ("/s/no-such-token", "/s/no-such-token/download", "/s/no-such-token/preview"):
        response = Client().get(path)
        assert response.status_code == 404
        assert b"This page does not exist" in response.content
        assert b"Technical" not in response.content and b"URLconf" not in response.content
