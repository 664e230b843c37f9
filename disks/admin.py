"""The operators' console for disks: attach a disk (probed before it is saved; a primary disk or one
of the backup tier), watch capacity per category and per disk, the health of the replicas and how
far the backup tier lags, change a disk's status, start a scrub, a drain or a sweep. Every change goes through the disks services (disks.services; scrub, drain and sweep through their tasks) and is written to the admin log."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from disks import tasks
from disks.identity import disk_identity_check, disk_mark, disk_marker_conflict
from disks.locations import disk_location_check
from disks.models import Disk, Replica
from disks.selectors import backup_lag, capacity_by_category, replica_health
from disks.services import disk_check, disk_returned, disk_set_status

# Configuration that decides where a disk's bytes are: fixed once it holds data.
LOCATION_FIELDS = [
    "backend",
    "path",
    "s3_endpoint_url",
    "s3_bucket",
    "s3_prefix",
    "s3_region",
    "s3_access_key",
    "s3_secret_key",
    "category",
]
PROBE_FIELDS = [
    "used_bytes",
    "status",
    "last_check_at",
    "last_check_ok",
    "last_check_error",
    "consecutive_failures",
    "probe_history",
    "created_at",
]


GB = 1024**3


class DiskForm(forms.ModelForm):
    s3_secret_key = forms.CharField(required=False, widget=forms.PasswordInput, label="S3 secret key")
    status = forms.ChoiceField(
        choices=[
            (Disk.Status.ACTIVE, "active: takes data now"),
            (Disk.Status.STANDBY, "standby: activated when its category fills"),
        ],
        initial=Disk.Status.ACTIVE,
        required=False,
        help_text="A standby disk is probed like any other and takes data only once its category passes "
        "the capacity alert threshold.",
    )
    role = forms.ChoiceField(
        choices=Disk.Role.choices,
        initial=Disk.Role.PRIMARY,
        required=False,
        help_text="A backup disk (typically a cloud bucket) is never chosen for new writes: a worker copies "
        "every chunk there once the upload is stored, and reads and repairs fall back to that copy when every "
        "other copy is missing or corrupt. Its category is not used. Fixed once the disk is saved.",
    )
    returning = forms.BooleanField(
        required=False,
        label="Returning after a database restore",
        help_text="Tick only for one of this installation's disks attached after the backup the database was "
        "restored from: its .cloudstorage-disk marker names a disk this database does not know, and it is "
        "attached under that id with the copies on it recorded. A place holding such a marker is refused "
        "otherwise: it may be another installation's disk, whose objects are nobody's here.",
    )
    # Operators think of disks in GB; the model keeps bytes.
    capacity_gb = forms.DecimalField(
        label="Capacity (GB)", min_value=Decimal("0.001"), decimal_places=3, help_text="1 GB = 1024³ bytes."
    )

    class Meta:
        model = Disk
        fields = [
            "name",
            "role",
            "category",
            "capacity_gb",
            "status",
            *[f for f in LOCATION_FIELDS if f != "category"],
        ]

    def clean_status(self):
        return self.cleaned_data.get("status") or Disk.Status.ACTIVE

    def clean_role(self):
        return self.cleaned_data.get("role") or Disk.Role.PRIMARY

    class Media:
        js = ["js/admin_disk_form.js"]  # shows the S3 fields only for an S3 disk

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields.pop("returning", None)  # only a new disk can be one returning
        if self.instance.capacity_bytes:
            self.initial["capacity_gb"] = (Decimal(self.instance.capacity_bytes) / GB).quantize(Decimal("0.001"))

    def clean_capacity_gb(self):
        capacity = int(self.cleaned_data["capacity_gb"] * GB)
        if not self.instance._state.adding and capacity < self.instance.used_bytes:
            raise forms.ValidationError(f"The disk already holds {filesizeformat(self.instance.used_bytes)}.")
        self.instance.capacity_bytes = capacity
        return self.cleaned_data["capacity_gb"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance._state.adding or self.errors:
            return cleaned
        if cleaned.get("role") == Disk.Role.BACKUP and cleaned.get("status") == Disk.Status.STANDBY:
            raise forms.ValidationError(
                {"status": "A backup disk cannot be a standby: standbys wait for a category to fill."}
            )
        if cleaned.get("backend") == Disk.Backend.LOCAL and not cleaned.get("path"):
            raise forms.ValidationError({"path": "A local disk needs the folder it lives in."})
        if cleaned.get("backend") in (Disk.Backend.S3, Disk.Backend.GCS) and not cleaned.get("s3_bucket"):
            raise forms.ValidationError({"s3_bucket": "A bucket disk needs a bucket."})
        candidate = Disk(**{f: cleaned.get(f) or "" for f in LOCATION_FIELDS})
        # Only allowed places are probed at all: the probe must not reach into internal networks
        # or arbitrary folders (see disks/locations.py).
        refused = disk_location_check(disk=candidate)
        if refused:
            raise forms.ValidationError(refused)
        # A new disk takes no data before it proved reachable and writable (write, fsync, read back).
        error = disk_check(disk=candidate)
        if error:
            raise forms.ValidationError(f"The disk is not reachable or not writable: {error}", code="unusable")
        conflict = disk_marker_conflict(disk=candidate, returning=cleaned.get("returning", False))
        if conflict:
            raise forms.ValidationError(f"This place belongs to another disk: {conflict}", code="taken")
        return cleaned


@admin.register(Disk)
class DiskAdmin(admin.ModelAdmin):
    form = DiskForm
    change_list_template = "admin/disks/disk/change_list.html"
    list_display = [
        "name",
        "backend",
        "role",
        "category",
        "status",
        "space",
        "copies",
        "last_check_at",
        "last_check_ok",
    ]
    list_filter = ["role", "category", "status", "backend"]
    search_fields = ["name", "path", "s3_bucket"]
    actions = ["mark_active", "mark_read_only", "mark_draining", "mark_failed", "scrub", "drain", "sweep"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return [f for f in PROBE_FIELDS if f != "status"]
        return ["role", *(f for f in LOCATION_FIELDS if f != "s3_secret_key"), *PROBE_FIELDS]

    def get_queryset(self, request) -> QuerySet[Disk]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                ok_copies=Count("replicas", filter=Q(replicas__state=Replica.State.OK)),
                bad_copies_count=Count("replicas", filter=Q(replicas__state=Replica.State.BAD)),
            )
        )

    def changelist_view(self, request, extra_context=None):
        categories = capacity_by_category()
        standbys: dict[str, list[str]] = {}
        for disk in Disk.objects.filter(status=Disk.Status.STANDBY, role=Disk.Role.PRIMARY).order_by("name"):
            standbys.setdefault(disk.category, []).append(f"{disk.name} ({filesizeformat(disk.capacity_bytes)})")
        for row in categories:
            row["used_h"] = filesizeformat(row["used_bytes"])
            row["capacity_h"] = filesizeformat(row["capacity_bytes"])
            row["standby"] = standbys.get(row["category"], [])
        backup = backup_lag()
        if backup is not None:
            backup["bytes_h"] = filesizeformat(backup["bytes"])
            for disk in backup["disks"]:
                disk["used_h"] = filesizeformat(disk["used_bytes"])
        extra_context = {
            **(extra_context or {}),
            "categories": categories,
            "health": replica_health(),
            "backup": backup,
        }
        return super().changelist_view(request, extra_context=extra_context)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if obj is None else [f for f in fields if f != "returning"]

    def get_exclude(self, request, obj=None):
        # A saved secret is never shown again, not even read-only.
        return ["s3_secret_key"] if obj else []

    def save_model(self, request, obj: Disk, form, change: bool) -> None:
        returning = False
        if not change:
            # The form's clean() has just probed it; it takes no data before it carries its marker.
            returning = disk_mark(disk=obj, returning=form.cleaned_data.get("returning", False))
            obj.last_check_at = timezone.now()
            obj.last_check_ok = True
            obj.probe_history = "1"
        super().save_model(request, obj, form, change)
        if returning:
            disk_returned(disk=obj)
            self.message_user(
                request,
                f"{obj.name} carries the marker of a disk this database does not know (attached after the backup "
                "it was restored from): it was attached as that disk, and the copies on it are being recorded.",
                messages.WARNING,
            )

    # Few, combined columns: the list fits a 1366 px screen.
    @admin.display(description="used of capacity", ordering="used_bytes")
    def space(self, disk: Disk) -> str:
        percent = 100 * disk.used_bytes / disk.capacity_bytes if disk.capacity_bytes else 0
        return f"{filesizeformat(disk.used_bytes)} of {filesizeformat(disk.capacity_bytes)} ({percent:.1f}%)"

    @admin.display(description="copies good / bad", ordering="bad_copies_count")
    def copies(self, disk: Disk) -> str:
        return f"{disk.ok_copies} / {disk.bad_copies_count}"

    # --- Actions: every one goes through a service and is logged ---------------------------------

    def _set_status(self, request, queryset, status: str, *, probe: bool = False) -> None:
        changed = refused = 0
        for disk in queryset:
            if disk.status == status:
                continue
            if probe:
                not_allowed = disk_location_check(disk=disk)
                error = (
                    " ".join(not_allowed.values())
                    if not_allowed
                    else disk_identity_check(disk=disk) or disk_check(disk=disk)
                )
                if error:
                    refused += 1
                    self.message_user(
                        request, f"{disk.name} stays {disk.status}: probe failed: {error}", messages.ERROR
                    )
                    continue
            previous = disk.status
            disk_set_status(disk=disk, status=status)
            self.log_change(request, disk, f"Status changed from {previous} to {status}.")
            changed += 1
        if changed:
            self.message_user(request, f"{changed} disk(s) marked {status}.", messages.SUCCESS)

    @admin.action(description="Mark active (after a successful probe)", permissions=["change"])
    def mark_active(self, request, queryset):
        self._set_status(request, queryset, Disk.Status.ACTIVE, probe=True)

    @admin.action(description="Mark read-only (no new chunks)", permissions=["change"])
    def mark_read_only(self, request, queryset):
        self._set_status(request, queryset, Disk.Status.READ_ONLY)

    @admin.action(description="Mark draining (move every chunk off it)", permissions=["change"])
    def mark_draining(self, request, queryset):
        self._set_status(request, queryset, Disk.Status.DRAINING)

    @admin.action(description="Mark failed (stop using it; re-replicate its chunks)", permissions=["change"])
    def mark_failed(self, request, queryset):
        self._set_status(request, queryset, Disk.Status.FAILED)

    @admin.action(description="Scrub now (verify every copy on it)", permissions=["change"])
    def scrub(self, request, queryset):
        for disk in queryset.exclude(status=Disk.Status.FAILED):
            transaction.on_commit(lambda disk_id=str(disk.pk): tasks.disk_scrub.delay(disk_id=disk_id))
            self.log_change(request, disk, "Scrub queued.")
        self.message_user(request, "Scrub queued; bad copies found are repaired.", messages.SUCCESS)

    @admin.action(description="Drain now (start moving its chunks to other disks)", permissions=["change"])
    def drain(self, request, queryset):
        for disk in queryset.exclude(status=Disk.Status.FAILED):
            previous = disk.status
            disk_set_status(disk=disk, status=Disk.Status.DRAINING)
            transaction.on_commit(lambda disk_id=str(disk.pk): tasks.disk_drain.delay(disk_id=disk_id))
            self.log_change(request, disk, f"Status changed from {previous} to draining; drain queued.")
        self.message_user(request, "Drain queued; the beat job continues until the disks are empty.", messages.SUCCESS)

    @admin.action(description="Sweep unreferenced objects (delete copies no replica refers to)", permissions=["change"])
    def sweep(self, request, queryset):
        for disk in queryset.exclude(status=Disk.Status.FAILED):
            transaction.on_commit(lambda disk_id=str(disk.pk): tasks.disk_sweep.delay(disk_id=disk_id))
            self.log_change(request, disk, "Sweep of unreferenced objects queued.")
        self.message_user(request, "Sweep queued; objects written in the last hour are left alone.", messages.SUCCESS)
