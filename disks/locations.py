"""Where an operator may point a disk: which S3 endpoints the admin will talk to and which folders
may become local disks.

The disk form probes what it is given, so without these limits a staff account could use it to
reach any address the web node can (loopback, the cloud's metadata service, private networks: a
port scanner that reports what answered) or write into any folder the process may write to.

- S3 endpoints: a host matching ``CLOUDSTORAGE_S3_ENDPOINT_ALLOW`` (``host`` or ``host:port``
  patterns, ``*`` wildcards) is accepted as given, http or https. Any other endpoint must be https
  and every address its name resolves to must be public (not loopback, private, link-local,
  shared, reserved or multicast). No endpoint (AWS's default) is always fine.
- Local folders: inside one of ``CLOUDSTORAGE_LOCAL_DISK_ROOTS`` (default: the disks folder),
  after resolving symbolic links and ``..``.

The checks guard the operators' surfaces (the admin's disk form and the probe before a disk is
marked active again); disks created by code (``bootstrap_demo``, tests, benchmarks) are trusted.
"""

from __future__ import annotations

import ipaddress
import socket
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from disks.models import Disk


def _split_host_port(pattern: str) -> tuple[str, int | None]:
    pattern = pattern.strip().lower()
    if pattern.startswith("["):  # [::1]:9000
        host, _, rest = pattern[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if pattern.count(":") == 1:
        host, port = pattern.split(":")
        return host, int(port) if port.isdigit() else None
    return pattern, None


def _allowed(host: str, port: int) -> bool:
    for pattern in settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW:
        allowed_host, allowed_port = _split_host_port(pattern)
        if allowed_host and fnmatchcase(host, allowed_host) and allowed_port in (None, port):
            return True
    return False


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def s3_endpoint_check(endpoint_url: str) -> str | None:
    """Why the admin must not talk to this endpoint, or None when it may."""
    if not endpoint_url:
        return None
    try:
        parts = urlsplit(endpoint_url.strip())
        port = parts.port
    except ValueError:
        return "The endpoint URL is not valid."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The endpoint URL must be http(s)://host[:port]."
    if parts.username or parts.password:
        return "Put the credentials in the key fields, not in the endpoint URL."
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    if _allowed(host, port):
        return None
    if parts.scheme != "https":
        return "Only https endpoints are allowed (or add the host to CLOUDSTORAGE_S3_ENDPOINT_ALLOW)."
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return "The endpoint's host name does not resolve."
    if not addresses or not all(_is_public(a) for a in addresses):
        return (
            "The endpoint is not a public address (loopback, private, link-local and reserved networks "
            "are refused unless the host is in CLOUDSTORAGE_S3_ENDPOINT_ALLOW)."
        )
    return None


def local_disk_roots() -> list[Path]:
    roots = settings.CLOUDSTORAGE_LOCAL_DISK_ROOTS or [settings.CLOUDSTORAGE_DISKS_DIR]
    return [Path(root).resolve() for root in roots]


def local_path_check(path: str) -> str | None:
    """Why a local disk may not live in this folder, or None when it may."""
    if not path:
        return None
    candidate = Path(path)
    if not candidate.is_absolute():
        return "Give the absolute path of the folder."
    resolved = candidate.resolve()
    if any(resolved.is_relative_to(root) for root in local_disk_roots()):
        return None
    return "Local disks must live under one of CLOUDSTORAGE_LOCAL_DISK_ROOTS."


def disk_location_check(*, disk: Disk) -> dict[str, str]:
    """The refusals for a disk's location, by form field (empty when the operator may use it)."""
    errors = {}
    if disk.backend == Disk.Backend.LOCAL:
        if error := local_path_check(disk.path):
            errors["path"] = error
    elif error := s3_endpoint_check(disk.s3_endpoint_url):
        errors["s3_endpoint_url"] = error
    return errors
