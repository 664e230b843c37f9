"""The operators' view of sharing: every public link of the service (with last access and a revoke
action, so no link is forgotten), shares, the activity log and per-workspace policies."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils import timezone

from files.access import with_creator_access
from files.links import link_revoke, link_state
from files.models import Activity, FilesPolicy, PublicLink, Share, Upload


class LinkStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active (not revoked, not expired)"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request, queryset: QuerySet[PublicLink]):
        now = timezone.now()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        return queryset


@admin.register(PublicLink)
class PublicLinkAdmin(admin.ModelAdmin):
    """Read-only inventory; operators can only revoke (the owner's settings are not theirs to edit)."""

    list_display = [
        "short_token",
        "workspace",
        "node",
        "permission",
        "state",
        "has_password",
        "expires_at",
        "downloads",
        "last_accessed_at",
        "created_by",
        "created_at",
    ]
    list_filter = [LinkStateFilter, "permission"]
    search_fields = ["token", "workspace__name", "node__name", "created_by__email"]
    list_select_related = ["workspace", "node", "created_by"]
    date_hierarchy = "created_at"
    actions = ["revoke"]
    exclude = ["password_hash"]
    readonly_fields = [
        "workspace",
        "node",
        "token",
        "permission",
        "has_password",
        "expires_at",
        "max_downloads",
        "download_count",
        "created_by",
        "created_at",
        "revoked_at",
        "last_accessed_at",
    ]

    def get_queryset(self, request):
        # The state column asks whether each link's creator may still edit its node.
        return with_creator_access(super().get_queryset(request))

    @admin.display(description="token")
    def short_token(self, link: PublicLink) -> str:
        return f"{link.token[:8]}…"

    @admin.display(description="state")
    def state(self, link: PublicLink) -> str:
        return link_state(link=link)

    @admin.display(description="password", boolean=True)
    def has_password(self, link: PublicLink) -> bool:
        return bool(link.password_hash)

    @admin.display(description="downloads")
    def downloads(self, link: PublicLink) -> str:
        return f"{link.download_count} / {link.max_downloads}" if link.max_downloads else str(link.download_count)

    @admin.action(description="Revoke the selected links", permissions=["change"])
    def revoke(self, request, queryset: QuerySet[PublicLink]) -> None:
        count = 0
        for link in queryset.filter(revoked_at__isnull=True).select_related("node"):
            count += link_revoke(actor=request.user, link=link)
        self.message_user(request, f"Revoked {count} link(s).", messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    list_display = ["node", "user", "permission", "workspace", "created_by", "created_at"]
    list_filter = ["permission"]
    search_fields = ["user__email", "workspace__name", "node__name", "created_by__email"]
    list_select_related = ["node", "user", "workspace", "created_by"]
    readonly_fields = ["workspace", "node", "user", "created_by", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor", "verb", "path"]
    list_filter = ["verb"]
    search_fields = ["workspace__name", "actor__email", "path"]
    list_select_related = ["workspace", "actor"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FilesPolicy)
class FilesPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "keep_versions",
        "keep_days",
        "link_default_expiry_days",
        "link_max_expiry_days",
        "link_password_required",
        "link_default_max_downloads",
    ]
    search_fields = ["workspace__name"]
    raw_id_fields = ["workspace"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Resumable uploads in flight: how far each got and the quota it holds; an operator can end one."""

    list_display = ["filename", "workspace", "user", "offset", "length", "reserved_bytes", "state", "expires_at"]
    list_filter = ["state"]
    search_fields = ["filename", "workspace__name", "user__email"]
    list_select_related = ["workspace", "user"]
    exclude = ["head", "store_state"]
    readonly_fields = [f.name for f in Upload._meta.fields if f.name not in ("head", "store_state")]
    actions = ["reclaim"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Expire now: give back the quota and the stored bytes", permissions=["change"])
    def reclaim(self, request, queryset: QuerySet) -> None:
        from files.resumable import upload_expire

        done = sum(upload_expire(upload=upload) for upload in queryset.filter(state=Upload.State.ACTIVE))
        self.message_user(request, f"{done} upload(s) expired.", messages.SUCCESS)
