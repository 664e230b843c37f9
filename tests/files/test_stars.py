"""Stars: a person's own bookmarks; they never grant access and never show what is gone."""

from __future__ import annotations

import pytest

from files.access import node_get_for_user
from files.models import Share
from files.sharing import share_create
from files.trash import node_trash
from tests.files.api_helpers import make_file, make_folder, url


@pytest.fixture
def starred(api, owner, root):
    kept = make_file(owner, root, "kept.txt")
    binned = make_file(owner, root, "binned.txt")
    for node in (kept, binned):
        assert api.put(url(node, "star/")).status_code == 204
    assert api.put(url(kept, "star/")).status_code == 204  # twice is still one star
    node_trash(user=owner, node=binned)
    return kept


def test_starred_lists_live_items_with_their_path(api, starred):
    listed = api.get("/api/v1/starred/").json()
    assert [(n["name"], n["path"]) for n in listed] == [("kept.txt", "/kept.txt")]
    assert api.delete(url(starred, "star/")).status_code == 204
    assert api.get("/api/v1/starred/").json() == []


def test_outsider_gets_404_and_a_star_grants_nothing(api, owner, root, outsider, outsider_api, friend, friend_api):
    folder = make_folder(owner, root, "Team")
    inside = make_file(owner, folder, "plan.txt")
    assert outsider_api.put(url(inside, "star/")).status_code == 404
    share, _ = share_create(
        actor=owner, node=node_get_for_user(user=owner, node_id=folder.pk), email=friend.email, permission="view"
    )
    assert friend_api.put(url(inside, "star/")).status_code == 204
    assert [n["name"] for n in friend_api.get("/api/v1/starred/").json()] == ["plan.txt"]
    Share.objects.filter(pk=share.pk).delete()  # access ends: the star shows nothing any more
    assert friend_api.get("/api/v1/starred/").json() == []
    assert friend_api.get(url(inside)).status_code == 404
