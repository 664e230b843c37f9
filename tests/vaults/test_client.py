"""The reference client (python -m clients.vault) against a live server: round trips, the four
kinds of damage it must refuse, Range reads that fetch only the needed segments, and passphrase
changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from clients.vault import crypto
from clients.vault.__main__ import main
from tests.vaults.conftest import PASSPHRASE

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


def stored_bytes(live, token, node_id) -> bytes:
    """The file's bytes exactly as the server keeps them (the API gives them back as they are)."""
    response = requests.get(
        f"{live.url}/api/v1/nodes/{node_id}/content", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert response.status_code == 200
    return response.content


def store_version(live, token, node_id, data: bytes) -> None:
    response = requests.put(
        f"{live.url}/api/v1/nodes/{node_id}/content",
        data=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code in (200, 201), response.text


def run_cli(live, token, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clients.vault", "--base", live.url, "--token", token, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def put(live, token, vault_id, passphrase_file, path) -> str:
    done = run_cli(live, token, "put", "--folder", vault_id, "--passphrase-file", str(passphrase_file), str(path))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def shares_a_window(stored: bytes, plain: bytes, width: int = 64) -> bool:
    windows = {plain[i : i + width] for i in range(0, len(plain) - width + 1)}
    return any(stored[i : i + width] in windows for i in range(0, len(stored) - width + 1))


def test_put_then_get_round_trips_and_the_server_stores_only_ciphertext(
    live, token, vault_id, passphrase_file, tmp_path
):
    plain = (b"The quick brown fox jumps over the lazy dog. " * 5000) + os.urandom(70_000)
    source = tmp_path / "notes.txt"
    source.write_bytes(plain)

    file_id = put(live, token, vault_id, passphrase_file, source)

    stored = stored_bytes(live, token, file_id)
    assert stored != plain
    assert len(stored) == crypto.ciphertext_size(len(plain))
    assert not shares_a_window(stored, plain)
    out = tmp_path / "back.txt"
    done = run_cli(live, token, "get", "--node", file_id, "--passphrase-file", str(passphrase_file), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == plain


def test_an_empty_file_and_one_of_exactly_one_segment_round_trip(vault_client, vault_id, tmp_path):
    for size in (0, crypto.SEGMENT_SIZE, 2 * crypto.SEGMENT_SIZE + 1):
        source = tmp_path / f"f{size}"
        source.write_bytes(os.urandom(size))
        file_id = vault_client.file_put(folder=vault_id, name=source.name, path=source, passphrase=PASSPHRASE)
        assert b"".join(vault_client.file_get(node=file_id, passphrase=PASSPHRASE)) == source.read_bytes()


@pytest.fixture
def uploaded(vault_client, vault_id, tmp_path):
    """A three-segment vault file: (its id, its plaintext)."""
    plain = os.urandom(2 * crypto.SEGMENT_SIZE + 1000)
    source = tmp_path / "three.bin"
    source.write_bytes(plain)
    return vault_client.file_put(folder=vault_id, name="three.bin", path=source, passphrase=PASSPHRASE), plain


def get_fails(live, token, file_id, passphrase_file, tmp_path) -> str:
    out = tmp_path / "out.bin"
    done = run_cli(live, token, "get", "--node", file_id, "--passphrase-file", str(passphrase_file), "--out", str(out))
    assert done.returncode == 1
    assert not out.exists() and not list(tmp_path.glob(".out.bin.*")), "no partial plaintext may be left"
    return done.stderr


def test_wrong_passphrase_is_refused_with_a_clear_message(live, token, uploaded, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not the passphrase")
    assert "Wrong passphrase" in get_fails(live, token, uploaded[0], wrong, tmp_path)


def test_a_flipped_ciphertext_byte_is_refused(live, token, uploaded, passphrase_file, tmp_path):
    stored = bytearray(stored_bytes(live, token, uploaded[0]))
    stored[crypto.HEADER_SIZE + crypto.STORED_SEGMENT + 100] ^= 0x01
    store_version(live, token, uploaded[0], bytes(stored))
    assert "Segment 1 failed its integrity check" in get_fails(live, token, uploaded[0], passphrase_file, tmp_path)


def test_swapped_segments_are_refused(live, token, uploaded, passphrase_file, tmp_path):
    stored = stored_bytes(live, token, uploaded[0])
    head, body = stored[: crypto.HEADER_SIZE], stored[crypto.HEADER_SIZE :]
    first, second, rest = (
        body[: crypto.STORED_SEGMENT],
        body[crypto.STORED_SEGMENT : 2 * crypto.STORED_SEGMENT],
        body[2 * crypto.STORED_SEGMENT :],
    )
    store_version(live, token, uploaded[0], head + second + first + rest)
    assert "Segment 0 failed its integrity check" in get_fails(live, token, uploaded[0], passphrase_file, tmp_path)


def test_a_file_truncated_at_a_segment_boundary_or_inside_one_is_refused(
    live, token, uploaded, passphrase_file, tmp_path
):
    stored = stored_bytes(live, token, uploaded[0])
    store_version(live, token, uploaded[0], stored[: crypto.HEADER_SIZE + 2 * crypto.STORED_SEGMENT])
    message = get_fails(live, token, uploaded[0], passphrase_file, tmp_path)
    assert "Segment 1 failed its integrity check" in message and "truncated" in message
    # Cut inside a segment, the size is no vault file's: the server no longer stores it at all.
    response = requests.put(
        f"{live.url}/api/v1/nodes/{uploaded[0]}/content",
        data=stored[: crypto.HEADER_SIZE + 10],
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_vault_ciphertext"


def test_a_file_of_another_vault_does_not_open_with_this_vaults_key(
    vault_client, root, uploaded, live, token, tmp_path
):
    other = vault_client.vault_create(parent=str(root.pk), name="Other", passphrase=PASSPHRASE)
    source = tmp_path / "copy.bin"
    source.write_bytes(stored_bytes(live, token, uploaded[0]))
    response = requests.put(
        f"{live.url}/api/v1/nodes/{other}/children/copy.bin",
        data=source.read_bytes(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    with pytest.raises(crypto.Tampered, match="does not open with this vault's key"):
        b"".join(vault_client.file_get(node=response.json()["id"], passphrase=PASSPHRASE))


def test_range_of_the_middle_of_a_50_mb_file_fetches_only_its_segments(live, token, vault_id, tmp_path):
    from clients.vault.api import VaultClient

    plain = os.urandom(50 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(plain)
    fetched: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda response, *args, **kwargs: (
            fetched.append(len(response.content))
            if "/content" in response.url and response.request.method == "GET"
            else None
        )
    )
    client = VaultClient(base=live.url, token=token, session=session)
    file_id = client.file_put(folder=vault_id, name="big.bin", path=source, passphrase=PASSPHRASE)
    start, end = 25 * 1024 * 1024 - 1000, 25 * 1024 * 1024 + 150_000

    fetched.clear()
    middle = client.file_get_range(node=file_id, passphrase=PASSPHRASE, start=start, end=end)

    assert middle == plain[start:end]
    segments = (end - 1) // crypto.SEGMENT_SIZE - start // crypto.SEGMENT_SIZE + 1
    assert fetched == [crypto.HEADER_SIZE, segments * crypto.STORED_SEGMENT]
    assert sum(fetched) < len(plain) // 100


def test_range_option_of_the_cli_writes_the_slice(live, token, uploaded, passphrase_file, tmp_path):
    out = tmp_path / "slice.bin"
    first, last = crypto.SEGMENT_SIZE - 10, 2 * crypto.SEGMENT_SIZE + 999
    code = main(
        [
            "--base",
            live.url,
            "--token",
            token,
            "get",
            "--node",
            uploaded[0],
            "--passphrase-file",
            str(passphrase_file),
            "--out",
            str(out),
            "--range",
            f"{first}-{last}",
        ]
    )
    assert code == 0
    assert out.read_bytes() == uploaded[1][first : last + 1]


def test_changing_the_passphrase_rewraps_only_the_vault_key(live, token, vault_id, uploaded, passphrase_file, tmp_path):
    before = stored_bytes(live, token, uploaded[0])
    new = tmp_path / "new"
    new.write_bytes(b"a new and longer passphrase")
    code = main(
        [
            "--base",
            live.url,
            "--token",
            token,
            "passphrase",
            "--vault",
            vault_id,
            "--passphrase-file",
            str(passphrase_file),
            "--new-passphrase-file",
            str(new),
        ]
    )
    assert code == 0
    assert "Wrong passphrase" in get_fails(live, token, uploaded[0], passphrase_file, tmp_path)
    out = tmp_path / "again.bin"
    done = run_cli(live, token, "get", "--node", uploaded[0], "--passphrase-file", str(new), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == uploaded[1]
    assert stored_bytes(live, token, uploaded[0]) == before
