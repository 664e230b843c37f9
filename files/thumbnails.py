"""Thumbnails: a small JPEG of an image or of a PDF's first page, for the grid, the details panel
and public folder links.

A worker makes one per new version (queued on commit by a signal, so every way a version comes to
be is covered) and stores it through the chunk store as derived data: in no quota, and released
with its version. Pillow decodes images, none of more than MAX_SOURCE_PIXELS (refused from the
header; Pillow's own decompression-bomb limit stays on too); pypdfium2 renders a PDF's first page
straight at thumbnail size.
"""

from __future__ import annotations

import io
import logging
import tempfile

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save

from disks.store import StoreError, manifest_open, manifest_release, manifest_write
from files.models import FileVersion, Thumbnail

logger = logging.getLogger(__name__)

SIZE = 320  # the longest side, in pixels: sharp in a 150 px tile on a 2x screen
QUALITY = 80
# Bigger sources are not read for a thumbnail (the worker would hold minutes of decoding).
MAX_SOURCE_BYTES = 64 * 1024 * 1024
# An image is refused from its header above this many pixels. Pillow holds a decoded pixel in up to
# 4 bytes, and a few hundred KiB of PNG can declare 13,000 x 13,000 (1.3 GB to decode; Pillow only
# warns below 179 M pixels, and a worker killed for memory gets the task back). At 64 M pixels one
# thumbnail costs a worker ~250 MiB at worst (measured: an 8000 x 8000 PNG, RSS 68 -> 317 MiB), and
# today's cameras and phones still get theirs: 24 MP (6000 x 4000), 45-50 MP (8256 x 5504,
# 8160 x 6120), 61 MP (9504 x 6336).
MAX_SOURCE_PIXELS = 64_000_000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
PDF_TYPE = "application/pdf"


def thumbnail_wanted(*, mime_type: str, size: int) -> bool:
    mime = (mime_type or "").split(";")[0].strip().lower()
    return (mime in IMAGE_TYPES or mime == PDF_TYPE) and 0 < size <= MAX_SOURCE_BYTES


class SourceTooLarge(Exception):
    """The image declares more than MAX_SOURCE_PIXELS: refused before anything is decoded."""


def _render(source, mime: str):
    from PIL import Image, ImageOps

    if mime == PDF_TYPE:
        import pypdfium2

        pdf = pypdfium2.PdfDocument(source)
        try:
            page = pdf[0]
            width, height = page.get_size()
            # The page is rendered straight at thumbnail size (its longest side SIZE pixels,
            # whatever its declared size), so no bitmap of the whole page is ever allocated.
            image = page.render(scale=SIZE / max(width, height, 1)).to_pil()
        finally:
            pdf.close()
    else:
        image = Image.open(source)  # reads the header only
        width, height = image.size
        if width * height > MAX_SOURCE_PIXELS:
            raise SourceTooLarge(f"{width} x {height} pixels")
        image.draft("RGB", (SIZE, SIZE))  # JPEG decodes at a reduced scale: much less memory
    image.thumbnail((SIZE, SIZE))
    # Turned upright only once small: exif_transpose copies the image it is given.
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        # Transparent areas become white, as a page would show them.
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue(), image.size


def thumbnail_make(*, version_id) -> Thumbnail | None:
    """Make the version's thumbnail unless it has one; None when its type has none, or when the
    content cannot be decoded or has too many pixels (neither is an error worth retrying)."""
    version = FileVersion.objects.select_related("manifest", "workspace").filter(pk=version_id).first()
    if version is None or not thumbnail_wanted(mime_type=version.mime_type, size=version.size):
        return None
    existing = Thumbnail.objects.filter(version=version).first()
    if existing is not None:
        return existing
    mime = version.mime_type.split(";")[0].strip().lower()
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as source:
        for block in manifest_open(manifest=version.manifest):
            source.write(block)
        source.seek(0)
        try:
            jpeg, (width, height) = _render(source, mime)
        except SourceTooLarge as exc:
            logger.info("no thumbnail for version %s: %s is over the budget", version.pk, exc)
            return None
        except Exception:
            logger.info("no thumbnail for version %s: its content could not be decoded", version.pk, exc_info=True)
            return None
    manifest = manifest_write(workspace=version.workspace, stream=io.BytesIO(jpeg))
    try:
        with transaction.atomic():
            return Thumbnail.objects.create(
                version=version, workspace=version.workspace, manifest=manifest, width=width, height=height
            )
    except IntegrityError:
        # Another worker was faster, or the version was deleted meanwhile: ours is not needed.
        manifest_release(manifest=manifest)
        return Thumbnail.objects.filter(version=version).first()


def thumbnail_open(*, version: FileVersion):
    """(bytes iterator, size) of the version's thumbnail, or None while there is none."""
    thumbnail = Thumbnail.objects.select_related("manifest").filter(version=version).first()
    if thumbnail is None:
        return None
    try:
        return manifest_open(manifest=thumbnail.manifest), thumbnail.manifest.size
    except StoreError:
        logger.exception("thumbnail of version %s could not be read", version.pk)
        return None


def thumbnail_node_ids(*, node_ids) -> set:
    """Which of these files have a thumbnail of their current version (one query for a listing)."""
    return set(
        Thumbnail.objects.filter(
            version__node_id__in=node_ids, version_id=F("version__node__current_version_id")
        ).values_list("version__node_id", flat=True)
    )


def _queue_thumbnail(sender, instance: FileVersion, created: bool, **kwargs) -> None:
    if created and thumbnail_wanted(mime_type=instance.mime_type, size=instance.size):
        from files.tasks import thumbnail_make as task

        version_id = str(instance.pk)
        transaction.on_commit(lambda: task.delay(version_id))


def _release_manifest(sender, instance: Thumbnail, **kwargs) -> None:
    manifest_id = instance.manifest_id
    transaction.on_commit(lambda: _release(manifest_id))


def _release(manifest_id) -> None:
    from disks.store import Manifest

    manifest = Manifest.objects.filter(pk=manifest_id).first()
    if manifest is not None:
        manifest_release(manifest=manifest)


def connect_signals() -> None:
    post_save.connect(_queue_thumbnail, sender=FileVersion, dispatch_uid="files.thumbnail_queue")
    post_delete.connect(_release_manifest, sender=Thumbnail, dispatch_uid="files.thumbnail_release")
