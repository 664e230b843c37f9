"""Placement: least-full disk of the category, backups on distinct disks, and concurrent first uploads."""

from __future__ import annotations

import io
import threading

import pytest
from django.db import connection, connections

from disks.models import Placement
from disks.placement import workspace_place
from disks.store import manifest_write
from tests.disks.conftest import MB, make_disks, read_all


def test_workspace_is_placed_on_least_full_disk_of_its_category(settings, owner_workspace):
    a1, a2, a3 = make_disks(settings, 3, category="A")
    (b1,) = make_disks(settings, 1, category="B", prefix="b")
    a1.used_bytes = 10 * MB
    a1.save(update_fields=["used_bytes"])
    a3.used_bytes = 5 * MB
    a3.save(update_fields=["used_bytes"])
    placed = workspace_place(workspace=owner_workspace)
    assert [d.pk for d in placed] == [a2.pk, a3.pk]
    assert b1.pk not in {d.pk for d in placed}


def test_backup_goes_to_another_category_when_the_category_has_one_disk(settings, owner_workspace):
    (a1,) = make_disks(settings, 1, category="A")
    (b1,) = make_disks(settings, 1, category="B", prefix="b")
    assert [d.pk for d in workspace_place(workspace=owner_workspace)] == [a1.pk, b1.pk]


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database serialises writers; the race needs PostgreSQL (CI's second pass)",
)
def test_concurrent_first_uploads_into_one_workspace_all_succeed(settings, transactional_db, rng):
    from tests.factories import UserFactory, personal_workspace

    make_disks(settings, 3)
    workspace = personal_workspace(UserFactory())
    datas = [rng.randbytes(5000 + n) for n in range(8)]
    barrier = threading.Barrier(len(datas))
    results: list = [None] * len(datas)

    def upload(n: int) -> None:
        try:
            barrier.wait()
            results[n] = manifest_write(workspace=workspace, stream=io.BytesIO(datas[n]))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[n] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(len(datas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    for data, manifest in zip(datas, results, strict=True):
        assert read_all(manifest) == data
    ranks = list(Placement.objects.filter(workspace=workspace).order_by("rank").values_list("rank", flat=True))
    assert ranks == [0, 1]
