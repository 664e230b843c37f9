"""The API's orjson renderer writes the bytes Django REST framework's renderer wrote."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFRenderer

from cloudstorage.renderers import JSONRenderer

MOMENT = dt.datetime(2026, 12, 7, 23, 9, 28, 123456, tzinfo=dt.UTC)


def both(data, media_type="application/json"):
    return JSONRenderer().render(data, media_type, {}), DRFRenderer().render(data, media_type, {})


def test_a_listing_page_is_the_same_bytes():
    row = {
        "id": uuid.uuid4(),
        "name": 'naïve – 日本語 \u2028 \u2029 "quoted" \\ \x7f.txt',
        "parent": None,
        "size": 2**62,
        "created_at": MOMENT,
        "modified_at": MOMENT.replace(microsecond=0),
        "tags": ["b", "a"],
        "permission": "manage",
    }
    ours, theirs = both({"next": "https://x/?cursor=cD1h", "previous": None, "results": [row, row]})
    assert ours == theirs
    assert b"\\u2028" in ours and b"2026-12-07T23:09:28.123456Z" in ours and b"2026-12-07T23:09:28Z" in ours


def test_other_values_take_drfs_encoder():
    data = {
        "lazy": gettext_lazy("Not found."),
        "price": Decimal("9.50"),
        "day": dt.date(2026, 12, 7),
        "span": dt.timedelta(seconds=90),
        "naive": dt.datetime(2026, 1, 2, 3, 4, 5),
        "offset": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "bytes": b"raw",
        "set": (1, 2),
        "empty": {},
    }
    ours, theirs = both(data)
    assert ours == theirs


def test_what_orjson_cannot_write_falls_back_to_drf():
    assert both({"huge": 2**70})[0] == b'{"huge":1180591620717411303424}'
    ours, theirs = both({"a": [1, {"b": MOMENT}]}, "application/json; indent=4")
    assert ours == theirs and b"\n    " in ours
    assert JSONRenderer().render(None) == b""
