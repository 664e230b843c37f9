from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from cloudstorage.health import healthz, healthz_detail
from cloudstorage.metrics import metrics

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("files.api.urls")),
    path("", include("files.api.sharing_urls")),
    path("", include("files.api.tus_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves its script from a URL of its own: no inline code under our CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("healthz/detail", healthz_detail, name="healthz_detail"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("invitations/<str:token>/", account_views.invitation_accept_view, name="invitation_accept"),
    path("app/", include("accounts.urls")),
    path("app/", include("billing.urls")),
    path("app/", include("files.web_urls")),
    path("app/", include("files.sharing_web_urls")),
    path("billing/", include("billing.webhook_urls")),
    path("api/v1/", include(api_v1)),
    path("s/", include("files.public_urls")),
]


def _handler404(request, exception=None):
    from django.views.defaults import page_not_found

    from cloudstorage.api import json_404

    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return page_not_found(request, exception)


def _handler500(request):
    from django.views.defaults import server_error

    from cloudstorage.api import json_500

    if request.path.startswith("/api/"):
        return json_500(request)
    return server_error(request)


handler404 = _handler404
handler500 = _handler500
