"""Vault format 1 (docs/vault-format.md) in Python: keys, the file header and the segments.

Pure functions over bytes and file objects; no network. The dashboard's static/js/vault-crypto.js
implements the same format with WebCrypto, and each reads what the other writes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

FORMAT = 1
MAGIC = b"CSVAULT\x00"
KDF_NAME = "PBKDF2-SHA-256"
ITERATIONS = 600_000
SEGMENT_SIZE = 65536
HEADER_SIZE = 72
TAG_SIZE = 16
STORED_SEGMENT = SEGMENT_SIZE + TAG_SIZE
VERIFIER_LABEL = b"cloudstorage vault verifier v1"


class VaultError(Exception):
    """A vault file or key that cannot be used; the message says why, for a person."""


class WrongPassphrase(VaultError):
    pass


class NotAVaultFile(VaultError):
    pass


class Tampered(VaultError):
    pass


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def passphrase_key(passphrase: bytes, kdf: dict) -> bytes:
    if kdf.get("name") != KDF_NAME:
        raise VaultError(f"Unknown key derivation {kdf.get('name')!r}; this client knows {KDF_NAME}.")
    return hashlib.pbkdf2_hmac("sha256", passphrase, _unb64(kdf["salt"]), kdf["iterations"], dklen=32)


def verifier_of(vault_key: bytes) -> str:
    return _b64(hmac.new(vault_key, VERIFIER_LABEL, hashlib.sha256).digest())


def wrap_vault_key(vault_key: bytes, passphrase: bytes, *, iterations: int = ITERATIONS) -> dict:
    """The vault record's key fields for ``vault_key`` under ``passphrase`` (a fresh salt)."""
    kdf = {"name": KDF_NAME, "iterations": iterations, "salt": _b64(os.urandom(16))}
    return {
        "kdf": kdf,
        "wrapped_key": _b64(aes_key_wrap(passphrase_key(passphrase, kdf), vault_key)),
        "verifier": verifier_of(vault_key),
    }


def new_vault(passphrase: bytes) -> tuple[bytes, dict]:
    vault_key = os.urandom(32)
    return vault_key, wrap_vault_key(vault_key, passphrase)


def unlock(vault: dict, passphrase: bytes) -> bytes:
    """The vault key from the vault record; WrongPassphrase when it does not open it."""
    if vault.get("format") != FORMAT:
        raise VaultError(f"Vault format {vault.get('format')} is newer than this client (it knows {FORMAT}).")
    try:
        vault_key = aes_key_unwrap(passphrase_key(passphrase, vault["kdf"]), _unb64(vault["wrapped_key"]))
    except InvalidUnwrap:
        raise WrongPassphrase("Wrong passphrase for this vault.") from None
    if not hmac.compare_digest(verifier_of(vault_key), vault["verifier"]):
        raise WrongPassphrase("Wrong passphrase for this vault.")
    return vault_key


def ciphertext_size(plain_size: int) -> int:
    segments = max(1, -(-plain_size // SEGMENT_SIZE))
    return HEADER_SIZE + plain_size + segments * TAG_SIZE


def segment_count(cipher_size: int) -> int:
    """Segments of a file of ``cipher_size`` bytes; NotAVaultFile for a size no vault file has."""
    body = cipher_size - HEADER_SIZE
    if body < TAG_SIZE:
        raise NotAVaultFile("The file is too short to be a vault file (truncated?).")
    count = -(-body // STORED_SEGMENT)
    last = body - (count - 1) * STORED_SEGMENT - TAG_SIZE
    if last < 0 or (last == 0 and count > 1):
        raise Tampered("The file's size is not that of a vault file: it was truncated or extended.")
    return count


def plaintext_size(cipher_size: int) -> int:
    return cipher_size - HEADER_SIZE - segment_count(cipher_size) * TAG_SIZE


@dataclass(frozen=True)
class Header:
    raw: bytes
    content_key: bytes


def header_new(vault_key: bytes) -> Header:
    content_key = os.urandom(32)
    raw = MAGIC + bytes([FORMAT, 0, 0, 0]) + struct.pack(">I", SEGMENT_SIZE) + os.urandom(16)
    return Header(raw=raw + aes_key_wrap(vault_key, content_key), content_key=content_key)


def header_parse(raw: bytes, *, vault_key: bytes | None = None, content_key: bytes | None = None) -> Header:
    """The header's content key, unwrapped by ``vault_key`` (or given, as from a public link)."""
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise NotAVaultFile("This is not a vault file (its header is missing or damaged).")
    if raw[8] != FORMAT:
        raise NotAVaultFile(f"Vault file format {raw[8]} is unknown to this client (it knows {FORMAT}).")
    if struct.unpack(">I", raw[12:16])[0] != SEGMENT_SIZE:
        raise NotAVaultFile("The vault file's segment size is not that of format 1.")
    raw = raw[:HEADER_SIZE]
    if content_key is None:
        try:
            content_key = aes_key_unwrap(vault_key, raw[32:72])
        except InvalidUnwrap:
            raise Tampered(
                "The file's key does not open with this vault's key (wrong vault or tampered header)."
            ) from None
    return Header(raw=raw, content_key=content_key)


def _nonce_and_aad(header: Header, index: int, last: bool) -> tuple[bytes, bytes]:
    position = struct.pack(">Q", index)
    flag = b"\x01" if last else b"\x00"
    return position + b"\x00\x00\x00" + flag, header.raw + position + flag


def segment_encrypt(header: Header, index: int, last: bool, plain: bytes) -> bytes:
    nonce, aad = _nonce_and_aad(header, index, last)
    return AESGCM(header.content_key).encrypt(nonce, plain, aad)


def segment_decrypt(header: Header, index: int, last: bool, stored: bytes) -> bytes:
    nonce, aad = _nonce_and_aad(header, index, last)
    try:
        return AESGCM(header.content_key).decrypt(nonce, stored, aad)
    except InvalidTag:
        raise Tampered(
            f"Segment {index} failed its integrity check: the file was tampered with, reordered or truncated."
        ) from None


class EncryptingReader:
    """A file object of the ciphertext of ``source`` (``size`` plaintext bytes), encrypted as it is
    read, with a length: an HTTP client streams it with a Content-Length, never holding it whole."""

    def __init__(self, source: BinaryIO, size: int, vault_key: bytes):
        self._source = source
        self._count = max(1, -(-size // SEGMENT_SIZE))
        self._length = ciphertext_size(size)
        self.header = header_new(vault_key)
        self._pending = self.header.raw
        self._index = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        while self._index < self._count and (size < 0 or len(self._pending) < size):
            plain = self._source.read(SEGMENT_SIZE)
            last = self._index == self._count - 1
            if (len(plain) < SEGMENT_SIZE and not last) or (last and self._source.read(1)):
                raise VaultError("The file changed size while it was being encrypted.")
            self._pending += segment_encrypt(self.header, self._index, last, plain)
            self._index += 1
        if size < 0:
            size = len(self._pending)
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk


def decrypt_stream(
    blocks: Iterator[bytes], cipher_size: int, *, vault_key: bytes | None = None, content_key: bytes | None = None
) -> Iterator[bytes]:
    """The plaintext of a whole vault file read as ``blocks``, segment by segment. A caller that
    must release no unverified plaintext writes it somewhere private until the end."""
    count = segment_count(cipher_size)
    buffer = bytearray()
    header = None
    index = 0
    received = 0
    for block in blocks:
        received += len(block)
        buffer += block
        if header is None:
            if len(buffer) < HEADER_SIZE:
                continue
            header = header_parse(bytes(buffer[:HEADER_SIZE]), vault_key=vault_key, content_key=content_key)
            del buffer[:HEADER_SIZE]
        done = 0
        while len(buffer) - done > STORED_SEGMENT or (len(buffer) - done == STORED_SEGMENT and index < count - 1):
            yield segment_decrypt(header, index, False, bytes(buffer[done : done + STORED_SEGMENT]))
            done += STORED_SEGMENT
            index += 1
        del buffer[:done]
    if received != cipher_size or header is None or index != count - 1:
        raise Tampered("The download ended early: the file is truncated.")
    yield segment_decrypt(header, index, True, bytes(buffer))


def segments_for(start: int, end: int, cipher_size: int) -> tuple[int, int]:
    """The stored byte span ``[from, to)`` holding plaintext bytes ``[start, end)``."""
    count = segment_count(cipher_size)
    first, last = start // SEGMENT_SIZE, min((end - 1) // SEGMENT_SIZE, count - 1)
    return HEADER_SIZE + first * STORED_SEGMENT, min(HEADER_SIZE + (last + 1) * STORED_SEGMENT, cipher_size)


def decrypt_span(header: Header, stored: bytes, start: int, end: int, cipher_size: int) -> bytes:
    """Plaintext ``[start, end)`` from ``stored``, the span :func:`segments_for` named."""
    count = segment_count(cipher_size)
    first = start // SEGMENT_SIZE
    plain = b"".join(
        segment_decrypt(header, index, index == count - 1, stored[offset : offset + STORED_SEGMENT])
        for index, offset in zip(range(first, count), range(0, len(stored), STORED_SEGMENT), strict=False)
    )
    skip = start - first * SEGMENT_SIZE
    return plain[skip : skip + end - start]
