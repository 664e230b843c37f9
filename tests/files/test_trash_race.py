"""A purge racing a restore (real threads, real row locks): the item ends up either fully restored
or fully purged, never half of each, and the quota matches what is left."""

from __future__ import annotations

from django.db.models import Sum
from django.utils import timezone

from cloudstorage.errors import ServiceError
from files.models import FileVersion, Node
from files.trash import node_purge, node_trash, trash_restore
from tests.factories import UserFactory, personal_workspace
from tests.files.races import postgres_only, race
from tests.files.sharing_helpers import content, folder, root_of, upload

pytestmark = postgres_only


def test_purge_racing_restore_never_leaves_a_half_restored_item(transactional_db, disks):
    owner = UserFactory()
    workspace = personal_workspace(owner)
    root = root_of(workspace)
    outcomes = set()
    for round_ in range(6):
        docs = folder(owner, root, f"docs-{round_}")
        files = [upload(owner, folder(owner, docs, f"sub{n}"), f"f{n}.txt", f"data {n}".encode()) for n in range(4)]
        node_trash(user=owner, node=docs)

        restored, purged = race(
            lambda docs=docs: trash_restore(user=owner, node=Node(pk=docs.pk)),
            lambda docs=docs: node_purge(node=Node(pk=docs.pk), older_than=timezone.now()),
        )

        member_ids = [docs.pk] + [f.pk for f in files] + [f.parent_id for f in files]
        left = Node.objects.filter(pk__in=member_ids)
        if isinstance(restored, Node):
            assert purged is False
            assert left.count() == len(member_ids) and not left.filter(trashed_in__isnull=False).exists()
            assert [content(f) for f in files] == [f"data {n}".encode() for n in range(4)]
            outcomes.add("restored")
        else:
            assert isinstance(restored, ServiceError) and restored.status_code == 404, restored
            assert purged is True
            assert not left.exists()
            outcomes.add("purged")
        workspace.refresh_from_db(fields=["used_bytes"])
        stored = FileVersion.objects.filter(workspace=workspace).aggregate(total=Sum("size"))["total"] or 0
        assert workspace.used_bytes == stored
    assert outcomes  # which side wins is up to the scheduler; both are whole
