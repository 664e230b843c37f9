from django.contrib.admin.apps import AdminConfig


class OperatorAdminConfig(AdminConfig):
    """Replaces ``django.contrib.admin`` in INSTALLED_APPS so that ``admin.site`` is the operators'
    site (cloudstorage/admin_site.py: allauth's login, 2FA required). Kept apart from that module,
    which imports models, because this one is imported while the app registry is being filled."""

    default_site = "cloudstorage.admin_site.OperatorAdminSite"
