from django.contrib import admin

from disks.models import Disk


@admin.register(Disk)
class DiskAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "backend",
        "category",
        "status",
        "used_bytes",
        "capacity_bytes",
        "last_check_at",
        "last_check_ok",
    ]
    list_filter = ["category", "status", "backend"]
    search_fields = ["name", "path", "s3_bucket"]
