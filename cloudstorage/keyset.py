"""Cursor positions that break ties (cloudstorage.pagination uses them with Django REST framework).

Django REST framework's CursorPagination keeps, as a cursor's position, the value of the ordering's
first column alone, plus an offset among the rows that share it; walking back (previous links)
through equal values miscounts that offset and skips a row. Our orderings all end with a column
that breaks ties (a name unique among siblings, an id), so a position here holds the values of both
columns (:func:`position_of`, as JSON), and the rows after it are read as a keyset condition
(:func:`keyset_filter`): no offset is ever needed. A position of one value, from a cursor written
before, is read as it was.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet


class InvalidPosition(ValueError):
    """A cursor's position that is no value of the columns it orders by."""


def position_of(row, ordering: tuple) -> str:
    """The position after ``row`` (a dict or a model instance) in ``ordering``: its first column's
    value and, if the ordering has a second column, that one's too."""
    columns = [field.lstrip("-") for field in ordering[:2]]
    values = [row[column] if isinstance(row, dict) else getattr(row, column) for column in columns]
    if len(values) == 1:
        return str(values[0])
    return json.dumps([str(value) for value in values])


def position_read(model: type[Model], ordering: tuple, lookup: dict) -> tuple[tuple, list]:
    """``(after, values)`` of the ``{"column__gt" or "column__lt": position}`` filter Django REST
    framework asks for: ``after`` is (column, op) or (column, op, tie column), ``values`` the
    position's value(s). InvalidPosition when the text is no value of its column (a size of "abc"):
    refused here, not by the database driver."""
    ((key, value),) = lookup.items()
    column, _, op = key.rpartition("__")
    if op not in ("gt", "lt"):
        raise ValueError(f"a cursor's position filters with gt or lt, not {key}")
    after, values = (column, op), [value]
    if len(ordering) > 1 and ordering[0].startswith("-") != ordering[1].startswith("-"):
        # keyset_filter compares both columns the same way.
        raise ValueError(f"the ordering {ordering} mixes directions")
    tie = [field.lstrip("-") for field in ordering[1:2]]
    if tie:
        try:
            pair = json.loads(value)
        except ValueError:
            pair = None
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair):
            after, values = (column, op, tie[0]), pair
    try:
        for name, part in zip(after[:1] + after[2:], values, strict=True):
            model._meta.get_field(name).get_prep_value(part)
    except (TypeError, ValueError, ValidationError) as error:
        raise InvalidPosition(f"{value!r} is no {column}") from error
    return after, values


def keyset_filter(queryset: QuerySet, after: tuple, position, tiebreak=None) -> QuerySet:
    """The rows of ``queryset`` past the position: ``column >= position AND (column > position OR
    tie > tiebreak)`` (or the same with < for a descending one), so an index's range still starts
    at the position."""
    column, op, *tie = after
    if not tie:
        return queryset.filter(**{f"{column}__{op}": position})
    return queryset.filter(
        Q(**{f"{column}__{op}e": position}) & (Q(**{f"{column}__{op}": position}) | Q(**{f"{tie[0]}__{op}": tiebreak}))
    )


class Keyset:
    """What Django REST framework's CursorPagination does with a queryset (order it, filter by the
    position, slice a page), with the position read by :func:`position_read`."""

    def __init__(self, queryset: QuerySet, ordering: tuple = ()):
        self.queryset = queryset
        self.ordering = ordering

    def order_by(self, *ordering: str) -> Keyset:
        return Keyset(self.queryset.order_by(*ordering), tuple(ordering))

    def filter(self, **lookup) -> Keyset:
        after, values = position_read(self.queryset.model, self.ordering, lookup)
        return Keyset(keyset_filter(self.queryset, after, *values), self.ordering)

    def __getitem__(self, page: slice):
        return self.queryset[page]
