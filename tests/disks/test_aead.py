"""The GIL-releasing AES-256-GCM (disks/aead.py) is byte-for-byte cryptography's AESGCM: each opens
what the other sealed, and any change to ciphertext, tag, nonce or associated data is refused."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from disks.aead import GIL_FREE, TAG_BYTES, OpenSSLAESGCM

pytestmark = pytest.mark.skipif(not GIL_FREE, reason="no libcrypto.so.3 here: cryptography's AESGCM is used")

SIZES = [0, 1, 15, 16, 17, 4096, 1_300_001]


@pytest.mark.parametrize("size", SIZES)
def test_both_ciphers_open_what_the_other_sealed(size):
    key, nonce, aad = os.urandom(32), os.urandom(12), b"ws/x/ab/abcdef"
    data = os.urandom(size)
    ours, theirs = OpenSSLAESGCM(key), AESGCM(key)

    sealed = ours.encrypt(nonce, data, aad)

    assert sealed == theirs.encrypt(nonce, data, aad)
    assert bytes(ours.decrypt(nonce, theirs.encrypt(nonce, data, aad), aad)) == data
    assert theirs.decrypt(nonce, sealed, aad) == data


def test_sealing_in_place_behind_a_header_and_opening_at_an_offset():
    key, nonce, aad = os.urandom(32), os.urandom(12), b"k"
    data = os.urandom(10_000)
    blob = bytearray(b"HEAD" + bytes(len(data) + TAG_BYTES))
    OpenSSLAESGCM(key).encrypt_into(blob, 4, nonce, data, aad)

    assert blob[:4] == b"HEAD"
    assert AESGCM(key).decrypt(nonce, bytes(blob[4:]), aad) == data
    assert bytes(OpenSSLAESGCM(key).decrypt(nonce, bytes(blob), aad, offset=4)) == data


@pytest.mark.parametrize("part", ["ciphertext", "tag", "nonce", "aad", "truncated"])
def test_any_change_is_refused(part):
    key, nonce, aad = os.urandom(32), os.urandom(12), b"chunk-key"
    cipher = OpenSSLAESGCM(key)
    sealed = bytearray(cipher.encrypt(nonce, os.urandom(5000), aad))
    if part == "ciphertext":
        sealed[100] ^= 1
    elif part == "tag":
        sealed[-1] ^= 0x80
    elif part == "nonce":
        nonce = bytes([nonce[0] ^ 1]) + nonce[1:]
    elif part == "aad":
        aad = b"another-chunk-key"
    else:
        sealed = sealed[: TAG_BYTES - 1]

    with pytest.raises(InvalidTag):
        cipher.decrypt(nonce, bytes(sealed), aad)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b))])
def test_any_bytes_like_input_is_read_where_it_lies(wrap):
    key, nonce, aad = os.urandom(32), os.urandom(12), b"k"
    data = os.urandom(70_000)
    sealed = AESGCM(key).encrypt(nonce, data, aad)
    cipher = OpenSSLAESGCM(key)

    assert cipher.decrypt(nonce, wrap(b"xx" + sealed), aad, offset=2) == data
    assert cipher.encrypt(nonce, wrap(data), aad) == sealed
