"""Celery tasks of the namespace: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task


@shared_task
def uploads_expire() -> dict:
    """Reclaim resumable uploads past their expiry (beat: hourly)."""
    from files.resumable import uploads_expire as expire

    return expire()
