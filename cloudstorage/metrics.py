"""Prometheus metrics at ``GET /metrics``: django-prometheus's request counters and latencies, and
the state of the store, read from the database at scrape time.

The store's gauges come from the database, so every web node reports the same values for them;
the counters (requests, upload and download bytes, failed logins) are per process, as Prometheus
expects of a counter: scrape every node, and sum. Only a monitor may read them: a request holding
``Authorization: Bearer <METRICS_TOKEN>``, or one from an address of ``METRICS_ALLOW``; anyone else
gets a 404, as if the route were not there.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily

from cloudstorage.client_address import client_address

UPLOAD_METHODS = ("PUT", "POST", "PATCH")

upload_bytes = Counter("cloudstorage_upload_bytes", "Request body bytes accepted by upload routes (2xx answers).")
download_bytes = Counter("cloudstorage_download_bytes", "Content bytes served by download routes (2xx answers).")
failed_logins = Counter("cloudstorage_failed_logins", "Sign-ins refused for wrong credentials.")


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    failed_logins.inc()


user_login_failed.connect(_on_login_failed, dispatch_uid="cloudstorage.metrics.failed_logins")


def _is_upload(request: HttpRequest) -> bool:
    path = request.path
    return request.method in UPLOAD_METHODS and (
        path.startswith("/api/v1/uploads/")
        or (path.startswith("/api/v1/nodes/") and "/children/" in path)
        or (path.startswith("/s/") and path.endswith("/upload"))
    )


def _is_download(request: HttpRequest) -> bool:
    path = request.path
    return request.method == "GET" and (
        (path.startswith("/api/v1/nodes/") and path.endswith(("/content", "/zip")))
        or (path.startswith("/s/") and path.endswith("/download"))
    )


class TransferMetricsMiddleware:
    """Counts the bytes of successful uploads and downloads (from the declared lengths: no hook in
    the streaming paths themselves)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if 200 <= response.status_code < 300:
            if _is_upload(request):
                upload_bytes.inc(int(request.META.get("CONTENT_LENGTH") or 0))
            elif _is_download(request) and response.has_header("Content-Length"):
                download_bytes.inc(int(response["Content-Length"]))
        return response


class StoreCollector:
    """Gauges of the store, computed when Prometheus scrapes."""

    def collect(self):
        from disks.models import Disk, Replica
        from disks.selectors import backup_lag, capacity_by_category, replica_health
        from files.models import Upload

        used = GaugeMetricFamily("cloudstorage_disk_used_bytes", "Bytes stored on a disk.", labels=["disk", "category"])
        free = GaugeMetricFamily("cloudstorage_disk_free_bytes", "Room left on a disk.", labels=["disk", "category"])
        up = GaugeMetricFamily(
            "cloudstorage_disk_in_service", "1 when the disk is active or read-only.", labels=["disk", "status"]
        )
        for disk in Disk.objects.only("name", "category", "role", "status", "used_bytes", "capacity_bytes"):
            # A backup-tier disk holds no category's data: its category label says so.
            category = "backup" if disk.is_backup else disk.category
            used.add_metric([disk.name, category], disk.used_bytes)
            free.add_metric([disk.name, category], disk.free_bytes)
            in_service = disk.status in (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)
            up.add_metric([disk.name, disk.status], 1 if in_service else 0)
        yield from (used, free, up)

        by_category = GaugeMetricFamily(
            "cloudstorage_category_used_bytes",
            "Bytes stored on the in-service disks of a category.",
            labels=["category"],
        )
        capacity = GaugeMetricFamily(
            "cloudstorage_category_capacity_bytes",
            "Capacity of the in-service disks of a category.",
            labels=["category"],
        )
        for row in capacity_by_category():
            by_category.add_metric([row["category"]], row["used_bytes"])
            capacity.add_metric([row["category"]], row["capacity_bytes"])
        yield from (by_category, capacity)

        health = replica_health()
        for name, help_text in (
            ("chunks_under_replicated", "Chunks with fewer good copies than wanted."),
            ("chunks_without_good_copy", "Chunks with no good copy left (lost unless a disk comes back)."),
            ("chunks_needing_repair", "The repair backlog: chunks to copy or whose bad copies to drop."),
            ("replicas_bad", "Copies found missing or corrupt."),
        ):
            yield GaugeMetricFamily(f"cloudstorage_{name}", help_text, value=health[name])
        yield GaugeMetricFamily(
            "cloudstorage_chunks_only_on_backup",
            "Chunks whose only good copy is on the backup tier (repair restores their primary copies from it).",
            value=health["chunks_only_on_backup"],
        )
        lag = backup_lag()
        if lag is not None:  # only with a backup tier: an absent series, not a zero, means "none"
            for name, help_text, value in (
                ("chunks", "Chunks of finished files not yet copied to the backup tier.", lag["chunks"]),
                ("bytes", "Stored bytes of the chunks not yet copied to the backup tier.", lag["bytes"]),
                ("seconds", "Age of the oldest chunk not yet copied to the backup tier.", lag["age_seconds"]),
            ):
                yield GaugeMetricFamily(f"cloudstorage_backup_lag_{name}", help_text, value=value)
        draining = Replica.objects.filter(disk__status=Disk.Status.DRAINING).count()
        yield GaugeMetricFamily("cloudstorage_drain_backlog", "Copies still on draining disks.", value=draining)
        in_flight = Upload.objects.filter(state=Upload.State.ACTIVE).count()
        yield GaugeMetricFamily(
            "cloudstorage_tus_uploads_in_flight", "Resumable uploads not finished.", value=in_flight
        )


# A registry of its own: the default one would run the queries once at import, to learn the names.
STORE_REGISTRY = CollectorRegistry(auto_describe=False)
STORE_REGISTRY.register(StoreCollector())


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
    if not settings.METRICS_ALLOW:
        return False
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOW)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of every metric of this process."""
    if not _allowed(request):
        raise Http404
    return HttpResponse(generate_latest(REGISTRY) + generate_latest(STORE_REGISTRY), content_type=CONTENT_TYPE_LATEST)
