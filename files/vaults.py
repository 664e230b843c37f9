"""Writes of vaults: create one, change its passphrase. The rules live in files.vault_rules."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cloudstorage.errors import ServiceError
from files.activity import activity_record
from files.folders import folder_create
from files.models import Node, Vault
from files.vault_rules import FORMAT, vault_of, vault_params_clean


def vault_create(*, user, parent: Node, name: str, kdf, wrapped_key, verifier) -> Vault:
    """A new empty vault folder ``name`` in ``parent`` holding what a client needs to unlock it."""
    params = vault_params_clean(kdf=kdf, wrapped_key=wrapped_key, verifier=verifier)
    if vault_of(node=parent) is not None:
        raise ServiceError(code="vault_boundary", message="A vault cannot be created inside a vault.", status_code=400)
    with transaction.atomic():
        folder = folder_create(user=user, parent=parent, name=name)
        vault = Vault.objects.create(node=folder, workspace_id=folder.workspace_id, format=FORMAT, **params)
        activity_record(workspace_id=folder.workspace_id, actor=user, verb="vault_create", node=folder)
    return vault


def vault_key_change(*, user, vault: Vault, kdf, wrapped_key, verifier) -> Vault:
    """The same vault key wrapped by a new passphrase (new salt, maybe more iterations); no file
    changes. The verifier must stay the same: a different one means a different vault key, which
    would leave every file of the vault unreadable."""
    params = vault_params_clean(kdf=kdf, wrapped_key=wrapped_key, verifier=verifier)
    if params["verifier"] != vault.verifier:
        raise ServiceError(
            code="vault_key_mismatch",
            message="The new wrapping is not of this vault's key (the verifier differs); nothing was changed.",
            status_code=400,
        )
    vault.kdf, vault.wrapped_key, vault.key_changed_at = params["kdf"], params["wrapped_key"], timezone.now()
    vault.save(update_fields=["kdf", "wrapped_key", "key_changed_at"])
    activity_record(workspace_id=vault.workspace_id, actor=user, verb="vault_key_change", node=vault.node)
    return vault
