"""``manage.py fsck``: a per-file report, repair from healthy copies, and lost files left untouched."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from disks.models import Manifest, ManifestChunk, Replica
from disks.store import ChunkLostError, manifest_write
from tests.disks.conftest import good_copies, object_delete, object_get, object_put, read_all


def fsck(*args) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("fsck", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def lines_by_manifest(output: str) -> dict:
    return {m.pk: line for m in Manifest.objects.all() for line in output.splitlines() if str(m.pk) in line}


@pytest.fixture
def files(owner_workspace, three_disks, rng) -> list[tuple[Manifest, bytes]]:
    datas = [rng.randbytes(9000), rng.randbytes(12_000), rng.randbytes(5000)]
    return [(manifest_write(workspace=owner_workspace, stream=io.BytesIO(data)), data) for data in datas]


def test_healthy_store_reports_every_file_ok(files):
    output, error = fsck()
    assert error is None
    lines = lines_by_manifest(output)
    assert len(lines) == 3 and all(line.split()[0] == "ok" for line in lines.values())
    assert "3 files: 3 ok, 0 degraded, 0 lost" in output


def test_missing_copy_is_found_by_reading_and_repaired_from_the_other(files):
    (manifest, data), *_ = files
    chunk = manifest.entries.order_by("seq")[2].chunk
    replica = chunk.replicas.select_related("disk").first()
    object_delete(replica.disk, chunk.key)  # the store still believes the copy is there

    output, error = fsck()
    assert error is not None and error.returncode == 1
    assert lines_by_manifest(output)[manifest.pk].split()[0] == "degraded"
    assert Replica.objects.get(pk=replica.pk).state == Replica.State.BAD

    output, error = fsck("--repair")
    assert error is None
    assert "1 damaged, 1 repaired" in lines_by_manifest(output)[manifest.pk]
    assert "(1 repaired)" in output
    assert len(good_copies(chunk)) == 2
    assert read_all(manifest) == data
    assert fsck()[1] is None


def test_a_file_that_cannot_be_repaired_is_reported_lost_and_left_untouched(files):
    (lost, data), (degraded, degraded_data), (healthy, _) = files
    chunk = lost.entries.order_by("seq")[1].chunk
    saved = {}
    for replica in chunk.replicas.select_related("disk"):
        saved[replica.disk_id] = (replica.disk, object_get(replica.disk, chunk.key))
        object_delete(replica.disk, chunk.key)
    other = degraded.entries.order_by("seq")[0].chunk
    object_delete(other.replicas.select_related("disk").first().disk, other.key)
    entries_before = list(ManifestChunk.objects.filter(manifest=lost).values_list("seq", "offset", "chunk_id"))

    output, error = fsck("--repair")
    assert error is not None and "1 file(s) not ok" in str(error)
    lines = lines_by_manifest(output)
    assert lines[lost.pk].split()[0] == "lost" and "no good copy" in lines[lost.pk]
    assert lines[degraded.pk].split()[0] == "ok" and lines[healthy.pk].split()[0] == "ok"
    assert "3 files: 2 ok, 0 degraded, 1 lost (1 repaired)" in output
    # Nothing of the lost file was blanked, truncated or dropped: same size, same chunks, and a read
    # fails loudly rather than serving a short body.
    lost.refresh_from_db()
    assert lost.size == len(data)
    assert list(ManifestChunk.objects.filter(manifest=lost).values_list("seq", "offset", "chunk_id")) == entries_before
    assert chunk.replicas.count() == 2
    with pytest.raises(ChunkLostError):
        read_all(lost)
    assert read_all(degraded) == degraded_data

    # The operator finds the objects (a disk re-mounted): the next fsck sees them good again.
    for disk, blob in saved.values():
        object_put(disk, chunk.key, blob)
    output, error = fsck("--repair")
    assert error is None and lines_by_manifest(output)[lost.pk].split()[0] == "ok"
    assert read_all(lost) == data


def test_workspace_option_limits_the_report(files, team, rng):
    theirs = manifest_write(workspace=team, stream=io.BytesIO(rng.randbytes(3000)))
    output, error = fsck("--workspace", str(team.pk))
    assert error is None
    assert list(lines_by_manifest(output)) == [theirs.pk]
    assert "1 files: 1 ok" in output


def test_unknown_workspace_is_refused(db):
    with pytest.raises(CommandError, match="no workspace"):
        call_command("fsck", "--workspace", "not-a-uuid", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no workspace"):
        call_command("fsck", "--workspace", "7b0e7e59-0000-4000-8000-000000000000", stdout=io.StringIO())


def test_content_without_a_file_is_named_by_its_manifest_id(files):
    output, _ = fsck()
    manifest, _ = files[0]
    assert f"manifest {manifest.pk}" in output


def test_files_are_named_by_path_when_the_files_app_offers_labels(owner, owner_workspace, three_disks, rng):
    from files.models import Node
    from files.uploads import file_upload

    root = Node.objects.get(workspace=owner_workspace, parent=None)
    file_upload(user=owner, parent=root, name="report-2026.pdf", stream=io.BytesIO(rng.randbytes(4000)))
    output, error = fsck()
    assert error is None and "report-2026.pdf" in output


def test_a_file_is_reported_by_its_path_and_version(owner, owner_workspace, three_disks):
    from tests.files.sharing_helpers import folder, root_of, upload

    docs = folder(owner, root_of(owner_workspace), "docs")
    upload(owner, docs, "report.txt", b"first")
    upload(owner, docs, "report.txt", b"second")
    output, error = fsck()
    assert error is None
    lines = [line for line in output.splitlines() if line.startswith("ok")]
    assert len(lines) == 2
    assert any("/docs/report.txt (v1)" in line for line in lines)
    assert any("/docs/report.txt (v2)" in line for line in lines)
