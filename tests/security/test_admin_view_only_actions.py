"""Staff who may only view public links or uploads cannot run the admin actions that end them.

Django offers an action without ``permissions=`` to everyone who can open the change list, and a
view permission opens it: a read-only support or audit role could revoke every customer's public
links and end their resumable uploads in flight. Both actions now need the change permission, as
the disk actions do.
"""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.test import Client

from files.access import node_get_for_user
from files.links import link_create
from files.models import PublicLink, Upload
from files.resumable import upload_create
from tests.factories import UserFactory
from tests.files.sharing_helpers import root_of, upload


def _operator(*codenames: str) -> Client:
    """A staff account, not a superuser, with only the given permissions."""
    operator = UserFactory(email="support@example.com", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(operator)
    return client


def _link(owner, workspace) -> PublicLink:
    shared = upload(owner, root_of(workspace), "report.txt", b"hello")
    return link_create(actor=owner, node=node_get_for_user(user=owner, node_id=shared.pk, need="edit"))


def _upload(owner, workspace) -> Upload:
    return upload_create(user=owner, filename="big.iso", parent_id=root_of(workspace).pk, length=10_000)


def _offered_actions(listing) -> list[str]:
    form = listing.context["action_form"]  # None when no action is offered at all
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_operator_who_may_only_view_links_cannot_revoke_them(owner, owner_workspace):
    link = _link(owner, owner_workspace)
    admin = _operator("view_publiclink")
    listing = admin.get("/admin/files/publiclink/")
    assert listing.status_code == 200  # may look
    assert "revoke" not in _offered_actions(listing)

    admin.post("/admin/files/publiclink/", {"action": "revoke", "_selected_action": [str(link.pk)], "index": 0})

    link.refresh_from_db()
    assert link.revoked_at is None


def test_operator_who_may_only_view_uploads_cannot_end_them(owner, owner_workspace):
    started = _upload(owner, owner_workspace)
    admin = _operator("view_upload")
    listing = admin.get("/admin/files/upload/")
    assert listing.status_code == 200  # may look
    assert "reclaim" not in _offered_actions(listing)

    admin.post("/admin/files/upload/", {"action": "reclaim", "_selected_action": [str(started.pk)], "index": 0})

    started.refresh_from_db()
    assert started.state == Upload.State.ACTIVE


def test_operator_who_may_change_links_still_revokes_them(owner, owner_workspace):
    link = _link(owner, owner_workspace)
    admin = _operator("view_publiclink", "change_publiclink")

    admin.post("/admin/files/publiclink/", {"action": "revoke", "_selected_action": [str(link.pk)], "index": 0})

    link.refresh_from_db()
    assert link.revoked_at is not None


def test_operator_who_may_change_uploads_still_ends_them(owner, owner_workspace):
    started = _upload(owner, owner_workspace)
    admin = _operator("view_upload", "change_upload")

    admin.post("/admin/files/upload/", {"action": "reclaim", "_selected_action": [str(started.pk)], "index": 0})

    started.refresh_from_db()
    assert started.state == Upload.State.EXPIRED
