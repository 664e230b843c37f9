"""The server's REST API as the vault client uses it (requests; one session per client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import requests

from clients.vault import crypto
from clients.vault.crypto import VaultError

BLOCK = 1024 * 1024


class VaultClient:
    def __init__(self, *, base: str, token: str, session: requests.Session | None = None):
        self.base = base.rstrip("/") + "/api/v1"
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, self.base + path, timeout=300, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise VaultError(f"The server said {response.status_code}: {message}")
        return response

    def _unlock_vault_of(self, node: str, passphrase: bytes) -> bytes:
        return crypto.unlock(self._call("GET", f"/nodes/{node}/vault/").json(), passphrase)

    def vault_create(self, *, parent: str, name: str, passphrase: bytes) -> str:
        _, fields = crypto.new_vault(passphrase)
        return self._call("POST", "/vaults/", json={"parent": parent, "name": name, **fields}).json()["id"]

    def passphrase_change(self, *, vault: str, passphrase: bytes, new_passphrase: bytes) -> None:
        record = self._call("GET", f"/vaults/{vault}/").json()
        vault_key = crypto.unlock(record, passphrase)
        iterations = max(record["kdf"]["iterations"], crypto.ITERATIONS)
        self._call(
            "PUT", f"/vaults/{vault}/key", json=crypto.wrap_vault_key(vault_key, new_passphrase, iterations=iterations)
        )

    def file_put(self, *, folder: str, name: str, path: Path, passphrase: bytes) -> str:
        """Encrypt ``path`` with a fresh content key while streaming it up; the new file's id."""
        vault_key = self._unlock_vault_of(folder, passphrase)
        with path.open("rb") as source:
            body = crypto.EncryptingReader(source, path.stat().st_size, vault_key)
            response = self._call(
                "PUT",
                f"/nodes/{folder}/children/{quote(name, safe='')}",
                data=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))},
            )
        return response.json()["id"]

    def _cipher_size(self, node: str) -> int:
        return self._call("GET", f"/nodes/{node}/").json()["size"]

    def file_get(self, *, node: str, passphrase: bytes) -> Iterator[bytes]:
        """The plaintext of a vault file, verified segment by segment as it streams down."""
        vault_key = self._unlock_vault_of(node, passphrase)
        size = self._cipher_size(node)
        response = self._call("GET", f"/nodes/{node}/content", stream=True)
        with response:
            yield from crypto.decrypt_stream(response.iter_content(BLOCK), size, vault_key=vault_key)

    def file_get_range(self, *, node: str, passphrase: bytes, start: int, end: int) -> bytes:
        """Plaintext bytes ``[start, end)``: the header and the segments holding them, no more."""
        vault_key = self._unlock_vault_of(node, passphrase)
        size = self._cipher_size(node)
        end = min(end, crypto.plaintext_size(size))
        if start >= end:
            return b""
        head = self._call("GET", f"/nodes/{node}/content", headers={"Range": f"bytes=0-{crypto.HEADER_SIZE - 1}"})
        header = crypto.header_parse(head.content, vault_key=vault_key)
        first, last = crypto.segments_for(start, end, size)
        stored = self._call("GET", f"/nodes/{node}/content", headers={"Range": f"bytes={first}-{last - 1}"}).content
        if len(stored) != last - first:
            raise crypto.Tampered("The server sent fewer bytes than asked for: the file is truncated.")
        return crypto.decrypt_span(header, stored, start, end, size)
