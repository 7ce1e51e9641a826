"""Model instances from rows of constant SQL, as the ORM would make them (docs/performance.md).

On the hot paths of step actions and scans, building a query through the ORM
cost more than running it. Statements that never change are written once;
their rows become instances through Django's own converters and
``Model.from_db``. Shared by the apps (execution's step reads, the materials
container lock), so it sits below all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


class Reader(Generic[M]):
    """Instances of ``model`` from rows whose columns (from ``offset``) are :meth:`columns`."""

    def __init__(self, model: type[M], *, defer: Sequence[str] = ()) -> None:
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.name not in defer]
        self.names = [f.attname for f in self.fields]
        self._converters: dict[str, list[tuple[Any, list[Callable[..., Any]]]]] = {}

    def columns(self, alias: str) -> str:
        qn = connection.ops.quote_name
        return ", ".join(f"{alias}.{qn(f.column)}" for f in self.fields)

    def instance(self, row: Sequence[Any], offset: int = 0) -> M:
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = []
            for f in self.fields:
                col = f.get_col(self.model._meta.db_table)
                converters.append(
                    (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
                )
            self._converters[connection.vendor] = converters
        values = []
        for value, (col, funcs) in zip(row[offset : offset + len(self.fields)], converters, strict=True):
            for convert in funcs:
                value = convert(value, col, connection)
            values.append(value)
        return self.model.from_db(connection.alias, self.names, values)
