"""Cursor pages among equal values (cloudstorage/pagination.py): search results of one name in many
folders, and trash items deleted at the same moment, page forward and back without a gap or a
repeat. With Django REST framework's position (the first column's value and an offset), walking
back through equal values skipped an item."""

from __future__ import annotations

from django.utils import timezone

from files.models import Node
from tests.files.api_helpers import make_file, make_folder, pages_both_ways, url


def test_search_hits_of_one_name_page_both_ways(api, owner, owner_workspace, root):
    for n in range(11):
        make_file(owner, make_folder(owner, root, f"folder{n:02}"), "report.txt", b"x")
    first = f"/api/v1/workspaces/{owner_workspace.pk}/search/?q=report&page_size=3"
    assert len(pages_both_ways(api, first, field="id")) == 11


def test_trash_items_deleted_at_one_moment_page_both_ways(api, owner, owner_workspace, root):
    files = [make_file(owner, root, f"f{n:02}.txt", b"x") for n in range(11)]
    for node in files:
        assert api.delete(url(node)).status_code == 204
    Node.objects.filter(pk__in=[node.pk for node in files]).update(deleted_at=timezone.now())
    first = f"/api/v1/workspaces/{owner_workspace.pk}/trash/?page_size=3"
    assert len(pages_both_ways(api, first, field="id")) == 11
