"""Crossing folder moves with real threads and row locks: X into Y and Y into X at once. One of the
two is refused like a move into itself (400 invalid_move), never both pass (a cycle cut off from
the root) and never a deadlock."""

from __future__ import annotations

from cloudstorage.errors import ServiceError
from files.access import node_ancestor_ids
from files.models import Node
from files.nodes import node_update
from tests.factories import UserFactory, personal_workspace
from tests.files.races import postgres_only, race
from tests.files.sharing_helpers import folder, root_of

pytestmark = postgres_only


def _move(owner, node: Node, into: Node):
    return lambda: node_update(user=owner, node=Node.objects.get(pk=node.pk), parent=Node.objects.get(pk=into.pk))


def test_crossing_moves_of_two_folders_into_each_other_never_make_a_cycle(transactional_db, disks):
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    for round_ in range(12):
        x, y = folder(owner, root, f"r{round_}/X"), folder(owner, root, f"r{round_}/Y")

        results = race(_move(owner, x, y), _move(owner, y, x))

        moved = [result for result in results if isinstance(result, Node)]
        refused = [result for result in results if isinstance(result, ServiceError)]
        assert len(moved) == 1 and len(refused) == 1, results
        assert (refused[0].status_code, refused[0].code) == (400, "invalid_move")
        x.refresh_from_db()
        y.refresh_from_db()
        assert not (x.parent_id == y.pk and y.parent_id == x.pk)
        for node in (x, y):
            assert root.pk in node_ancestor_ids(node=node)
