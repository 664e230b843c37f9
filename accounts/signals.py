from allauth.account import signals as allauth_signals
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import workspace_create_personal


@receiver(post_save, sender=User, dispatch_uid="user_personal_workspace")
def _user_created(sender, instance: User, created: bool, raw: bool = False, **kwargs) -> None:
    # A signal, not a call in each creation path: allauth's sign-up, createsuperuser, the admin
    # and the manager all end in save(). Every one of those paths runs the save in a transaction
    # (the manager and the adapter open one, the admin's add view is atomic), so the user never
    # exists without its workspace.
    if created and not raw:
        with transaction.atomic():
            workspace_create_personal(user=instance)


def _queue_sessions_end(user, keep: str | None) -> None:
    from accounts import tasks

    transaction.on_commit(lambda: tasks.user_sessions_end.delay(user_id=str(user.pk), keep=keep))


@receiver(allauth_signals.password_reset, dispatch_uid="password_reset_ends_sessions")
def _password_reset(sender, request, user, **kwargs) -> None:
    # Whoever asked for the reset may not be the one holding the other sessions: end them all.
    _queue_sessions_end(user, keep=None)


@receiver(allauth_signals.password_changed, dispatch_uid="password_changed_ends_other_sessions")
@receiver(allauth_signals.password_set, dispatch_uid="password_set_ends_other_sessions")
def _password_changed(sender, request, user, **kwargs) -> None:
    # The browser that changed it stays signed in (allauth re-hashes its session); the rest end.
    keep = getattr(getattr(request, "session", None), "session_key", None)
    _queue_sessions_end(user, keep=keep)
