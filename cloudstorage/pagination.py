"""Django REST framework's cursor pagination with positions that break ties (cloudstorage/keyset.py).

Apart from the keyset functions so that modules a web worker loads with the WSGI application (the
WebDAV app reaches files.selectors) do not load Django REST framework before gunicorn.conf.py's
post_worker_init keeps its optional packages out (tests/ops/test_worker_memory.py).
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from cloudstorage.keyset import InvalidPosition, Keyset, position_of


class TieBreakingCursorPagination(CursorPagination):
    """CursorPagination with positions that hold the tie-breaking column too (cloudstorage/keyset.py). Each
    ordering's second column must be unique among the rows listed with equal first columns."""

    def paginate_queryset(self, queryset, request, view=None):
        if isinstance(queryset, QuerySet):
            queryset = Keyset(queryset)
        try:
            return super().paginate_queryset(queryset, request, view)
        except InvalidPosition:
            # As Django REST framework answers any other cursor it cannot read.
            raise NotFound(self.invalid_cursor_message) from None

    def _get_position_from_instance(self, instance, ordering):
        return position_of(instance, ordering)
