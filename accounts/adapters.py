from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        # The user and its personal workspace are created together or not at all.
        with transaction.atomic():
            return super().save_user(request, user, form, commit=commit)
