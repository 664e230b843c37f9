from django.urls import path

from files.api import tus

urlpatterns = [
    path("uploads/", tus.upload_collection, name="tus_uploads"),
    path("uploads/<uuid:upload_id>", tus.upload_detail, name="tus_upload"),
]
