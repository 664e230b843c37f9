"""Vaults (end-to-end encrypted folders, docs/vault-format.md): create one, read what a client needs
to unlock it, change its passphrase. The server never sees a passphrase, key or plaintext byte."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api_fields import StrictCharField, StrictUUIDField
from files.access import node_get_for_user, vault_get_for_user
from files.models import Vault
from files.vault_rules import HEADER_SIZE, SEGMENT_SIZE, vault_of
from files.vaults import vault_create, vault_key_change

KDF_EXAMPLE = {"name": "PBKDF2-SHA-256", "iterations": 600000, "salt": "q7Vb3v1s2uJXlH0yKq3N1w=="}


class VaultKeyIn(serializers.Serializer):
    kdf = serializers.JSONField(help_text='{"name": "PBKDF2-SHA-256", "iterations": ≥600000, "salt": b64 ≥16 bytes}')
    wrapped_key = StrictCharField(help_text="b64 of AES-KW(passphrase key, vault key), 40 bytes")
    verifier = StrictCharField(help_text='b64 of HMAC-SHA-256(vault key, "cloudstorage vault verifier v1")')


class VaultCreateIn(VaultKeyIn):
    parent = StrictUUIDField(help_text="The folder to create the vault in.")
    name = StrictCharField(trim_whitespace=False, max_length=1000)


class VaultOut(serializers.Serializer):
    id = serializers.UUIDField(help_text="The vault's folder id.")
    name = serializers.CharField()
    parent = serializers.UUIDField()
    workspace = serializers.UUIDField()
    format = serializers.IntegerField()
    kdf = serializers.JSONField()
    wrapped_key = serializers.CharField()
    verifier = serializers.CharField()
    segment_size = serializers.IntegerField()
    header_size = serializers.IntegerField()
    permission = serializers.CharField()

    def to_representation(self, vault: Vault) -> dict:
        return {
            "id": str(vault.node_id),
            "name": vault.node.name,
            "parent": str(vault.node.parent_id),
            "workspace": str(vault.workspace_id),
            "format": vault.format,
            "kdf": vault.kdf,
            "wrapped_key": vault.wrapped_key,
            "verifier": vault.verifier,
            "segment_size": SEGMENT_SIZE,
            "header_size": HEADER_SIZE,
            "permission": vault.node.permission,
        }


VAULT_EXAMPLE = {
    "id": "5b0e0f53-3c1a-4c5e-9a53-2f7c1f1e8a10",
    "name": "Private",
    "parent": "9a1e2b44-7d1f-4f0a-8c55-0e1b2c3d4e5f",
    "workspace": "4f7c9d2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    "format": 1,
    "kdf": KDF_EXAMPLE,
    "wrapped_key": "…",
    "verifier": "…",
    "segment_size": SEGMENT_SIZE,
    "header_size": HEADER_SIZE,
    "permission": "manage",
}


@extend_schema(
    request=VaultCreateIn,
    responses={201: VaultOut},
    summary="Create a vault: an end-to-end encrypted folder",
    description="The client derives a key from the passphrase, makes a random vault key and sends only the "
    "wrapped key, the verifier and the KDF parameters (docs/vault-format.md). 400 invalid_vault for a bad "
    "shape or fewer than 600,000 iterations; 400 vault_boundary inside another vault; 409 name_conflict.",
    examples=[OpenApiExample("vault", value=VAULT_EXAMPLE, response_only=True)],
)
@api_view(["POST"])
def vault_create_view(request: Request) -> Response:
    data = VaultCreateIn(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    parent = node_get_for_user(user=request.user, node_id=fields["parent"], need="edit")
    vault = vault_create(
        user=request.user,
        parent=parent,
        name=fields["name"],
        kdf=fields["kdf"],
        wrapped_key=fields["wrapped_key"],
        verifier=fields["verifier"],
    )
    vault.node.permission = parent.permission
    return Response(VaultOut(vault).data, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: VaultOut}, summary="A vault's unlock parameters (wrapped key, verifier, KDF)")
@api_view(["GET"])
def vault_detail(request: Request, vault_id) -> Response:
    return Response(VaultOut(vault_get_for_user(user=request.user, vault_id=vault_id)).data)


@extend_schema(
    responses={200: VaultOut},
    summary="The vault a file or folder is in (404 when it is in none)",
)
@api_view(["GET"])
def node_vault(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id)
    vault = vault_of(node=node)
    if vault is None:
        return Response(
            {"error": {"code": "not_in_vault", "message": "This item is not in a vault.", "details": {}}},
            status=status.HTTP_404_NOT_FOUND,
        )
    return Response(VaultOut(vault_get_for_user(user=request.user, vault_id=vault.node_id)).data)


@extend_schema(
    request=VaultKeyIn,
    responses={200: VaultOut},
    summary="Change a vault's passphrase: the same vault key, wrapped again",
    description="No file is touched. The verifier must equal the vault's (400 vault_key_mismatch otherwise).",
)
@api_view(["PUT"])
def vault_key(request: Request, vault_id) -> Response:
    vault = vault_get_for_user(user=request.user, vault_id=vault_id, need="edit")
    data = VaultKeyIn(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    vault = vault_key_change(
        user=request.user,
        vault=vault,
        kdf=fields["kdf"],
        wrapped_key=fields["wrapped_key"],
        verifier=fields["verifier"],
    )
    return Response(VaultOut(vault).data)
