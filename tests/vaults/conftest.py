"""Vault tests: a live server (the reference client talks HTTP to it), local disks, a vault."""

from __future__ import annotations

import pytest

from accounts.services import token_create
from tests.factories import local_disks
from tests.files import test_tus

PASSPHRASE = b"correct horse battery staple"
# The live server, whose connection threads end before the test database goes away.
live = test_tus.live


@pytest.fixture(autouse=True)
def disks(settings, db):
    settings.CLOUDSTORAGE_CHUNK_AVG = 1024 * 1024
    return local_disks(settings)


@pytest.fixture
def root(owner_workspace):
    from files.models import Node

    return Node.objects.get(workspace=owner_workspace, parent__isnull=True)


@pytest.fixture
def token(owner) -> str:
    return token_create(user=owner, name="vault client").raw


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


@pytest.fixture
def vault_client(live, token):
    from clients.vault.api import VaultClient

    return VaultClient(base=live.url, token=token)


@pytest.fixture
def vault_id(vault_client, root) -> str:
    return vault_client.vault_create(parent=str(root.pk), name="Private", passphrase=PASSPHRASE)
