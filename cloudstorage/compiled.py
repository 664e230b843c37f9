"""Querysets of a fixed shape compiled to SQL once per process, then run with new values.

Django builds and compiles every queryset anew: ``filter()``, ``annotate()`` and the compiler's
``as_sql()`` cost 0.3–0.9 ms of CPU per query here, more than PostgreSQL spends running it. A few
queries run on every request (the token, the node with the caller's role): :class:`CompiledQuery`
builds each of them once per database alias with stand-in values, finds where each stand-in went in
the compiled parameters, and later runs the same SQL with the real values, through Django's own
compiler (its converters, ``select_related`` populators and annotations), so what comes back is what
the queryset itself returns.

Only a shape whose SQL text does not depend on the values qualifies: equality lookups on a column
(``pk=``, ``token_hash=``, ``user=``), not ``__in`` with a list, nor a value that may be None
(``field=None`` compiles to ``IS NULL``).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Field, QuerySet


class CompiledQuery:
    """``CompiledQuery(build, token_hash=ApiToken._meta.get_field("token_hash"))``, then
    ``.first(token_hash=...)`` or ``.all(...)``.

    ``build(**values)`` returns the queryset (with its slice, if any); each keyword names the model
    field whose column the value is compared to, which prepares the value as the compiled query did.
    """

    def __init__(self, build: Callable[..., QuerySet], **fields: Field):
        self.build = build
        self.fields = fields
        self._templates: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _stand_in(self, field: Field) -> Any:
        internal = field.target_field.get_internal_type() if field.is_relation else field.get_internal_type()
        if internal == "UUIDField":
            return uuid.uuid4()
        if internal in ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "PositiveIntegerField"):
            return 1_000_000_000 + uuid.uuid4().int % 1_000_000_000
        if internal in ("CharField", "TextField"):
            return "stand-in-" + uuid.uuid4().hex
        if internal == "DateTimeField":
            return datetime(2001, 1, 1, tzinfo=UTC) + timedelta(microseconds=uuid.uuid4().int % 10**12)
        raise TypeError(f"CompiledQuery: no stand-in for a {internal}")

    def _template(self, alias: str) -> tuple:
        template = self._templates.get(alias)
        if template is not None:
            return template
        with self._lock:
            stand_ins = {name: self._stand_in(field) for name, field in self.fields.items()}
            queryset = self.build(**stand_ins).using(alias)
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            prepared = {name: self._prepare(alias, name, value) for name, value in stand_ins.items()}
            slots = []
            for param in params:
                names = [name for name, value in prepared.items() if value == param]
                slots.append(names[0] if names else None)
            for name in self.fields:
                if name not in slots:
                    raise ValueError(f"CompiledQuery: {name!r} is no parameter of {sql!r}")
            # The compiler as as_sql() left it (select, klass_info, annotations, col_count) serves
            # every later run; only its connection and parameters change.
            compiler.connection = None
            template = (queryset, compiler, sql, tuple(params), tuple(slots))
            self._templates[alias] = template
            return template

    def _prepare(self, alias: str, name: str, value: Any) -> Any:
        field = self.fields[name]
        target = field.target_field if field.is_relation else field
        if hasattr(value, "pk") and field.is_relation:
            value = value.pk
        return target.get_db_prep_value(value, connections[alias], prepared=False)

    def queryset(self, using: str = "default", **values: Any) -> QuerySet:
        """A queryset that runs the compiled SQL with ``values``; iterate it (don't chain it)."""
        queryset, template_compiler, sql, params, slots = self._template(using)
        if values.keys() != self.fields.keys():
            raise TypeError(f"CompiledQuery takes {sorted(self.fields)}, got {sorted(values)}")
        prepared = {name: self._prepare(using, name, value) for name, value in values.items()}
        run_params = tuple(param if slot is None else prepared[slot] for param, slot in zip(params, slots, strict=True))
        compiler = copy.copy(template_compiler)
        compiler.connection = connections[using]
        compiler.as_sql = lambda *args, **kwargs: (sql, run_params)
        query = copy.copy(queryset.query)
        query.get_compiler = lambda using=None, connection=None, elide_empty=True: compiler
        # Not copy.copy(): pickling support makes that evaluate the queryset.
        run = object.__new__(type(queryset))
        run.__dict__.update(queryset.__dict__, _result_cache=None, _prefetch_done=False, _query=query)
        return run

    def all(self, using: str = "default", **values: Any) -> list:
        return list(self.queryset(using, **values))

    def first(self, using: str = "default", **values: Any) -> Any:
        rows = self.all(using, **values)
        return rows[0] if rows else None
