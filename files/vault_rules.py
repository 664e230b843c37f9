"""The rules the server keeps for vaults (docs/vault-format.md), below the services that use them.

The server cannot read a vault's files, so it only keeps ciphertext from leaving the vault (and
plaintext from entering it by a move or copy), checks the shape of what clients store, and works
out plaintext sizes from ciphertext sizes, which the format fixes exactly.
"""

from __future__ import annotations

import base64
import binascii

from cloudstorage.errors import ServiceError
from files.models import Node, Vault
from files.tree import ancestor_chain, folders_up

FORMAT = 1
KDF_NAME = "PBKDF2-SHA-256"
MIN_ITERATIONS = 600_000
# Far above any sane setting; keeps a client from making every unlock take hours.
MAX_ITERATIONS = 50_000_000
SEGMENT_SIZE = 65536
HEADER_SIZE = 72
TAG_SIZE = 16
WRAPPED_KEY_SIZE = 40
VERIFIER_SIZE = 32


def plaintext_size(ciphertext_size: int) -> int | None:
    """The plaintext size of a format-1 vault file of ``ciphertext_size`` bytes; None when no
    valid file has that size."""
    body = ciphertext_size - HEADER_SIZE
    if body < TAG_SIZE:
        return None
    segments = -(-body // (SEGMENT_SIZE + TAG_SIZE))
    last = body - (segments - 1) * (SEGMENT_SIZE + TAG_SIZE) - TAG_SIZE
    if last < 0 or (last == 0 and segments > 1):
        return None
    return body - segments * TAG_SIZE


def vault_of(*, node: Node | None) -> Vault | None:
    """The vault ``node`` is in (``node`` itself when it is a vault's folder), or None.

    One query in a workspace without vaults (nearly all of them); two otherwise."""
    if node is None:
        return None
    vaults = {vault.node_id: vault for vault in Vault.objects.filter(workspace_id=node.workspace_id)}
    if not vaults:
        return None
    ids = [node.pk] + ([node_id for node_id, _, _ in ancestor_chain(node_id=node.parent_id)] if node.parent_id else [])
    # The nearest one; vaults are never nested, but the answer would still be the right one.
    return next((vaults[node_id] for node_id in ids if node_id in vaults), None)


# The first 16 bytes of every format-1 vault file: magic, format, reserved, segment size.
FILE_PREFIX = b"CSVAULT\x00" + bytes([FORMAT, 0, 0, 0]) + SEGMENT_SIZE.to_bytes(4, "big")


def vault_content_check(*, place: Node, size: int, head: bytes) -> None:
    """Refuse content that is no format-1 vault file (its header, a size only ciphertext has) as a
    file in a vault (``place``: the folder it goes into, or the file it becomes a version of): a
    WebDAV or API client that does not encrypt would otherwise store plaintext where the server
    promises to keep only ciphertext, and vault clients could not read it.

    ``place.has_vaults`` (annotated by files.access.node_get_for_user) spares the query in the
    workspaces without vaults."""
    if getattr(place, "has_vaults", True) is False or vault_of(node=place) is None:
        return
    if head[: len(FILE_PREFIX)] != FILE_PREFIX or plaintext_size(size) is None:
        raise ServiceError(
            code="not_vault_ciphertext",
            message="This folder is a vault: its files are stored encrypted by a vault client (the browser or "
            "python -m clients.vault), and this is not a vault file.",
            status_code=400,
        )


def _boundary_error(message: str) -> ServiceError:
    return ServiceError(code="vault_boundary", message=message, status_code=400)


def vault_boundary_check(*, node: Node, target: Node, verb: str) -> None:
    """Refuse to move or copy ``node`` into ``target`` across a vault's edge: ciphertext would land
    where clients read plaintext, or plaintext where they expect ciphertext."""
    source_vault = vault_of(node=node.parent) if node.parent_id else None
    target_vault = vault_of(node=target)
    if getattr(source_vault, "pk", None) != getattr(target_vault, "pk", None):
        if source_vault is not None:
            raise _boundary_error(f"Items in a vault can only be {verb} within that vault.")
        raise _boundary_error(f"Items cannot be {verb} into a vault: upload them through a vault client.")
    if target_vault is not None and node.is_folder and _holds_vault(node=node):
        raise _boundary_error("A vault cannot be placed inside another vault.")
    if verb == "copied" and node.is_folder and _holds_vault(node=node):
        raise _boundary_error("A folder that is or holds a vault cannot be copied; copy the files inside it.")


def _holds_vault(*, node: Node) -> bool:
    vault_ids = list(Vault.objects.filter(workspace_id=node.workspace_id).values_list("node_id", flat=True))
    if not vault_ids:
        return False
    return node.pk in vault_ids or node.pk in folders_up(start_ids=vault_ids)


def _b64(value, *, field: str, size: int | None = None, min_size: int = 0) -> str:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or (size is not None and len(raw) != size) or len(raw) < min_size:
        expected = f"{size} bytes" if size is not None else f"at least {min_size} bytes"
        raise ServiceError(code="invalid_vault", message=f"{field} must be base64 of {expected}.", status_code=400)
    return value


def vault_params_clean(*, kdf, wrapped_key, verifier) -> dict:
    """The KDF parameters, wrapped key and verifier a client sent, checked for shape (400 if not)."""
    if not isinstance(kdf, dict) or kdf.get("name") != KDF_NAME:
        raise ServiceError(code="invalid_vault", message=f'kdf.name must be "{KDF_NAME}".', status_code=400)
    iterations = kdf.get("iterations")
    if (
        not isinstance(iterations, int)
        or isinstance(iterations, bool)
        or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS
    ):
        raise ServiceError(
            code="invalid_vault",
            message=f"kdf.iterations must be a whole number from {MIN_ITERATIONS:,} to {MAX_ITERATIONS:,}.",
            status_code=400,
        )
    salt = _b64(kdf.get("salt"), field="kdf.salt", min_size=16)
    if len(salt) > 200:
        raise ServiceError(code="invalid_vault", message="kdf.salt is too long.", status_code=400)
    return {
        "kdf": {"name": KDF_NAME, "iterations": iterations, "salt": salt},
        "wrapped_key": _b64(wrapped_key, field="wrapped_key", size=WRAPPED_KEY_SIZE),
        "verifier": _b64(verifier, field="verifier", size=VERIFIER_SIZE),
    }
