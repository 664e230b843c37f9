from celery import shared_task

from billing import services


@shared_task
def billing_grace_enforce() -> dict[str, int]:
    """Daily: grace periods that ran out make workspaces read-only; settled ones are released."""
    return services.billing_grace_enforce()


@shared_task
def billing_local_renew() -> int:
    """Daily: renew or end local-mode subscriptions whose period is over."""
    return services.billing_local_renew()
