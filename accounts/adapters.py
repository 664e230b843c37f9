from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.db import transaction
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        # The user and its personal workspace are created together or not at all.
        with transaction.atomic():
            return super().save_user(request, user, form, commit=commit)

    def send_mail(self, template_prefix, email, context):
        # The reset e-mail points to the settings page, where the account's tokens are listed.
        context = {
            **context,
            "settings_url": f"{settings.SITE_URL}{reverse('app_settings')}",
            # allauth would greet with the request's host name ("Hello from 127.0.0.1:8103!").
            "site_name": settings.SITE_NAME,
            "site_url": settings.SITE_URL,
        }
        return super().send_mail(template_prefix, email, context)
