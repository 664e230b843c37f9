"""Public links: the API that makes and revokes them, and the no-login pages at /s/{token}."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import FakePayload, encode_multipart
from django.utils import timezone

from files.links import link_create, link_revoke
from files.models import Activity, Node, PublicLink
from files.trash import node_trash, trash_restore
from tests.factories import UserFactory
from tests.files.sharing_helpers import body, client_for, content, folder, root_of, upload


@pytest.fixture
def report(owner, root):
    return upload(owner, root, "report (final).pdf", b"%PDF-1.7 report body")


@pytest.fixture
def album(owner, root):
    album = folder(owner, root, "album")
    upload(owner, album, "a.jpg", b"A" * 1000)
    inner = folder(owner, album, "inner")
    upload(owner, inner, "b.txt", b"bee")
    folder(owner, album, "empty")
    return album


def make_link(api, node, **fields):
    response = api.post(f"/api/v1/nodes/{node.pk}/links/", fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def token_of(link: dict) -> str:
    return link["url"].rsplit("/s/", 1)[1]


def test_link_token_is_unguessable_and_the_page_downloads_the_file(api, client, report):
    link = make_link(api, report)
    token = token_of(link)
    assert len(token) >= 32 and link["token"] == token  # 24 random bytes: 192 bits
    assert link["state"] == "active" and link["has_password"] is False

    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and "report (final).pdf" in page.content.decode()

    download = client.get(f"/s/{token}/download")
    assert download.status_code == 200 and download.streaming
    assert body(download) == b"%PDF-1.7 report body"
    assert download["Content-Disposition"].startswith('attachment; filename="report (final).pdf"')
    assert download["Content-Length"] == str(len(b"%PDF-1.7 report body"))


def test_a_public_download_resumes_with_range_and_each_request_counts(api, client, report):
    token = token_of(make_link(api, report, max_downloads=2))
    first = client.get(f"/s/{token}/download", HTTP_RANGE="bytes=0-7")
    assert first.status_code == 206 and body(first) == b"%PDF-1.7"
    rest = client.get(f"/s/{token}/download", HTTP_RANGE="bytes=8-")
    assert rest.status_code == 206 and body(rest) == b" report body"
    assert rest["Content-Range"] == "bytes 8-19/20"
    assert PublicLink.objects.get(token=token).download_count == 2
    assert client.get(f"/s/{token}/download").status_code == 410


def test_a_range_past_the_end_is_416_and_not_counted(api, client, report):
    token = token_of(make_link(api, report))
    response = client.get(f"/s/{token}/download", HTTP_RANGE="bytes=99-")
    assert response.status_code == 416 and response["Content-Range"] == "bytes */20"
    assert PublicLink.objects.get(token=token).download_count == 0


def test_folder_link_lists_and_zips_only_its_subtree(owner, root, api, client, album):
    token = token_of(make_link(api, album))
    outside = upload(owner, root, "outside.txt", b"no")

    page = client.get(f"/s/{token}").content.decode()
    assert "a.jpg" in page and "inner" in page and "outside.txt" not in page
    inner = Node.objects.get(name="inner")
    assert "b.txt" in client.get(f"/s/{token}?folder={inner.pk}").content.decode()

    archive = zipfile.ZipFile(io.BytesIO(body(client.get(f"/s/{token}/download"))))
    # The same zip as the API's: files, plus an entry for each empty folder.
    assert sorted(archive.namelist()) == ["album/a.jpg", "album/empty/", "album/inner/b.txt"]
    assert archive.read("album/inner/b.txt") == b"bee"
    b_txt = Node.objects.get(name="b.txt")
    assert body(client.get(f"/s/{token}/download?node={b_txt.pk}")) == b"bee"
    assert client.get(f"/s/{token}/download?node={outside.pk}").status_code == 404
    assert client.get(f"/s/{token}?folder={outside.parent_id}").status_code == 404


def test_unknown_token_is_404(client, db):
    assert client.get("/s/not-a-real-token").status_code == 404
    assert client.get("/s/not-a-real-token/download").status_code == 404


def test_expired_link_answers_410(owner, report, client):
    report.permission = "manage"
    now = timezone.now()
    link = link_create(actor=owner, node=report, expires_at=now + timedelta(hours=1), now=now)
    assert client.get(f"/s/{link.token}").status_code == 200
    PublicLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(f"/s/{link.token}").status_code == 410
    assert client.get(f"/s/{link.token}/download").status_code == 410


def test_exhausted_link_answers_410(api, client, report):
    token = token_of(make_link(api, report, max_downloads=2))
    assert client.get(f"/s/{token}/download").status_code == 200
    assert client.get(f"/s/{token}/download").status_code == 200
    assert client.get(f"/s/{token}/download").status_code == 410
    assert client.get(f"/s/{token}").status_code == 410
    assert PublicLink.objects.get(token=token).download_count == 2


def test_revoked_link_answers_410_at_once_for_page_download_and_zip(api, client, album):
    link = make_link(api, album)
    token = token_of(link)
    assert client.get(f"/s/{token}/download").status_code == 200

    assert api.delete(f"/api/v1/links/{link['id']}/").status_code == 204

    assert client.get(f"/s/{token}").status_code == 410
    assert client.get(f"/s/{token}/download").status_code == 410
    inner = Node.objects.get(name="inner")
    assert client.get(f"/s/{token}?folder={inner.pk}").status_code == 410


def test_deleting_a_link_twice_is_404_the_second_time_as_for_a_share(api, album, owner_workspace):
    link = make_link(api, album)
    share_id = api.post(
        f"/api/v1/nodes/{album.pk}/shares/", {"email": UserFactory().email, "permission": "view"}, format="json"
    ).json()["id"]

    assert api.delete(f"/api/v1/links/{link['id']}/").status_code == 204
    again = api.delete(f"/api/v1/links/{link['id']}/")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert api.delete(f"/api/v1/shares/{share_id}/").status_code == 204
    assert api.delete(f"/api/v1/shares/{share_id}/").status_code == 404
    # The revoked link is still shown (its state and the inventory), and switched off only once.
    assert api.get(f"/api/v1/links/{link['id']}/").json()["state"] == "revoked"
    assert Activity.objects.filter(workspace=owner_workspace, verb="link_revoke").count() == 1


def test_link_on_a_trashed_item_stops_working_and_comes_back_on_restore(owner, api, client, report):
    token = token_of(make_link(api, report))
    node_trash(user=owner, node=report)
    assert client.get(f"/s/{token}").status_code == 404
    assert client.get(f"/s/{token}/download").status_code == 404
    trash_restore(user=owner, node=report)
    assert body(client.get(f"/s/{token}/download")) == b"%PDF-1.7 report body"


def test_password_is_hashed_and_required_before_any_download(api, report):
    link = make_link(api, report, password="open sesame")
    token = token_of(link)
    stored = PublicLink.objects.get(pk=link["id"]).password_hash
    assert "open sesame" not in stored and stored.startswith(("md5$", "pbkdf2", "argon2", "scrypt"))
    browser = Client()

    page = browser.get(f"/s/{token}")
    assert page.status_code == 200 and "password" in page.content.decode().lower()
    assert "report (final).pdf" not in page.content.decode()
    assert browser.get(f"/s/{token}/download").status_code == 302

    wrong = browser.post(f"/s/{token}", {"password": "guess"})
    assert wrong.status_code == 403
    right = browser.post(f"/s/{token}", {"password": "open sesame"})
    assert right.status_code == 302
    assert body(browser.get(f"/s/{token}/download")) == b"%PDF-1.7 report body"
    assert Client().get(f"/s/{token}/download").status_code == 302  # another browser is still locked out


def test_wrong_passwords_are_rate_limited_even_for_the_right_one_afterwards(api, report, settings):
    settings.CLOUDSTORAGE_LINK_PASSWORD_ATTEMPTS = 5
    token = token_of(make_link(api, report, password="open sesame"))
    browser = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        assert browser.post(f"/s/{token}", {"password": "guess"}).status_code == 403
    assert browser.post(f"/s/{token}", {"password": "guess"}).status_code == 429
    assert browser.post(f"/s/{token}", {"password": "open sesame"}).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.7").post(f"/s/{token}", {"password": "open sesame"}).status_code == 302


def test_upload_link_takes_files_without_showing_or_replacing_anything(owner, api, client, album):
    token = token_of(make_link(api, album, permission="upload"))

    page = client.get(f"/s/{token}").content.decode()
    assert 'type="file"' in page and "a.jpg" not in page
    response = client.post(f"/s/{token}/upload", {"file": SimpleUploadedFile("a.jpg", b"from a stranger")})
    assert response.status_code == 302

    original = Node.objects.get(parent=album, name="a.jpg")
    assert content(original) == b"A" * 1000 and original.version == 1
    received = Node.objects.get(parent=album, name="a (2).jpg")
    assert content(received) == b"from a stranger" and received.created_by is None
    assert client.get(f"/s/{token}/download").status_code == 404
    assert Activity.objects.filter(verb="link_upload", node=received).exists()


def test_upload_link_needs_a_folder_and_view_link_takes_no_upload(api, client, report, album):
    response = api.post(f"/api/v1/nodes/{report.pk}/links/", {"permission": "upload"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_a_folder"
    token = token_of(make_link(api, album))
    assert client.post(f"/s/{token}/upload", {"file": SimpleUploadedFile("x.txt", b"x")}).status_code == 404
    assert not Node.objects.filter(name="x.txt").exists()


def test_upload_link_respects_the_quota(owner, owner_workspace, api, client, album):
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 3
    owner_workspace.save(update_fields=["used_bytes"])
    response = client.post(f"/s/{token}/upload", {"file": SimpleUploadedFile("big.bin", b"0123456789")})
    assert response.status_code == 413
    assert not Node.objects.filter(name="big.bin").exists()


@pytest.mark.parametrize(
    ("situation", "size", "status"),
    [("small file over quota", 1000, 413), ("streamed file over quota", 2 * 1024 * 1024, 413), ("read-only", 10, 403)],
)
def test_upload_link_refusal_tells_the_sender_nothing_of_the_owners_account(
    owner_workspace, api, client, album, situation, size, status
):
    # The owner's free space, plan and payment state are the owner's business; a stranger with a
    # file request learns only that the folder cannot take the files now (audit 2).
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 700
    owner_workspace.read_only = situation == "read-only"
    owner_workspace.save(update_fields=["used_bytes", "read_only"])

    response = client.post(f"/s/{token}/upload", {"file": SimpleUploadedFile("big.bin", b"x" * size)})

    assert response.status_code == status
    page = response.content.decode()
    assert "700 bytes" not in page
    alert = re.search(r'role="alert">(.*?)</p>', page, re.S).group(1)
    assert alert.startswith("This folder cannot take these files right now."), alert
    for owners_business in ("free", "plan", "payment", "read-only", "quota", "space"):
        assert owners_business not in alert.lower(), alert
    assert not Node.objects.filter(name="big.bin").exists()


def test_upload_link_refuses_files_that_do_not_all_fit_and_keeps_none(owner, owner_workspace, api, client, album):
    # Small files take their quota at their commit; several are held first, so a batch that runs
    # over is refused before the first one is kept.
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 1500
    owner_workspace.save(update_fields=["used_bytes"])
    files = [SimpleUploadedFile("one.bin", b"1" * 1000), SimpleUploadedFile("two.bin", b"2" * 1000)]
    response = client.post(f"/s/{token}/upload", {"file": files})
    assert response.status_code == 413
    assert not Node.objects.filter(parent=album, name__in=["one.bin", "two.bin"]).exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == owner_workspace.quota_bytes - 1500


def test_upload_link_streams_into_the_store_and_checks_csrf(owner, owner_workspace, api, album, settings):
    # Django's default handlers would keep this in memory or spool it to a temporary file; the
    # streaming handler stores it as it arrives, so quota is reserved and settled exactly.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    before = owner_workspace.used_bytes
    data = bytes(range(256)) * 4096  # 1 MiB

    strict = Client(enforce_csrf_checks=True)
    page = strict.get(f"/s/{token}")
    csrf = page.cookies["csrftoken"].value
    refused = strict.post(f"/s/{token}/upload", {"file": SimpleUploadedFile("late.bin", data)})
    assert refused.status_code == 403
    accepted = strict.post(
        f"/s/{token}/upload", {"file": SimpleUploadedFile("big.bin", data), "csrfmiddlewaretoken": csrf}
    )
    assert accepted.status_code == 302

    assert not Node.objects.filter(name="late.bin").exists()
    assert content(Node.objects.get(parent=album, name="big.bin")) == data
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == before + len(data)


def test_upload_link_refuses_a_file_in_another_field_and_keeps_nothing(owner, owner_workspace, api, client, album):
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    before = owner_workspace.used_bytes
    response = client.post(f"/s/{token}/upload", {"attachment": SimpleUploadedFile("x.bin", b"xyz")})
    assert response.status_code == 400
    assert "file" in response.content.decode()
    assert not Node.objects.filter(name="x.bin").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == before


def test_upload_link_refuses_a_body_cut_short_and_keeps_nothing_of_it(owner_workspace, api, client, album):
    token = token_of(make_link(api, album, permission="upload"))
    owner_workspace.refresh_from_db()
    before = owner_workspace.used_bytes
    whole = encode_multipart("CuT", {"file": [SimpleUploadedFile("one.bin", b"1" * 5000)]})
    response = client.generic(
        "POST", f"/s/{token}/upload", whole[:-200], content_type="multipart/form-data; boundary=CuT"
    )
    assert response.status_code == 400
    assert "closing boundary" in response.content.decode()
    assert not Node.objects.filter(name="one.bin").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == before


class _BodyOutlivingItsLink(FakePayload):
    """A request body during whose sending the owner acts on the link: ``change`` runs once, when
    half of the body has been read (a big upload takes minutes on a slow line)."""

    def __init__(self, data: bytes, change):
        super().__init__(data)
        self.change, self.half, self.sent = change, len(data) // 2, 0

    def read(self, size=-1, /):
        block = super().read(size)
        self.sent += len(block)
        if self.change and self.sent >= self.half:
            self.change, change = None, self.change
            change()
        return block


@pytest.mark.parametrize("change", ["revoked", "expired"])
def test_upload_link_switched_off_during_the_body_keeps_nothing(owner, owner_workspace, api, client, album, change):
    token = token_of(make_link(api, album, permission="upload"))
    link = PublicLink.objects.get(token=token)
    owner_workspace.refresh_from_db()
    before = owner_workspace.used_bytes

    def switch_off():
        if change == "revoked":
            link_revoke(actor=owner, link=link)
        else:
            PublicLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    # Big enough to reserve quota while it streams (files.quota.TAKE_AT_COMMIT), which must be given back.
    whole = encode_multipart("LaTe", {"file": [SimpleUploadedFile("late.bin", b"L" * (2 * 1024 * 1024))]})
    response = _upload_while(client, token, whole, switch_off)

    assert response.status_code == 410, response.content.decode()[:300]
    assert not Node.objects.filter(name="late.bin").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == before
    assert not Activity.objects.filter(verb="link_upload").exists()


def _upload_while(client, token: str, whole: bytes, change):
    """POST the multipart ``whole`` (boundary "LaTe") to the upload link, ``change`` running half way."""
    return client.generic(
        "POST",
        f"/s/{token}/upload",
        **{
            "wsgi.input": _BodyOutlivingItsLink(whole, change),
            "CONTENT_LENGTH": str(len(whole)),
            "CONTENT_TYPE": "multipart/form-data; boundary=LaTe",
        },
    )


def test_upload_link_whose_creator_loses_access_during_the_body_keeps_none_of_its_files(
    owner, owner_workspace, api, client, friend, album
):
    # A request's files are committed after its whole body: the first commit decides the creator's
    # access again (the further ones read only the link's row), so a grantee whose share is revoked
    # while the files arrive gets none of them in.
    share = api.post(
        f"/api/v1/nodes/{album.pk}/shares/", {"email": friend.email, "permission": "edit"}, format="json"
    ).json()
    token = token_of(make_link(client_for(friend), album, permission="upload"))
    owner_workspace.refresh_from_db()
    before = owner_workspace.used_bytes

    def revoke_share():
        assert api.delete(f"/api/v1/shares/{share['id']}/").status_code == 204

    files = [SimpleUploadedFile(f"late{n}.bin", bytes([n]) * 50_000) for n in range(3)]
    whole = encode_multipart("LaTe", {"file": files})
    response = _upload_while(client, token, whole, revoke_share)

    assert response.status_code == 410, response.content.decode()[:300]
    assert b"no longer has access" in response.content
    assert not Node.objects.filter(name__startswith="late").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == before
    assert not Activity.objects.filter(verb="link_upload").exists()


def test_only_editors_create_links(owner, api, report):
    viewer = UserFactory(email="v@example.com")
    api.post(f"/api/v1/nodes/{report.pk}/shares/", {"email": "v@example.com", "permission": "view"}, format="json")
    viewer_api = client_for(viewer)
    assert viewer_api.post(f"/api/v1/nodes/{report.pk}/links/", {}, format="json").status_code == 403
    assert not PublicLink.objects.exists()


def test_policy_requires_password_and_bounds_expiry(owner, teammate, team, api, teammate_api):
    team_file = upload(owner, root_of(team), "t.txt", b"t")
    url = f"/api/v1/workspaces/{team.pk}/link-policy/"
    policy = {"default_expiry_days": 3, "max_expiry_days": 10, "password_required": True, "default_max_downloads": 5}
    assert teammate_api.put(url, policy, format="json").status_code == 403
    response = api.put(url, policy, format="json")
    assert response.status_code == 200 and response.json()["max_expiry_days"] == 10
    assert teammate_api.get(url).json()["password_required"] is True

    missing = teammate_api.post(f"/api/v1/nodes/{team_file.pk}/links/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "link_password_required"
    too_long = teammate_api.post(
        f"/api/v1/nodes/{team_file.pk}/links/",
        {"password": "pw", "expires_at": (timezone.now() + timedelta(days=11)).isoformat()},
        format="json",
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "link_expiry_too_long"
    made = make_link(teammate_api, team_file, password="pw")
    expires = timezone.datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=2, hours=23) < expires - timezone.now() <= timedelta(days=3)
    assert made["max_downloads"] == 5


def test_operator_settings_are_defaults_and_a_hard_maximum(owner, api, owner_workspace, report, settings):
    settings.CLOUDSTORAGE_LINK_MAX_EXPIRY_DAYS = 7
    settings.CLOUDSTORAGE_LINK_PASSWORD_REQUIRED = True
    url = f"/api/v1/workspaces/{owner_workspace.pk}/link-policy/"
    refused = api.put(url, {"max_expiry_days": 30}, format="json")
    assert refused.status_code == 400
    policy = api.put(url, {"password_required": False}, format="json").json()
    assert policy["password_required"] is True and policy["max_expiry_days"] == 7
    link = make_link(api, report, password="pw")
    assert timezone.datetime.fromisoformat(link["expires_at"]) <= timezone.now() + timedelta(days=7)


@pytest.mark.parametrize("field", ["default_expiry_days", "max_expiry_days", "default_max_downloads"])
def test_absurdly_large_policy_values_are_a_400_not_a_crash(api, owner_workspace, field):
    url = f"/api/v1/workspaces/{owner_workspace.pk}/link-policy/"
    before = api.get(url).json()
    response = api.put(url, {field: 586586126459587960766464}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]
    assert api.get(url).json() == before


def test_absurdly_large_link_limit_is_a_400(api, report):
    response = api.post(f"/api/v1/nodes/{report.pk}/links/", {"max_downloads": 2**40}, format="json")
    assert response.status_code == 400
    assert not PublicLink.objects.exists()


def test_inventory_lists_every_link_with_last_access_including_trashed_items(owner, api, client, team, report):
    token = token_of(make_link(api, report))
    other = make_link(api, upload(owner, report.parent, "b.txt", b"b"))
    node_trash(user=owner, node=Node.objects.get(pk=other["node"]))
    client.get(f"/s/{token}")

    response = api.get(f"/api/v1/workspaces/{report.workspace_id}/links/")

    assert response.status_code == 200
    items = {item["name"]: item for item in response.json()["results"]}
    assert items["report (final).pdf"]["last_accessed_at"] is not None
    assert items["report (final).pdf"]["path"] == "/report (final).pdf"
    assert items["b.txt"]["state"] == "in_trash"
    # The owner can still revoke the link of a trashed item.
    assert api.delete(f"/api/v1/links/{other['id']}/").status_code == 204
    assert len(api.get(f"/api/v1/workspaces/{report.workspace_id}/links/").json()["results"]) == 1
    revoked_too = api.get(f"/api/v1/workspaces/{report.workspace_id}/links/?include_revoked=1").json()["results"]
    assert len(revoked_too) == 2


def test_inventory_and_policy_changes_are_for_managers(team, teammate_api):
    assert teammate_api.get(f"/api/v1/workspaces/{team.pk}/links/").status_code == 403


def test_link_creation_and_access_are_in_the_activity_log(api, client, report, owner_workspace):
    token = token_of(make_link(api, report))
    client.get(f"/s/{token}")
    client.get(f"/s/{token}")  # a reload within the hour is not logged again
    client.get(f"/s/{token}/download")
    client.head(f"/s/{token}/download")  # nor counted: a HEAD is not a download
    verbs = list(Activity.objects.filter(workspace=owner_workspace).order_by("id").values_list("verb", flat=True))
    assert verbs == ["link_create", "link_access", "link_download"]
    assert PublicLink.objects.get(token=token).download_count == 1


def test_outsider_gets_404_on_every_link_management_route(api, outsider_api, report, owner_workspace):
    link = make_link(api, report)
    ws = owner_workspace.pk
    responses = [
        outsider_api.get(f"/api/v1/nodes/{report.pk}/links/"),
        outsider_api.post(f"/api/v1/nodes/{report.pk}/links/", {}, format="json"),
        outsider_api.get(f"/api/v1/links/{link['id']}/"),
        outsider_api.delete(f"/api/v1/links/{link['id']}/"),
        outsider_api.get(f"/api/v1/workspaces/{ws}/links/"),
        outsider_api.get(f"/api/v1/workspaces/{ws}/link-policy/"),
        outsider_api.put(f"/api/v1/workspaces/{ws}/link-policy/", {"password_required": True}, format="json"),
    ]
    assert [response.status_code for response in responses] == [404] * 7
    assert PublicLink.objects.get(pk=link["id"]).revoked_at is None
    assert PublicLink.objects.count() == 1


def test_a_link_made_by_a_grantee_is_in_the_owners_inventory_and_revocable(api, client, report, owner_workspace):
    editor = UserFactory(email="editor@example.com")
    api.post(f"/api/v1/nodes/{report.pk}/shares/", {"email": editor.email, "permission": "edit"}, format="json")
    made = make_link(client_for(editor), report)

    (listed,) = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/links/").json()["results"]
    assert listed["id"] == made["id"] and listed["created_by"] == editor.email
    assert api.delete(f"/api/v1/links/{made['id']}/").status_code == 204
    assert client.get(f"/s/{token_of(made)}").status_code == 410
