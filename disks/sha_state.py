"""A SHA-256 whose state survives between requests (the whole-content hash of a resumable upload).

Neither hashlib object can be saved, so the state is kept in one of two plain C structs:

- ``ossl1:`` OpenSSL's ``SHA256_CTX`` (public header openssl/sha.h: h[8], Nl, Nh, data[16], num,
  md_len; 112 bytes, no pointers), driven through ctypes on the libcrypto CPython's hashlib is
  linked against. It uses the CPU's SHA instructions (~1.5 GB/s here) and, being a foreign call,
  releases the GIL while it hashes, so the rest of the upload pipeline runs beside it.
- no prefix: CPython 3.11's builtin ``_sha256`` object, its fields copied in and out of the object
  (~200 MB/s, GIL held). States saved in this format by earlier versions still load.

Each format passes an import-time self-test (hash, save, restore, continue, compare with hashlib)
before it is used; if neither does, :func:`sha_new` returns None and the caller hashes the stored
content once at completion instead.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import logging
import sys

from disks.libcrypto import libcrypto

logger = logging.getLogger(__name__)

OPENSSL_PREFIX = "ossl1:"
_CTX_SIZE = 8 * 4 + 4 + 4 + 16 * 4 + 4 + 4


def _libcrypto():
    lib = libcrypto("SHA256_Init", "SHA256_Update", "SHA256_Final")
    if lib is not None:
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        return lib
    return None


_LIB = _libcrypto()


class OpenSSLSHA256:
    """hashlib's ``update``/``hexdigest``, plus ``save`` of the whole state as bytes."""

    def __init__(self, state: bytes | None = None):
        self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
        if state is None:
            if not _LIB.SHA256_Init(self._ctx):
                raise RuntimeError("SHA256_Init failed")
        else:
            if len(state) != _CTX_SIZE:
                raise ValueError("not a SHA-256 state")
            ctypes.memmove(self._ctx, state, _CTX_SIZE)

    def update(self, data) -> None:
        if not data:
            return
        if isinstance(data, bytes):
            address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        else:
            view = memoryview(data)
            if view.readonly:
                data = bytes(view)
                address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
            else:
                address = ctypes.addressof(ctypes.c_char.from_buffer(view))
        if not _LIB.SHA256_Update(self._ctx, address, len(data)):
            raise RuntimeError("SHA256_Update failed")

    def save(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)  # Final consumes its context
        out = ctypes.create_string_buffer(32)
        if not _LIB.SHA256_Final(out, ctx):
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()


# CPython 3.11 Modules/sha256module.c: after PyObject_HEAD come digest[8] (uint32), count_lo,
# count_hi (uint32), data[64] (bytes), local (int), digestsize (int); all plain values, no pointers.
try:
    import _sha256 as _builtin_sha256
except ImportError:  # pragma: no cover - Python 3.12 renamed it (_sha2) and changed the layout
    _builtin_sha256 = None
_BUILTIN_SIZE = 8 * 4 + 2 * 4 + 64 + 4 + 4
_BUILTIN_OFFSET = object.__basicsize__  # PyObject_HEAD: refcount + type pointer (16 bytes on 64-bit)


def _builtin_new(state: bytes | None = None):
    sha = _builtin_sha256.sha256()
    if state is not None:
        if len(state) != _BUILTIN_SIZE:
            raise ValueError("not a SHA-256 state")
        ctypes.memmove(id(sha) + _BUILTIN_OFFSET, state, _BUILTIN_SIZE)
    return sha


def _builtin_save(sha) -> bytes:
    return ctypes.string_at(id(sha) + _BUILTIN_OFFSET, _BUILTIN_SIZE)


def _round_trips(new, save) -> bool:
    for head, rest in ((b"", b"abc"), (b"x" * 63, b"y" * 130), (bytes(range(256)) * 5, b"z" * 7)):
        sha = new(None)
        sha.update(head)
        resumed = new(save(sha))
        resumed.update(rest)
        if resumed.hexdigest() != hashlib.sha256(head + rest).hexdigest():
            return False
    return True


def _openssl_works() -> bool:
    if _LIB is None:
        return False
    try:
        return _round_trips(OpenSSLSHA256, OpenSSLSHA256.save)
    except Exception:
        logger.exception("the OpenSSL SHA-256 state self-test failed")
        return False


def _builtin_works() -> bool:
    if _builtin_sha256 is None or sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return False
    try:
        if sys.getsizeof(_builtin_new()) < _BUILTIN_OFFSET + _BUILTIN_SIZE:
            return False
        return _round_trips(_builtin_new, _builtin_save)
    except Exception:
        logger.exception("the builtin SHA-256 state self-test failed")
        return False


OPENSSL_STATE = _openssl_works()
BUILTIN_STATE = _builtin_works()
SUPPORTED = OPENSSL_STATE or BUILTIN_STATE


def sha_new():
    """A new resumable SHA-256, or None when no state format works on this machine."""
    if OPENSSL_STATE:
        return OpenSSLSHA256()
    if BUILTIN_STATE:
        return _builtin_new()
    return None


def sha_save(sha) -> str:
    """The state as text (for the upload's JSON state)."""
    if isinstance(sha, OpenSSLSHA256):
        return OPENSSL_PREFIX + base64.b64encode(sha.save()).decode()
    return base64.b64encode(_builtin_save(sha)).decode()


def sha_load(text: str):
    """The SHA-256 saved by :func:`sha_save`, or None when this machine cannot continue it."""
    if text.startswith(OPENSSL_PREFIX):
        return OpenSSLSHA256(base64.b64decode(text[len(OPENSSL_PREFIX) :])) if OPENSSL_STATE else None
    return _builtin_new(base64.b64decode(text)) if BUILTIN_STATE else None
