"""AES-256-GCM that lets other threads run while it works.

cryptography's AESGCM (50.x) holds the GIL for the whole of an encrypt or decrypt: ~1.5 ms per
1.25 MiB chunk, during which the request thread that reads the upload (or sends the download)
cannot run, so the pipeline's threads queue behind each other instead of overlapping. Releasing the
GIL in AEAD calls was merged upstream (pyca/cryptography#15361) but is not in a release yet.

Until it is, chunks are sealed by the OpenSSL that CPython's own hashlib and ssl modules are linked
against (libcrypto.so.3), called through ctypes, which releases the GIL for every foreign call. The
output is exactly AESGCM's (ciphertext followed by the 16-byte tag, so either opens what the other
sealed); an import-time self-test checks that both ways, and anything unexpected (no libcrypto, a
different result) falls back to cryptography's AESGCM.
"""

from __future__ import annotations

import ctypes
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from disks.libcrypto import libcrypto

logger = logging.getLogger(__name__)

TAG_BYTES = 16
NONCE_BYTES = 12
_GCM_GET_TAG = 0x10  # EVP_CTRL_GCM_GET_TAG
_GCM_SET_TAG = 0x11  # EVP_CTRL_GCM_SET_TAG


def _libcrypto():
    lib = libcrypto("EVP_aes_256_gcm", "EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_ctrl")
    if lib is not None:
        lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
        lib.EVP_aes_256_gcm.restype = ctypes.c_void_p
        init = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.EVP_EncryptInit_ex.argtypes = init
        lib.EVP_DecryptInit_ex.argtypes = init
        update = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.c_int]
        lib.EVP_EncryptUpdate.argtypes = update
        lib.EVP_DecryptUpdate.argtypes = update
        final = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        lib.EVP_EncryptFinal_ex.argtypes = final
        lib.EVP_DecryptFinal_ex.argtypes = final
        lib.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        return lib
    return None


_LIB = _libcrypto()
_INT_MAX = 2**31 - 1

_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
_new_bytes.restype = ctypes.py_object


def _bytes_for_output(size: int) -> tuple[bytes, int]:
    """A new bytes object of ``size`` bytes (content unset) and its address: what C code does with
    PyBytes_FromStringAndSize(NULL, n) before it fills the result in. Plaintext goes out as bytes
    (WSGI servers send nothing else) without a copy or a zero-fill."""
    out = _new_bytes(None, size)
    return out, (ctypes.cast(ctypes.c_char_p(out), ctypes.c_void_p).value or 0)


def _pinned(buffer) -> tuple[object, int]:
    """(an object to keep alive while the memory is used, the address of ``buffer``'s bytes)."""
    if isinstance(buffer, bytes):
        return buffer, ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0
    view = memoryview(buffer)
    if view.readonly:
        if isinstance(view.obj, bytes) and view.contiguous and view.nbytes == len(view.obj):
            return _pinned(view.obj)
        return _pinned(view.tobytes())
    return view, (ctypes.addressof(ctypes.c_char.from_buffer(view)) if view.nbytes else 0)


class OpenSSLAESGCM:
    """``encrypt``/``decrypt`` like cryptography's AESGCM, with the GIL released while OpenSSL works.

    ``encrypt_into`` writes the ciphertext and tag into a caller's buffer at an offset, so a chunk
    is sealed straight into its stored form (header + nonce + ciphertext + tag) without a copy."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._key = bytes(key)

    def encrypt_into(self, out: bytearray, offset: int, nonce: bytes, data, aad: bytes) -> None:
        size = len(data)
        if len(nonce) != NONCE_BYTES or size > _INT_MAX or len(out) < offset + size + TAG_BYTES:
            raise ValueError("bad nonce, data or output buffer")
        ctx = _LIB.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            written = ctypes.c_int(0)
            base = ctypes.addressof(ctypes.c_char.from_buffer(out))
            ok = _LIB.EVP_EncryptInit_ex(ctx, _LIB.EVP_aes_256_gcm(), None, self._key, nonce)
            ok = ok and _LIB.EVP_EncryptUpdate(ctx, None, ctypes.byref(written), aad, len(aad))
            _alive, source = _pinned(data)  # keeps the memory alive through the calls
            ok = ok and _LIB.EVP_EncryptUpdate(ctx, base + offset, ctypes.byref(written), source, size)
            ok = ok and _LIB.EVP_EncryptFinal_ex(ctx, base + offset + written.value, ctypes.byref(written))
            ok = ok and _LIB.EVP_CIPHER_CTX_ctrl(ctx, _GCM_GET_TAG, TAG_BYTES, base + offset + size)
            if not ok:
                raise RuntimeError("OpenSSL AES-256-GCM encryption failed")
        finally:
            _LIB.EVP_CIPHER_CTX_free(ctx)

    def encrypt(self, nonce: bytes, data, aad: bytes) -> bytes:
        out = bytearray(len(data) + TAG_BYTES)
        self.encrypt_into(out, 0, nonce, data, aad)
        return bytes(out)

    def decrypt(self, nonce: bytes, data, aad: bytes, offset: int = 0) -> bytes:
        """The plaintext of ``data[offset:]`` (ciphertext and tag), or InvalidTag when that is not
        exactly what was sealed."""
        view = memoryview(data)[offset:]
        size = len(view) - TAG_BYTES
        if len(nonce) != NONCE_BYTES or size < 0 or size > _INT_MAX:
            raise InvalidTag
        out, base = _bytes_for_output(size)
        ctx = _LIB.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            written = ctypes.c_int(0)
            tag = ctypes.create_string_buffer(bytes(view[size:]), TAG_BYTES)
            _alive, source = _pinned(data)  # keeps the memory alive through the calls
            source += offset
            ok = _LIB.EVP_DecryptInit_ex(ctx, _LIB.EVP_aes_256_gcm(), None, self._key, nonce)
            ok = ok and _LIB.EVP_DecryptUpdate(ctx, None, ctypes.byref(written), aad, len(aad))
            if size:
                ok = ok and _LIB.EVP_DecryptUpdate(ctx, base, ctypes.byref(written), source, size)
            ok = ok and _LIB.EVP_CIPHER_CTX_ctrl(ctx, _GCM_SET_TAG, TAG_BYTES, ctypes.addressof(tag))
            spare = ctypes.create_string_buffer(TAG_BYTES)
            ok = ok and _LIB.EVP_DecryptFinal_ex(ctx, ctypes.addressof(spare), ctypes.byref(written))
        finally:
            _LIB.EVP_CIPHER_CTX_free(ctx)
        if not ok:
            raise InvalidTag
        return out


def _self_test() -> bool:
    """True when the ctypes cipher and cryptography's open each other's output exactly."""
    if _LIB is None:
        return False
    try:
        key, nonce, aad = os.urandom(32), os.urandom(NONCE_BYTES), b"self-test"
        ours, theirs = OpenSSLAESGCM(key), AESGCM(key)
        for data in (b"", b"x", os.urandom(1000), os.urandom(70_001)):
            sealed = ours.encrypt(nonce, data, aad)
            if sealed != theirs.encrypt(nonce, data, aad) or bytes(ours.decrypt(nonce, sealed, aad)) != data:
                return False
            try:
                ours.decrypt(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), aad)
            except InvalidTag:
                pass
            else:
                return False
        return True
    except Exception:
        logger.exception("the ctypes AES-GCM self-test failed; using cryptography's AESGCM")
        return False


GIL_FREE = _self_test()


def aes_gcm(key: bytes):
    """An AES-256-GCM cipher for ``key``: the GIL-releasing one when it passed its self-test."""
    return OpenSSLAESGCM(key) if GIL_FREE else AESGCM(key)
