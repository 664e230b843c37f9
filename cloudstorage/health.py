"""``GET /healthz``: the database, the broker and every disk; 503 with details when one is down."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor}


def _check_broker() -> dict:
    try:
        with Connection(
            settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "transport": settings.CELERY_BROKER_URL.split(":", 1)[0]}


def _check_disks() -> dict:
    from disks.models import Disk
    from disks.services import disk_check

    disks = {}
    ok = True
    for disk in Disk.objects.all():
        if disk.status == Disk.Status.FAILED:
            disks[disk.name] = {"ok": False, "status": disk.status, "error": disk.last_check_error or "marked failed"}
            ok = False
            continue
        error = disk_check(disk=disk)
        disks[disk.name] = {"ok": error is None, "status": disk.status, "category": disk.category}
        if error:
            disks[disk.name]["error"] = error
            ok = False
    if not disks:
        return {"ok": False, "error": "no disks attached", "disks": {}}
    return {"ok": ok, "disks": disks}


@never_cache
def healthz(request) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    checks["disks"] = _check_disks() if checks["database"]["ok"] else {"ok": False, "error": "database is down"}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503)
