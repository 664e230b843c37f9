"""Staff who may only view public links or uploads cannot run the admin actions that end them.

Django offers an action without ``permissions=`` to everyone who can open the change list, and a
view permission opens it: a read-only support or audit role could revoke every customer's public
links and end their resumable uploads in flight. Both actions now need the change permission, as
the disk actions do.
"""

from __future__ import annotations

import pytest
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


# What each action ends, and how to tell it was ended.
ACTIONS = {
    "publiclink": ("revoke", _link, lambda link: link.revoked_at is not None),
    "upload": ("reclaim", _upload, lambda upload: upload.state == Upload.State.EXPIRED),
}


@pytest.mark.parametrize("model", ACTIONS)
def test_operator_who_may_only_view_cannot_run_the_action(owner, owner_workspace, model):
    action, make, ended = ACTIONS[model]
    target = make(owner, owner_workspace)
    admin = _operator(f"view_{model}")
    listing = admin.get(f"/admin/files/{model}/")
    assert listing.status_code == 200  # may look
    assert action not in _offered_actions(listing)

    admin.post(f"/admin/files/{model}/", {"action": action, "_selected_action": [str(target.pk)], "index": 0})

    target.refresh_from_db()
    assert not ended(target)


@pytest.mark.parametrize("model", ACTIONS)
def test_operator_who_may_change_still_runs_the_action(owner, owner_workspace, model):
    action, make, ended = ACTIONS[model]
    target = make(owner, owner_workspace)
    admin = _operator(f"view_{model}", f"change_{model}")

    admin.post(f"/admin/files/{model}/", {"action": action, "_selected_action": [str(target.pk)], "index": 0})

    target.refresh_from_db()
    assert ended(target)
