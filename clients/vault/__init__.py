"""The reference client for vaults (docs/vault-format.md): ``python -m clients.vault --help``."""
