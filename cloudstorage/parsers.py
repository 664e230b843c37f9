"""The API's JSON parser: DRF's, with a body nested too deeply for the decoder a 400 as well.

Python's json decoder recurses once per level of nesting; a body of 100,000 "[" ran out of stack
(RecursionError), which DRF's parser does not catch (it turns only ValueError into a ParseError),
so the request was a 500.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
