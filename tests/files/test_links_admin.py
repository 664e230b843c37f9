"""Operators see every public link of the service (with last access) and can revoke any of them."""

from __future__ import annotations

from django.test import Client

from files.links import link_create, link_touch
from files.models import Activity, PublicLink
from files.sharing import share_create
from tests.factories import UserFactory
from tests.files.sharing_helpers import upload


def test_operators_see_every_link_of_the_service_and_can_revoke_it(client, owner, outsider, root, owner_workspace):
    staff = UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    node = upload(owner, root, "report.pdf", b"r")
    node.permission = "manage"
    link = link_create(actor=owner, node=node, password="pw")
    link_touch(link=link)
    share_create(actor=owner, node=node, email=outsider.email, permission="view")
    client.force_login(staff)

    for url in (
        "/admin/files/publiclink/",
        "/admin/files/publiclink/?state=active",
        f"/admin/files/publiclink/{link.pk}/change/",
        "/admin/files/share/",
        "/admin/files/activity/",
        "/admin/files/filespolicy/",
    ):
        assert client.get(url).status_code == 200, url
    listing = client.get("/admin/files/publiclink/").content.decode()
    assert link.token[:8] in listing and "report.pdf" in listing
    assert link.password_hash not in client.get(f"/admin/files/publiclink/{link.pk}/change/").content.decode()

    response = client.post(
        "/admin/files/publiclink/", {"action": "revoke", "_selected_action": [str(link.pk)]}, follow=True
    )

    assert response.status_code == 200
    assert PublicLink.objects.get(pk=link.pk).revoked_at is not None
    assert Activity.objects.filter(verb="link_revoke", actor=staff).exists()
    assert Client().get(f"/s/{link.token}").status_code == 410
