"""The server's side of vaults: what it accepts and stores, who may read it, and the edges it
keeps (no move or copy across a vault's edge, no vault in a vault, no server preview)."""

from __future__ import annotations

import base64
import functools
import io
import os

import pytest

from clients.vault import crypto
from files.models import Node, Vault
from tests.files.api_helpers import make_file, make_folder

PASSPHRASE = b"correct horse battery staple"


@functools.cache
def fields(passphrase: bytes = PASSPHRASE) -> dict:
    """A vault record's key fields; made once per passphrase (the KDF costs seconds on purpose)."""
    return crypto.new_vault(passphrase)[1]


def ciphertext(plain: bytes) -> bytes:
    """``plain`` as a vault file (under a throw-away vault key: the server never reads it)."""
    return crypto.EncryptingReader(io.BytesIO(plain), len(plain), os.urandom(32)).read()


@pytest.fixture
def vault(api, root) -> dict:
    response = api.post("/api/v1/vaults/", {"parent": str(root.pk), "name": "Private", **fields()}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_stores_only_the_wrapped_key_verifier_and_kdf_params(api, vault):
    stored = Vault.objects.get(node_id=vault["id"])
    assert stored.kdf["iterations"] == 600_000 and len(base64.b64decode(stored.kdf["salt"])) == 16
    assert vault["wrapped_key"] == stored.wrapped_key and vault["segment_size"] == crypto.SEGMENT_SIZE
    assert crypto.unlock(api.get(f"/api/v1/vaults/{vault['id']}/").json(), PASSPHRASE)
    assert Node.objects.get(pk=vault["id"]).is_folder


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"kdf": {"name": "PBKDF2-SHA-256", "iterations": 100_000, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}},
            "kdf.iterations",
        ),
        ({"kdf": {"name": "scrypt", "iterations": 600_000, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}}, "kdf.name"),
        ({"wrapped_key": base64.b64encode(b"short").decode()}, "wrapped_key"),
        ({"verifier": "not base64!"}, "verifier"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_created(api, root, change, message):
    response = api.post("/api/v1/vaults/", {"parent": str(root.pk), "name": "V", **fields(), **change}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_vault" and message in response.json()["error"]["message"]
    assert not Node.objects.filter(name="V").exists() and not Vault.objects.exists()


def test_outsider_gets_404_for_the_vault_and_a_teammate_of_another_workspace_too(outsider_api, vault):
    assert outsider_api.get(f"/api/v1/vaults/{vault['id']}/").status_code == 404
    assert outsider_api.put(f"/api/v1/vaults/{vault['id']}/key", fields(), format="json").status_code == 404


def test_a_plain_folder_is_no_vault(api, root, owner):
    folder = make_folder(owner, root, "plain")
    assert api.get(f"/api/v1/vaults/{folder.pk}/").status_code == 404
    assert api.get(f"/api/v1/nodes/{folder.pk}/vault/").json()["error"]["code"] == "not_in_vault"


def test_the_vault_of_a_file_inside_it_is_found(api, vault, owner):
    inner = make_folder(owner, Node.objects.get(pk=vault["id"]), "deep")
    file = make_file(owner, inner, "x.bin", ciphertext(b"x"))
    assert api.get(f"/api/v1/nodes/{file.pk}/vault/").json()["id"] == vault["id"]


def test_no_vault_inside_a_vault(api, vault):
    response = api.post("/api/v1/vaults/", {"parent": vault["id"], "name": "Nested", **fields()}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "vault_boundary"


def test_moves_and_copies_across_the_vaults_edge_are_refused(api, vault, owner, root):
    vault_folder = Node.objects.get(pk=vault["id"])
    inside = make_file(owner, vault_folder, "secret.bin", ciphertext(b"secret"))
    sub = make_folder(owner, vault_folder, "sub")
    plain = make_file(owner, root, "plain.txt")
    for node, target, verb in [
        (inside, root, "patch"),
        (inside, root, "copy"),
        (plain, vault_folder, "patch"),
        (plain, vault_folder, "copy"),
    ]:
        if verb == "patch":
            response = api.patch(f"/api/v1/nodes/{node.pk}/", {"parent": str(target.pk)}, format="json")
        else:
            response = api.post(f"/api/v1/nodes/{node.pk}/copy/", {"parent": str(target.pk)}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "vault_boundary", (node, verb)
    assert Node.objects.get(pk=inside.pk).parent_id == vault_folder.pk
    # Inside the vault both work; the vault folder itself may move but not be copied.
    assert api.patch(f"/api/v1/nodes/{inside.pk}/", {"parent": str(sub.pk)}, format="json").status_code == 200
    assert (
        api.post(f"/api/v1/nodes/{inside.pk}/copy/", {"parent": str(vault_folder.pk)}, format="json").status_code == 201
    )
    elsewhere = make_folder(owner, root, "elsewhere")
    assert api.patch(f"/api/v1/nodes/{vault['id']}/", {"parent": str(elsewhere.pk)}, format="json").status_code == 200
    copy = api.post(f"/api/v1/nodes/{vault['id']}/copy/", {"parent": str(root.pk)}, format="json")
    assert copy.status_code == 400 and copy.json()["error"]["code"] == "vault_boundary"
    holder = api.post(f"/api/v1/nodes/{elsewhere.pk}/copy/", {"parent": str(root.pk)}, format="json")
    assert holder.status_code == 400 and holder.json()["error"]["code"] == "vault_boundary"


def test_passphrase_change_rewraps_and_a_different_vault_key_is_refused(api, vault):
    record = api.get(f"/api/v1/vaults/{vault['id']}/").json()
    vault_key = crypto.unlock(record, PASSPHRASE)
    foreign = api.put(f"/api/v1/vaults/{vault['id']}/key", fields(b"new passphrase"), format="json")
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "vault_key_mismatch"
    assert Vault.objects.get(node_id=vault["id"]).wrapped_key == record["wrapped_key"]
    rewrapped = crypto.wrap_vault_key(vault_key, b"new passphrase")
    assert api.put(f"/api/v1/vaults/{vault['id']}/key", rewrapped, format="json").status_code == 200
    after = api.get(f"/api/v1/vaults/{vault['id']}/").json()
    assert crypto.unlock(after, b"new passphrase") == vault_key
    with pytest.raises(crypto.WrongPassphrase):
        crypto.unlock(after, PASSPHRASE)


def test_a_viewer_may_read_but_not_rewrap(owner, teammate, api, teammate_api, root):
    from accounts.models import Membership
    from tests.factories import team_workspace

    team = team_workspace(owner, "Team", members={teammate: Membership.Role.VIEWER})
    team_root = Node.objects.get(workspace=team, parent__isnull=True)
    created = api.post("/api/v1/vaults/", {"parent": str(team_root.pk), "name": "V", **fields()}, format="json").json()
    assert teammate_api.get(f"/api/v1/vaults/{created['id']}/").status_code == 200
    assert teammate_api.put(f"/api/v1/vaults/{created['id']}/key", fields(), format="json").status_code == 403


def test_dashboard_sends_vault_folders_to_the_vault_page_and_has_no_server_preview(client, owner, vault):
    client.force_login(owner)
    folder = Node.objects.get(pk=vault["id"])
    sub = make_folder(owner, folder, "sub")
    file = make_file(owner, sub, "a.txt", ciphertext(os.urandom(100)))
    response = client.get(f"/app/w/{folder.workspace_id}/f/{sub.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/app/vaults/{vault['id']}/?folder={sub.pk}"
    page = client.get(f"/app/vaults/{vault['id']}/")
    assert b"names are not encrypted" in page.content and vault["wrapped_key"].encode() not in page.content
    assert client.get(f"/app/preview/{file.pk}/").status_code == 415


def test_outsider_gets_404_for_the_vault_page(client, outsider, vault):
    client.force_login(outsider)
    assert client.get(f"/app/vaults/{vault['id']}/").status_code == 404


def test_plaintext_size_follows_the_format_exactly():
    from files.vault_rules import plaintext_size

    for size in (0, 1, crypto.SEGMENT_SIZE - 1, crypto.SEGMENT_SIZE, crypto.SEGMENT_SIZE + 1, 5 * crypto.SEGMENT_SIZE):
        assert plaintext_size(crypto.ciphertext_size(size)) == size
    assert plaintext_size(crypto.HEADER_SIZE + 15) is None
    assert plaintext_size(crypto.HEADER_SIZE + crypto.STORED_SEGMENT + crypto.TAG_SIZE) is None


def test_only_vault_files_may_be_stored_in_a_vault(api, vault, owner, root):
    """The server keeps only ciphertext in a vault: a client that does not encrypt (a WebDAV sync,
    a raw PUT) is refused, nothing is stored and no quota is taken."""
    workspace = owner_workspace_of(root)
    used = workspace.used_bytes
    base = f"/api/v1/nodes/{vault['id']}/children/"
    for body in (b"plain text", b"CSVAULT\x00" + b"\x01" + bytes(100), ciphertext(b"x")[:80]):
        response = api.put(base + "notes.txt", body, content_type="application/octet-stream")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "not_vault_ciphertext"
    multipart = api.post(base, {"file": [io.BytesIO(b"plain")]}, format="multipart")
    assert multipart.status_code == 400 and multipart.json()["error"]["code"] == "not_vault_ciphertext"
    assert not Node.objects.filter(parent_id=vault["id"]).exists()
    workspace.refresh_from_db()
    assert workspace.used_bytes == used
    # Ciphertext goes in, whatever its size; plaintext outside the vault as ever.
    for plain in (b"", b"x" * 70_000):
        assert (
            api.put(base + f"s{len(plain)}.bin", ciphertext(plain), content_type="application/octet-stream").status_code
            == 201
        )
    # A new version of a vault file, through the API and WebDAV, is held to the same rule.
    secret = Node.objects.get(parent_id=vault["id"], name="s0.bin")
    over = api.put(f"/api/v1/nodes/{secret.pk}/content", b"plain", content_type="application/octet-stream")
    assert over.status_code == 400 and over.json()["error"]["code"] == "not_vault_ciphertext"
    assert api.put(f"/api/v1/nodes/{secret.pk}/content", ciphertext(b"new"), content_type="x/y").status_code == 200
    plain_put = api.put(f"/api/v1/nodes/{root.pk}/children/plain.txt", b"plain", content_type="text/plain")
    assert plain_put.status_code == 201


def owner_workspace_of(node):
    node.workspace.refresh_from_db()
    return node.workspace
