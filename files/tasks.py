"""Celery tasks of the namespace: thin wrappers around services (the schedule is in settings)."""

from __future__ import annotations

from celery import shared_task

from files import trash


@shared_task
def uploads_expire() -> dict:
    """Reclaim resumable uploads past their expiry (beat: hourly)."""
    from files.resumable import uploads_expire as expire

    return expire()


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def trash_purge_expired() -> int:
    """Nightly: delete forever what has been in the trash longer than CLOUDSTORAGE_TRASH_DAYS."""
    return trash.trash_purge_expired()


@shared_task
def quota_holds_reclaim() -> int:
    """Give back the quota reserved by uploads whose process died (beat: every 10 minutes)."""
    from files.quota import quota_holds_reclaim as reclaim

    return reclaim()


@shared_task
def usage_recount() -> int:
    """Nightly: correct workspaces whose used_bytes drifted from the bytes they count."""
    from files.quota import workspaces_usage_recount

    return workspaces_usage_recount()


@shared_task
def versions_thin_due() -> dict:
    """Nightly: apply the version policy (age limit, retries) to a bounded batch of files."""
    from files.versions import versions_thin_due as thin

    return thin()


@shared_task
def changes_prune() -> int:
    """Nightly: drop change-feed entries older than CLOUDSTORAGE_CHANGES_DAYS."""
    from files.changes import changes_prune as prune

    return prune()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def thumbnail_make(version_id: str) -> bool:
    """Make one version's thumbnail (queued when the version is created)."""
    from files.thumbnails import thumbnail_make as make

    return make(version_id=version_id) is not None
