"""Errors shared by the whole library."""

from __future__ import annotations

from collections.abc import Sequence


class DatasetError(ValueError):
    """A dataset breaks the contract.

    The message names the table, the column and a few offending rows, e.g.
    ``follows.follower_id: 2 rows name an unknown users.user_id (rows 5: 999, 8: 1001)``.

    Attributes
    ----------
    table, column : str or None
        Where the problem is.
    rows : list of int
        Positions (0-based row numbers) of up to a few offending rows.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        rows: Sequence[int] = (),
    ) -> None:
        self.table = table
        self.column = column
        self.rows = [int(r) for r in rows]
        where = ".".join(p for p in (table, column) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)


class UnknownIdError(LookupError):
    """A user, product or group id that the model or dataset does not know."""

    def __init__(self, kind: str, ids: Sequence[int] | int) -> None:
        ids = [ids] if isinstance(ids, int) else list(ids)
        self.kind = kind
        self.ids = ids
        shown = ", ".join(str(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
        super().__init__(f"unknown {kind} id{'s' if len(ids) > 1 else ''}: {shown}")

    def __reduce__(self) -> tuple:
        # The default rebuilds from ``self.args`` (the message), which does not fit __init__;
        # errors raised in worker processes (Dask, multiprocessing) must survive pickling.
        return type(self), (self.kind, self.ids)
