"""Input fields of the API that take a JSON value only of their own type.

DRF's fields convert what they get: ``CharField`` turns ``123`` into ``"123"`` and ``[1, 2]`` items
into ``"1"`` and ``"2"``, ``IntegerField`` takes ``"10"``, ``BooleanField`` takes ``"yes"`` and
``UUIDField`` takes the integer ``5`` as ``00000000-…-0005``. A client that sends the wrong type has
a bug, and a silent conversion hides it (a file renamed to ``"123"``), so the API's input
serializers use these and answer 400 in the one error shape instead (cloudstorage.api).

Form and multipart bodies carry only text, so there a text value is still converted as before: the
type is checked when the body was JSON (the serializer's data is not a ``QueryDict``). The OpenAPI
schema is unchanged: drf-spectacular maps each to its DRF parent's type.
"""

from __future__ import annotations

import uuid

from django.http import QueryDict
from rest_framework import serializers


def _from_json(field: serializers.Field) -> bool:
    data = getattr(field.root, "initial_data", None)
    return not isinstance(data, QueryDict)


class StrictCharField(serializers.CharField):
    """A ``CharField`` that takes only a JSON string."""

    default_error_messages = {"invalid": "Not a valid string: send a JSON string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An ``IntegerField`` that takes only a JSON integer (not a string, a fraction or a boolean)."""

    default_error_messages = {"invalid": "A valid integer is required: send a JSON number without quotes."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or (_from_json(self) and not isinstance(data, int)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A ``BooleanField`` that takes only JSON ``true`` or ``false``."""

    default_error_messages = {"invalid": "Must be a valid boolean: send true or false."}

    def to_internal_value(self, data):
        if _from_json(self) and not isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A ``UUIDField`` that takes only a string (DRF also takes an integer as a UUID's 128 bits)."""

    def to_internal_value(self, data):
        if not isinstance(data, (str, uuid.UUID)):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
