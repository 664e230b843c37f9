from celery import shared_task
from django.utils import timezone

from accounts.models import ApiToken, Invitation


@shared_task
def invitations_expire() -> int:
    """Delete invitations that can no longer be accepted."""
    deleted, _ = Invitation.objects.filter(accepted_at__isnull=True, expires_at__lt=timezone.now()).delete()
    return deleted


@shared_task
def tokens_purge_expired() -> int:
    """Drop tokens that expired or were revoked more than 30 days ago; they are useless rows."""
    cutoff = timezone.now() - timezone.timedelta(days=30)
    deleted, _ = ApiToken.objects.filter(expires_at__lt=cutoff).delete()
    deleted_revoked, _ = ApiToken.objects.filter(revoked_at__lt=cutoff).delete()
    return deleted + deleted_revoked


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def user_sessions_end(*, user_id: str, keep: str | None = None) -> int:
    from accounts.services import user_sessions_end as end

    return end(user_id=user_id, keep=keep)
