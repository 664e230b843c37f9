"""Keys and ciphers of the chunk store.

Each workspace has a random 256-bit data key, stored wrapped (AES-256-GCM) by the master key from
the environment. From the data key two keys are derived: one encrypts chunks (AES-256-GCM, random
96-bit nonce, the object key as associated data so a copy can't be swapped for another chunk's),
the other addresses chunks (HMAC-SHA256 of the plaintext), so equal plaintext in two workspaces
never has the same address and deduplication reveals nothing across tenants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction

from disks.aead import OpenSSLAESGCM, aes_gcm

MAGIC = b"CSC1"
NONCE_BYTES = 12
TAG_BYTES = 16
# Bytes an encrypted copy adds to its plaintext: header, nonce, GCM tag.
OVERHEAD = len(MAGIC) + NONCE_BYTES + TAG_BYTES


class CryptoError(Exception):
    """A ciphertext failed authentication, or a key could not be unwrapped."""


def _decode_master(raw: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise CryptoError("the master key is not valid base64") from exc
    if len(key) != 32:
        raise CryptoError("the master key must be 32 bytes (base64 of 32 random bytes)")
    return key


def master_key_id(raw: str) -> str:
    return hashlib.sha256(b"cloudstorage-master-key-id" + _decode_master(raw)).hexdigest()[:16]


def master_keys() -> dict[str, bytes]:
    """The current master key first, then previous ones still accepted for unwrapping during a rotation."""
    keys = {}
    for raw in [settings.CLOUDSTORAGE_MASTER_KEY, *getattr(settings, "CLOUDSTORAGE_PREVIOUS_MASTER_KEYS", [])]:
        if raw:
            keys.setdefault(master_key_id(raw), _decode_master(raw))
    return keys


def installation_id(master: bytes) -> str:
    """This installation's name on its disks (disks.identity): derived from a master key, which a
    database restore needs and keeps, and another installation does not share; a one-way function
    of it, so a disk's reader learns nothing of the key."""
    return hmac.new(master, b"cloudstorage-installation", hashlib.sha256).hexdigest()[:16]


def installation_ids() -> list[str]:
    """The installation ids of the current master key (first) and of the previous ones still
    accepted: a disk marked before a rotation is still recognised as this installation's."""
    return [installation_id(master) for master in master_keys().values()]


def wrap(*, data_key: bytes, workspace_id: str, master: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, data_key, f"datakey:{workspace_id}".encode())


def unwrap(*, wrapped: bytes, workspace_id: str, master: bytes) -> bytes:
    wrapped = bytes(wrapped)
    try:
        return AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], f"datakey:{workspace_id}".encode())
    except InvalidTag as exc:
        raise CryptoError(f"the data key of workspace {workspace_id} does not open with the master key") from exc


@dataclass(frozen=True)
class WorkspaceKeys:
    cipher: object  # disks.aead.aes_gcm: AESGCM's interface
    address_key: bytes

    def digest(self, plaintext: bytes | memoryview) -> str:
        return hmac.new(self.address_key, plaintext, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: bytes | memoryview, *, object_key: str) -> bytes | bytearray:
        """The stored form of a chunk: header, nonce, ciphertext and tag (sealed in place when the
        cipher can, so a chunk is not copied again to prepend the header)."""
        nonce = os.urandom(NONCE_BYTES)
        if isinstance(self.cipher, OpenSSLAESGCM):
            head = MAGIC + nonce
            blob = bytearray(len(head) + len(plaintext) + TAG_BYTES)
            blob[: len(head)] = head
            self.cipher.encrypt_into(blob, len(head), nonce, plaintext, object_key.encode())
            return blob
        return MAGIC + nonce + self.cipher.encrypt(nonce, bytes(plaintext), object_key.encode())

    def decrypt(self, blob: bytes | memoryview, *, object_key: str) -> bytes:
        if len(blob) < len(MAGIC) + NONCE_BYTES + 16 or blob[: len(MAGIC)] != MAGIC:
            raise CryptoError("not a chunk (bad header or too short)")
        start = len(MAGIC)
        nonce = bytes(blob[start : start + NONCE_BYTES])
        try:
            if isinstance(self.cipher, OpenSSLAESGCM):
                return self.cipher.decrypt(nonce, blob, object_key.encode(), offset=start + NONCE_BYTES)
            # A view, not a slice: slicing would copy the whole ciphertext once more.
            return self.cipher.decrypt(nonce, memoryview(blob)[start + NONCE_BYTES :], object_key.encode())
        except InvalidTag as exc:
            raise CryptoError("authentication tag mismatch") from exc


def _derive(data_key: bytes, label: bytes) -> bytes:
    return hmac.new(data_key, label, hashlib.sha256).digest()


def _keys_from_data_key(data_key: bytes) -> WorkspaceKeys:
    return WorkspaceKeys(
        cipher=aes_gcm(_derive(data_key, b"chunk-encryption")), address_key=_derive(data_key, b"chunk-address")
    )


def workspace_keys(*, workspace_id) -> WorkspaceKeys:
    """The workspace's keys, creating (and wrapping) its data key on first use."""
    from disks.models import DataKey

    workspace_id = str(workspace_id)
    row = DataKey.objects.filter(workspace_id=workspace_id).first()
    if row is None:
        current = settings.CLOUDSTORAGE_MASTER_KEY
        data_key = os.urandom(32)
        try:
            with transaction.atomic():
                row = DataKey.objects.create(
                    workspace_id=workspace_id,
                    wrapped=wrap(data_key=data_key, workspace_id=workspace_id, master=_decode_master(current)),
                    master_key_id=master_key_id(current),
                )
        except IntegrityError:
            # Another process created it first: use theirs.
            row = DataKey.objects.get(workspace_id=workspace_id)
    keys = master_keys()
    master = keys.get(row.master_key_id)
    if master is None:
        raise CryptoError(
            f"workspace {workspace_id}'s data key is wrapped by an unknown master key {row.master_key_id}"
        )
    return _keys_from_data_key(unwrap(wrapped=row.wrapped, workspace_id=workspace_id, master=master))


def data_keys_rewrap(*, old_keys: list[str] = (), dry_run: bool = False) -> dict[str, int]:
    """Re-wrap every workspace data key not yet wrapped by the current master key, without touching
    a single chunk (chunks are encrypted under the data keys, which do not change).

    The keys accepted for unwrapping are the current one, CLOUDSTORAGE_PREVIOUS_MASTER_KEYS and
    ``old_keys``. One row per transaction, each checked to open with the new key before it is
    saved: an interrupted run loses nothing and the next run carries on. Returns counts of
    "rewrapped", "current" (already done) and "unknown" (wrapped by a key that was not given)."""
    from django.utils import timezone

    from disks.models import DataKey

    current_raw = settings.CLOUDSTORAGE_MASTER_KEY
    current_id = master_key_id(current_raw)
    current = _decode_master(current_raw)
    accepted = master_keys()
    for raw in old_keys:
        accepted.setdefault(master_key_id(raw), _decode_master(raw))
    counts = {"rewrapped": 0, "current": DataKey.objects.filter(master_key_id=current_id).count(), "unknown": 0}
    pending = DataKey.objects.exclude(master_key_id=current_id).values_list("workspace_id", flat=True)
    for workspace_id in list(pending):
        with transaction.atomic():
            row = DataKey.objects.select_for_update().filter(workspace_id=workspace_id).first()
            if row is None or row.master_key_id == current_id:
                continue
            old = accepted.get(row.master_key_id)
            if old is None:
                counts["unknown"] += 1
                continue
            data_key = unwrap(wrapped=row.wrapped, workspace_id=str(workspace_id), master=old)
            if dry_run:
                counts["rewrapped"] += 1
                continue
            wrapped = wrap(data_key=data_key, workspace_id=str(workspace_id), master=current)
            if unwrap(wrapped=wrapped, workspace_id=str(workspace_id), master=current) != data_key:
                raise CryptoError(f"re-wrapping the data key of workspace {workspace_id} did not round-trip")
            row.wrapped = wrapped
            row.master_key_id = current_id
            row.rotated_at = timezone.now()
            row.save(update_fields=["wrapped", "master_key_id", "rotated_at"])
            counts["rewrapped"] += 1
    return counts


# --- Secrets in the database (disk credentials) ---------------------------------------------------

SECRET_PREFIX = "csenc1"


def secret_seal(plaintext: str, *, purpose: str) -> str:
    """``plaintext`` encrypted (AES-256-GCM) under the current master key, as text for a column:
    ``csenc1:<master key id>:<base64 of nonce, ciphertext and tag>``. ``purpose`` (e.g. the column)
    is authenticated, so a sealed value cannot be moved to another column."""
    current = settings.CLOUDSTORAGE_MASTER_KEY
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(_decode_master(current)).encrypt(nonce, plaintext.encode(), f"secret:{purpose}".encode())
    return f"{SECRET_PREFIX}:{master_key_id(current)}:{base64.b64encode(sealed).decode()}"


def secret_is_sealed(value: str) -> bool:
    return value.startswith(f"{SECRET_PREFIX}:")


def secret_key_id(value: str) -> str | None:
    return value.split(":", 2)[1] if secret_is_sealed(value) else None


def secret_open(value: str, *, purpose: str, extra_keys: dict[str, bytes] | None = None) -> str:
    """The plaintext of a value made by ``secret_seal`` (a value that is not sealed is returned as it
    is: rows written before encryption, until the migration or a save seals them)."""
    if not secret_is_sealed(value):
        return value
    _, key_id, payload = value.split(":", 2)
    keys = {**master_keys(), **(extra_keys or {})}
    master = keys.get(key_id)
    if master is None:
        raise CryptoError(f"a stored secret is sealed by an unknown master key {key_id}")
    sealed = base64.b64decode(payload)
    try:
        plain = AESGCM(master).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], f"secret:{purpose}".encode())
    except InvalidTag as exc:
        raise CryptoError("a stored secret does not open with the master key") from exc
    return plain.decode()


def disk_secrets_reseal(*, old_keys: list[str] = (), dry_run: bool = False) -> dict[str, int]:
    """Seal every stored disk secret not yet sealed by the current master key (part of a master key
    rotation); counts of "resealed", "current" and "unknown" (sealed by a key that was not given)."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from disks.models import Disk

    field = Disk._meta.get_field("s3_secret_key")
    current_id = master_key_id(settings.CLOUDSTORAGE_MASTER_KEY)
    accepted = master_keys()
    for raw in old_keys:
        accepted.setdefault(master_key_id(raw), _decode_master(raw))
    counts = {"resealed": 0, "current": 0, "unknown": 0}
    # The stored text, not the field's plaintext (which could only be opened with the settings' keys).
    rows = Disk.objects.exclude(s3_secret_key="").annotate(stored=Cast("s3_secret_key", TextField()))
    for pk, stored in rows.values_list("pk", "stored"):
        if secret_key_id(stored) == current_id:
            counts["current"] += 1
            continue
        key_id = secret_key_id(stored)
        if key_id is not None and key_id not in accepted:
            counts["unknown"] += 1
            continue
        plain = secret_open(stored, purpose=field.purpose, extra_keys=accepted)
        if not dry_run:
            Disk.objects.filter(pk=pk).update(s3_secret_key=plain)  # sealed by the current key on save
        counts["resealed"] += 1
    return counts
