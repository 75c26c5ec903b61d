"""The few SQLAlchemy Core constructs that differ between SQLite and PostgreSQL.

A list of ids travels as **one** bound parameter, whatever its length: a JSON array read
with ``json_each`` on SQLite, a ``text[]`` array on PostgreSQL. Statements stay one cached
compiled form (no ``IN (?, ?, ...)`` expansion, no chunking under SQLite's parameter limit)
and the database, not Python, walks the list: bulk inserts are ``INSERT ... SELECT`` over
it.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["id_rows", "among", "insert_items", "upsert", "string_agg"]


def _array(values: list[str], dialect: str):
    if dialect == "postgresql":
        return sa.bindparam("ids", list(values), type_=postgresql.ARRAY(sa.Text), unique=True)
    return sa.bindparam("ids", json.dumps(list(values), ensure_ascii=False), type_=sa.Text,
                        unique=True)


def id_rows(values: list[str], dialect: str):
    """Return a one-column (``value``) table of ``values``, in their order."""
    if dialect == "postgresql":
        return sa.func.unnest(_array(values, dialect)).table_valued("value").render_derived()
    return sa.func.json_each(_array(values, dialect)).table_valued("value")


def among(column, values: list[str], dialect: str):
    """Return the condition ``column`` is one of ``values`` (index-friendly on both)."""
    if dialect == "postgresql":
        return column == sa.any_(_array(values, dialect))
    return column.in_(sa.select(id_rows(values, dialect).c.value))


def insert_items(table: sa.Table, item_ids: list[str], dialect: str, *, insert=None,
                 **values):
    """Return ``INSERT INTO table (item_id, ...) SELECT`` one row per item id.

    Parameters
    ----------
    table : sqlalchemy.Table
        A table with an ``item_id`` column.
    item_ids : list of str
        The items, in the order of their rows.
    dialect : {'sqlite', 'postgresql'}
    insert : Insert, optional
        The ``INSERT`` construct to use (default ``sa.insert(table)``; :func:`upsert` for
        one that can take ``on_conflict_do_update``).
    **values
        The other columns: the same value on every row.
    """
    items = id_rows(item_ids, dialect)
    rows = sa.select(items.c.value, *(sa.literal(v, table.c[name].type)
                                      for name, v in values.items()))
    if dialect == "sqlite":  # "SELECT ... FROM t ON CONFLICT" would parse ON as a join
        rows = rows.where(sa.true())
    return (sa.insert(table) if insert is None else insert).from_select(
        ["item_id", *values], rows)


def upsert(table: sa.Table, dialect: str):
    """Return the dialect's ``INSERT`` for ``table`` (with ``on_conflict_do_update``)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def string_agg(column, separator: str, dialect: str):
    """Return the aggregate joining ``column`` (as text) with ``separator`` (one character).

    The separator is written into the SQL as a constant (SQLite's ``group_concat`` is ~40%
    slower with a bound separator, or any other than its default ``,``).
    """
    if dialect == "postgresql":
        return sa.func.string_agg(sa.cast(column, sa.Text), sa.func.chr(ord(separator)))
    if separator == ",":
        return sa.func.group_concat(column)
    return sa.func.group_concat(column, sa.func.char(ord(separator)))
