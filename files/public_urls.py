from django.urls import path

from files import public_views

urlpatterns = [
    path("<str:token>", public_views.link_page, name="public_link"),
    path("<str:token>/download", public_views.link_download, name="public_link_download"),
    path("<str:token>/preview", public_views.link_preview, name="public_link_preview"),
    path("<str:token>/thumbnail", public_views.link_thumbnail, name="public_link_thumbnail"),
    path("<str:token>/upload", public_views.link_upload_view, name="public_link_upload"),
]
