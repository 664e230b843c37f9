"""The vault reference client: ``python -m clients.vault --base URL --token TOKEN COMMAND ...``.

Commands: ``create`` a vault, ``put`` a file into one (prints the new file's id), ``get`` a file
(whole, or ``--range a-b`` of its plaintext, fetching only the segments needed), and
``passphrase`` to change a vault's passphrase. Errors go to stderr with exit status 1; a failed
``get`` leaves nothing at ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from clients.vault.api import VaultClient
from clients.vault.crypto import VaultError


def _passphrase(path: str) -> bytes:
    """The passphrase file's content without its final newline (as ``echo secret > f`` writes it)."""
    return Path(path).read_bytes().rstrip(b"\r\n")


def _write_privately(out: Path, chunks) -> None:
    """Write ``chunks`` to a hidden file beside ``out`` and rename it only when every chunk was
    verified: a tampered file leaves no partial plaintext behind."""
    handle, temporary = tempfile.mkstemp(dir=out.parent or ".", prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        raise


def _span(text: str) -> tuple[int, int]:
    start, _, end = text.partition("-")
    if not start.isdigit() or not end.isdigit() or int(end) < int(start):
        raise argparse.ArgumentTypeError("a range is FIRST-LAST, byte offsets of the plaintext, both included")
    return int(start), int(end) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.vault", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the server, e.g. https://drive.example.com")
    parser.add_argument("--token", required=True, help="a personal access token")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a vault; prints its id")
    create.add_argument("--parent", required=True, help="id of the folder to create it in")
    create.add_argument("--name", required=True)
    create.add_argument("--passphrase-file", required=True)
    put = commands.add_parser("put", help="encrypt and upload a file; prints its id")
    put.add_argument("--folder", required=True, help="id of the vault (or a folder inside it)")
    put.add_argument("--passphrase-file", required=True)
    put.add_argument("--name", help="name in the vault (default: the file's name)")
    put.add_argument("path")
    get = commands.add_parser("get", help="download and decrypt a file")
    get.add_argument("--node", required=True, help="id of the file")
    get.add_argument("--passphrase-file", required=True)
    get.add_argument("--out", required=True)
    get.add_argument("--range", type=_span, help="only plaintext bytes FIRST-LAST (both included)")
    change = commands.add_parser("passphrase", help="change a vault's passphrase (re-wraps its key only)")
    change.add_argument("--vault", required=True)
    change.add_argument("--passphrase-file", required=True, help="the current passphrase")
    change.add_argument("--new-passphrase-file", required=True)
    args = parser.parse_args(argv)
    client = VaultClient(base=args.base, token=args.token)
    try:
        if args.command == "create":
            print(client.vault_create(parent=args.parent, name=args.name, passphrase=_passphrase(args.passphrase_file)))
        elif args.command == "put":
            path = Path(args.path)
            print(
                client.file_put(
                    folder=args.folder,
                    name=args.name or path.name,
                    path=path,
                    passphrase=_passphrase(args.passphrase_file),
                )
            )
        elif args.command == "get":
            passphrase = _passphrase(args.passphrase_file)
            if args.range:
                chunks = [
                    client.file_get_range(node=args.node, passphrase=passphrase, start=args.range[0], end=args.range[1])
                ]
            else:
                chunks = client.file_get(node=args.node, passphrase=passphrase)
            _write_privately(Path(args.out), chunks)
        else:
            client.passphrase_change(
                vault=args.vault,
                passphrase=_passphrase(args.passphrase_file),
                new_passphrase=_passphrase(args.new_passphrase_file),
            )
    except VaultError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
