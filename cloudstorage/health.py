"""Health: ``GET /healthz`` is liveness for anyone; ``GET /healthz/detail`` checks the database, the
broker and every disk, for operators only.

Liveness answers ``{"status": "ok"}`` without touching the database, the broker or a disk: anyone may
call it as often as they like (load balancers do), so it must cost nothing and name nothing. The
detailed check writes a probe object on every disk (on S3 a PUT, GET and DELETE) from the node that
answers, so a node that cannot see a local disk says so here, and reports vendors
and raw errors, so it is for staff sessions, or a monitor holding ``HEALTHZ_TOKEN``; anyone else
gets a 404, as if it were not there.
"""

from __future__ import annotations

import hmac
import socket

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
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
    """Every disk probed. A failed disk alone leaves the service degraded, not down, as long as every
    chunk still has a good copy elsewhere (re-replication is under way or done), and so does a
    backup-tier disk failing its probe or a full disk (still read); a primary disk in service
    failing its probe now, or a chunk with no good copy left, is unhealthy."""
    from disks.identity import disk_identity_check
    from disks.models import Disk
    from disks.selectors import replica_health
    from disks.services import disk_examine

    disks = {}
    ok = True
    failed = False
    for disk in Disk.objects.all():
        if disk.status == Disk.Status.FAILED:
            disks[disk.name] = {"ok": False, "status": disk.status, "error": disk.last_check_error or "marked failed"}
            failed = True
            continue
        error, full = disk_identity_check(disk=disk), False
        if error is None:
            error, full = disk_examine(disk=disk)
        disks[disk.name] = {"ok": error is None, "status": disk.status, "category": disk.category}
        if disk.is_backup:
            disks[disk.name]["role"] = disk.role
        if error:
            disks[disk.name]["error"] = error
            # Nothing a request needs waits on the backup tier: it only falls behind meanwhile. A
            # full disk is still read (the probe makes it read-only): new copies go elsewhere.
            if full:
                disks[disk.name]["full"] = True
            if disk.is_backup or full:
                failed = True
            else:
                ok = False
    if not disks:
        return {"ok": False, "error": "no disks attached", "disks": {}}
    if failed and ok:
        lost = replica_health()["chunks_without_good_copy"]
        if lost:
            return {"ok": False, "error": f"{lost} chunk(s) have no good copy left", "disks": disks}
        return {"ok": True, "degraded": True, "disks": disks}
    return {"ok": ok, "disks": disks}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Nothing is read or written."""
    return JsonResponse({"status": "ok"})


def _operator(request: HttpRequest) -> bool:
    """A staff session, or ``Authorization: Bearer <HEALTHZ_TOKEN>`` when that setting is set."""
    token = settings.HEALTHZ_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


@never_cache
@require_GET
def healthz_detail(request: HttpRequest) -> JsonResponse:
    """The database, the broker and every disk (each probed); 503 with details when one is down, 200
    "degraded" while a failed disk is attached but every chunk still has a good copy (a load
    balancer must not drop every node over one dead disk)."""
    if not _operator(request):
        raise Http404
    checks = {"database": _check_database(), "broker": _check_broker()}
    checks["disks"] = _check_disks() if checks["database"]["ok"] else {"ok": False, "error": "database is down"}
    healthy = all(check["ok"] for check in checks.values())
    status = ("degraded" if checks["disks"].get("degraded") else "ok") if healthy else "unhealthy"
    # Each web node answers for itself (a local disk may be mounted on one host and not another).
    return JsonResponse(
        {"status": status, "node": socket.gethostname(), "checks": checks}, status=200 if healthy else 503
    )
