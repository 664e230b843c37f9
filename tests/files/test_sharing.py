"""Sharing with users by e-mail: who sees what, reshare limits, revoke on the next request."""

from __future__ import annotations

import pytest
from django.core import mail
from django.http import Http404

from cloudstorage.errors import ServiceError
from files.access import node_get_for_user
from files.models import Activity, Share
from files.trash import node_trash, trash_restore
from tests.factories import UserFactory
from tests.files.sharing_helpers import folder, root_of, upload

# Someone outside the workspace to share with, present in every test of this module.
pytestmark = pytest.mark.usefixtures("friend")


@pytest.fixture
def project(owner, root):
    """/project with /project/inner/deep.txt and /project/top.txt; /private.txt beside it."""
    project = folder(owner, root, "project")
    inner = folder(owner, project, "inner")
    return {
        "folder": project,
        "inner": inner,
        "deep": upload(owner, inner, "deep.txt", b"deep"),
        "top": upload(owner, project, "top.txt", b"top"),
        "private": upload(owner, root, "private.txt", b"secret"),
    }


def share(api, node, email, permission="view"):
    return api.post(f"/api/v1/nodes/{node.pk}/shares/", {"email": email, "permission": permission}, format="json")


def test_share_by_email_gives_access_to_the_subtree_and_mails_the_grantee(
    api, friend, friend_api, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = share(api, project["folder"], "Friend@Example.com")

    assert response.status_code == 201, response.content
    assert response.json()["email"] == friend.email and response.json()["permission"] == "view"
    (message,) = mail.outbox
    assert message.to == [friend.email] and '"project"' in message.subject
    deep = node_get_for_user(user=friend, node_id=project["deep"].pk)
    assert deep.permission == "view"
    with pytest.raises(Http404):
        node_get_for_user(user=friend, node_id=project["private"].pk)
    with pytest.raises(ServiceError) as caught:
        node_get_for_user(user=friend, node_id=project["deep"].pk, need="edit")
    assert caught.value.status_code == 403


def test_sharing_with_an_unknown_email_is_a_clear_error_and_creates_nothing(api, project):
    response = share(api, project["folder"], "nobody@example.com")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_user" and "nobody@example.com" in error["message"]
    assert not Share.objects.exists()
    assert share(api, project["folder"], "not-an-email").status_code == 400


def test_shared_with_me_lists_what_others_shared_and_hides_trashed_items(owner, api, friend_api, project):
    share(api, project["top"], "friend@example.com", "edit")
    response = friend_api.get("/api/v1/shared-with-me/")
    assert response.status_code == 200
    (item,) = response.json()
    assert item["node"]["name"] == "top.txt" and item["permission"] == "edit" and item["shared_by"] == owner.email

    node_trash(user=owner, node=project["top"])
    assert friend_api.get("/api/v1/shared-with-me/").json() == []


def test_shares_on_trashed_items_stop_working_and_come_back_on_restore(owner, api, friend, project):
    share(api, project["folder"], "friend@example.com")
    node_trash(user=owner, node=project["folder"])
    with pytest.raises(Http404):
        node_get_for_user(user=friend, node_id=project["deep"].pk)

    trash_restore(user=owner, node=project["folder"])

    assert node_get_for_user(user=friend, node_id=project["deep"].pk).permission == "view"


def test_revoke_takes_effect_on_the_very_next_request(api, friend, friend_api, project):
    share_id = share(api, project["folder"], "friend@example.com").json()["id"]
    assert friend_api.get(f"/api/v1/nodes/{project['inner'].pk}/shares/").status_code == 200

    assert api.delete(f"/api/v1/shares/{share_id}/").status_code == 204

    assert friend_api.get(f"/api/v1/nodes/{project['inner'].pk}/shares/").status_code == 404
    assert friend_api.get("/api/v1/shared-with-me/").json() == []
    for node in (project["folder"], project["inner"], project["deep"]):
        with pytest.raises(Http404):
            node_get_for_user(user=friend, node_id=node.pk)


def test_change_permission_applies_at_once(api, friend, project):
    share_id = share(api, project["folder"], "friend@example.com").json()["id"]
    response = api.patch(f"/api/v1/shares/{share_id}/", {"permission": "edit"}, format="json")
    assert response.status_code == 200 and response.json()["permission"] == "edit"
    assert node_get_for_user(user=friend, node_id=project["deep"].pk, need="edit").permission == "edit"


def test_sharing_again_changes_the_permission_instead_of_duplicating(api, project):
    assert share(api, project["folder"], "friend@example.com").status_code == 201
    again = share(api, project["folder"], "friend@example.com", "edit")
    assert again.status_code == 200 and again.json()["permission"] == "edit"
    assert Share.objects.count() == 1


def test_a_grantee_with_view_may_not_reshare_nor_raise_their_reshare(api, friend_api, project):
    stranger = UserFactory(email="stranger@example.com")
    friends = share(api, project["folder"], "friend@example.com", "view").json()["id"]

    for permission in ("view", "edit"):
        refused = share(friend_api, project["inner"], stranger.email, permission)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert not Share.objects.filter(user=stranger).exists()
    # Made while they could edit, their reshare cannot be raised above what they have now.
    api.patch(f"/api/v1/shares/{friends}/", {"permission": "edit"}, format="json")
    allowed = share(friend_api, project["inner"], stranger.email, "view")
    assert allowed.status_code == 201
    api.patch(f"/api/v1/shares/{friends}/", {"permission": "view"}, format="json")
    assert (
        friend_api.patch(f"/api/v1/shares/{allowed.json()['id']}/", {"permission": "edit"}, format="json").status_code
        == 403
    )


def test_a_reshare_creator_lowered_to_view_may_remove_it_but_not_change_it(api, friend_api, project):
    # Changing a share is sharing, which needs edit (share_create's rule): the old rule let them
    # lower it to the view they still had.
    UserFactory(email="stranger@example.com")
    friends = share(api, project["folder"], "friend@example.com", "edit").json()["id"]
    reshare = share(friend_api, project["inner"], "stranger@example.com", "edit").json()["id"]
    api.patch(f"/api/v1/shares/{friends}/", {"permission": "view"}, format="json")

    for permission in ("view", "edit"):
        refused = friend_api.patch(f"/api/v1/shares/{reshare}/", {"permission": permission}, format="json")
        assert refused.status_code == 403, (permission, refused.status_code)
        error = refused.json()["error"]
        assert error["code"] == "permission_denied" and "items you can edit" in error["message"]
        assert error["details"] == {"yours": "view"}
    assert Share.objects.get(pk=reshare).permission == "edit"
    assert not Activity.objects.filter(verb="share_change", details__email="stranger@example.com").exists()
    assert friend_api.delete(f"/api/v1/shares/{reshare}/").status_code == 204
    assert not Share.objects.filter(pk=reshare).exists()


def test_an_editor_may_change_a_share_to_either_permission(api, friend_api, project):
    UserFactory(email="stranger@example.com")
    share(api, project["folder"], "friend@example.com", "edit")
    owners = share(api, project["inner"], "stranger@example.com", "view").json()["id"]
    for permission in ("edit", "view"):
        changed = friend_api.patch(f"/api/v1/shares/{owners}/", {"permission": permission}, format="json")
        assert changed.status_code == 200 and changed.json()["permission"] == permission


def test_an_editor_may_reshare_with_edit(api, friend_api, project):
    UserFactory(email="stranger@example.com")
    share(api, project["folder"], "friend@example.com", "edit")
    assert share(friend_api, project["deep"], "stranger@example.com", "edit").status_code == 201


def test_grantee_may_remove_their_own_share_but_not_change_it(api, friend_api, project):
    share_id = share(api, project["folder"], "friend@example.com").json()["id"]
    assert friend_api.patch(f"/api/v1/shares/{share_id}/", {"permission": "edit"}, format="json").status_code == 403
    assert friend_api.delete(f"/api/v1/shares/{share_id}/").status_code == 204
    assert not Share.objects.exists()


def test_listing_shares_shows_inherited_ones(api, project):
    share(api, project["folder"], "friend@example.com")
    (entry,) = api.get(f"/api/v1/nodes/{project['deep'].pk}/shares/").json()
    assert entry["inherited"] is True
    (entry,) = api.get(f"/api/v1/nodes/{project['folder'].pk}/shares/").json()
    assert entry["inherited"] is False


def test_sharing_with_a_member_or_oneself_or_the_root_is_refused(owner, teammate, team, api, root, project):
    team_file = upload(owner, root_of(team), "t.txt", b"t")
    assert share(api, team_file, teammate.email).status_code == 409
    assert share(api, project["top"], owner.email).status_code == 400
    assert share(api, root, "friend@example.com").status_code == 400


def test_share_and_revoke_are_in_the_activity_log(api, owner_workspace, project, friend):
    share_id = share(api, project["folder"], "friend@example.com").json()["id"]
    api.patch(f"/api/v1/shares/{share_id}/", {"permission": "edit"}, format="json")
    api.delete(f"/api/v1/shares/{share_id}/")
    entries = list(Activity.objects.filter(workspace=owner_workspace).order_by("id").values_list("verb", "details"))
    assert [verb for verb, _ in entries] == ["share", "share_change", "unshare"]
    assert entries[0][1] == {"email": friend.email, "permission": "view"}


def test_outsider_gets_404_on_every_share_route(api, outsider_api, project):
    share_id = share(api, project["folder"], "friend@example.com").json()["id"]
    node = project["folder"]
    responses = [
        outsider_api.get(f"/api/v1/nodes/{node.pk}/shares/"),
        outsider_api.post(f"/api/v1/nodes/{node.pk}/shares/", {"email": "outsider@example.com"}, format="json"),
        outsider_api.patch(f"/api/v1/shares/{share_id}/", {"permission": "edit"}, format="json"),
        outsider_api.delete(f"/api/v1/shares/{share_id}/"),
    ]
    assert [response.status_code for response in responses] == [404, 404, 404, 404]
    assert Share.objects.get(pk=share_id).permission == "view"
    assert outsider_api.get("/api/v1/shared-with-me/").json() == []
