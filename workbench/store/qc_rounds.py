"""QC rounds: a batch of items, each to be labeled by several annotators, gold mixed in.

A round is written once (``qc_rounds`` row plus one ``qc_round_items`` row per item and
annotator slot) and never changed: planning a new round is a new row.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from ..errors import SchemaError
from .frames import now_us, rows_frame
from .part import StorePart
from .validation import MAX_AUTHOR_LENGTH, check_known_ids, context_json, normalize_text

__all__ = ["QcRounds", "ROUND_ITEM_COLUMNS"]

#: Columns of the ``items`` frame :meth:`QcRounds.create` takes and :meth:`QcRounds.items`
#: returns (plus ``round_id``).
ROUND_ITEM_COLUMNS = ["item_id", "slot", "annotator_slot", "is_gold"]


class QcRounds(StorePart):
    """Record and read QC rounds (``store.qc_rounds``).

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).
    known : KnownIds or None
        The project's item ids; rounds naming others are refused. None accepts any id.

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.tags import TagStore
    >>> store = TagStore("sqlite://")
    >>> plan = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "slot": [0, 0, 1, 1],
    ...                      "annotator_slot": [0, 1, 0, 1], "is_gold": [False] * 2 + [True] * 2})
    >>> store.qc_rounds.create("round 1", plan, author="lead", params={"overlap": 2})
    1
    >>> store.qc_rounds.items(1)["is_gold"].tolist()
    [False, False, True, True]
    """

    def create(self, name: str, items: pd.DataFrame, *, author: str,
               params: dict | None = None) -> int:
        """Record a round and its items in one transaction; return its ``round_id``.

        Parameters
        ----------
        name : str
            The round's name.
        items : DataFrame
            ``item_id``, ``slot`` (the item's position in the batch), ``annotator_slot``
            (0 .. overlap-1), ``is_gold`` (bool); (item_id, annotator_slot) unique.
        author : str
            Who plans it.
        params : dict, optional
            How it was planned (n, overlap, gold share, focus, seed...), stored as JSON.

        Raises
        ------
        SchemaError
            Missing columns, no rows, duplicate (item, annotator slot), unknown items;
            nothing is written.
        """
        func = "TagStore.qc_rounds.create"
        name = normalize_text(name, "name", func, 200, required=True, allow_newlines=False)
        author = normalize_text(author, "author", func, MAX_AUTHOR_LENGTH, required=True,
                                allow_newlines=False)
        payload = context_json(params, func)
        if not isinstance(items, pd.DataFrame):
            raise TypeError(f"The 'items' parameter of {func} must be a DataFrame. Got "
                            f"{type(items).__name__} instead.")
        missing = [c for c in ROUND_ITEM_COLUMNS if c not in items.columns]
        if missing:
            raise SchemaError(f"{func}: items lacks the column(s) {missing}; it needs "
                              f"{ROUND_ITEM_COLUMNS}. Nothing was written.")
        if items.empty:
            raise SchemaError(f"{func}: items has no rows. Plan at least one item.")
        rows = items[ROUND_ITEM_COLUMNS].astype({"item_id": str})
        dup = rows.duplicated(["item_id", "annotator_slot"])
        if dup.any():
            first = rows[dup].iloc[0]
            raise SchemaError(f"{func}: item {first['item_id']!r} appears twice in annotator "
                              f"slot {int(first['annotator_slot'])}. Nothing was written.")
        check_known_ids(list(dict.fromkeys(rows["item_id"])), self.known, func)
        records = [{"item_id": i, "slot": int(s), "annotator_slot": int(a),
                    "is_gold": bool(g)} for i, s, a, g in rows.itertuples(index=False)]
        r, ri = self.tables.qc_rounds, self.tables.qc_round_items

        def write(conn) -> int:
            round_id = conn.execute(sa.insert(r).values(
                name=name, author=author, created_at=now_us(), params=payload
            ).returning(r.c.round_id)).scalar_one()
            conn.execute(sa.insert(ri), [{**rec, "round_id": round_id} for rec in records])
            return int(round_id)

        return self.engine.write(write, doing="record a QC round in")

    def frame(self) -> pd.DataFrame:
        """Return the rounds, oldest first.

        Returns
        -------
        DataFrame
            ``round_id``, ``name``, ``author``, ``created_at`` (UTC), ``params`` (dict),
            ``n_items``, ``n_gold`` (distinct items).
        """
        r, ri = self.tables.qc_rounds, self.tables.qc_round_items
        counts = sa.select(
            ri.c.round_id, sa.func.count(sa.distinct(ri.c.item_id)).label("n"),
            sa.func.count(sa.distinct(sa.case((ri.c.is_gold, ri.c.item_id)))).label("g"),
        ).group_by(ri.c.round_id).subquery()
        q = sa.select(r.c.round_id, r.c.name, r.c.author, r.c.created_at, r.c.params,
                      counts.c.n, counts.c.g).join_from(
            r, counts, r.c.round_id == counts.c.round_id, isouter=True
        ).order_by(r.c.round_id)
        rows = self.engine.read(lambda conn: conn.execute(q).all())
        return rows_frame(rows, {"round_id": "int", "name": "str", "author": "str",
                                 "created_at": "time", "params": "json", "n_items": "count",
                                 "n_gold": "count"})

    def items(self, round_id: int) -> pd.DataFrame:
        """Return a round's items (``round_id`` and :data:`ROUND_ITEM_COLUMNS`), by slot.

        Raises
        ------
        SchemaError
            No round has this id.
        """
        ri = self.tables.qc_round_items
        q = sa.select(ri.c.round_id, *(ri.c[c] for c in ROUND_ITEM_COLUMNS)).where(
            ri.c.round_id == int(round_id)).order_by(ri.c.slot, ri.c.annotator_slot)
        rows = self.engine.read(lambda conn: conn.execute(q).all())
        if not rows:
            known = self.frame()["round_id"].tolist()
            raise SchemaError(f"No QC round {round_id!r} in the store; known rounds: "
                              f"{known}.")
        return rows_frame(rows, {"round_id": "int", "item_id": "str", "slot": "int",
                                 "annotator_slot": "int", "is_gold": "bool"})
