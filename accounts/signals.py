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
