import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloudstorage.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402 - configured by get_wsgi_application()

from cloudstorage.bodytimeout import BodyReadTimeout  # noqa: E402
from files.dav.app import DavDispatcher  # noqa: E402

application = BodyReadTimeout(DavDispatcher(application), timeout=settings.REQUEST_BODY_TIMEOUT)
