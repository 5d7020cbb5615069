"""Validation of dataset tables against the contract in :mod:`recommender.schema`.

Every check is vectorised (sorting and table look-ups, no Python loops over rows), so a
``medium`` dataset of millions of rows validates in seconds. Each failure raises
:class:`~recommender.errors.DatasetError` naming the table, the column and a few rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import DatasetError
from recommender.schema import TABLES, TIMESTAMP_COLUMNS, Column, Table

SHOWN_ROWS = 5


def validate_frames(
    frames: dict[str, pd.DataFrame], *, start: pd.Timestamp, end: pd.Timestamp
) -> None:
    """Validate every present table; raise :class:`DatasetError` at the first problem."""
    for name, spec in TABLES.items():
        frame = frames.get(name)
        if frame is None:
            if spec.required:
                raise DatasetError("required table is missing", table=name)
            continue
        _check_columns(frame, spec)
        _check_key(frame, spec)
    for name, spec in TABLES.items():
        frame = frames.get(name)
        if frame is None:
            continue
        for column, (ref_table, ref_column) in spec.foreign_keys.items():
            ref = frames.get(ref_table)
            if ref is None:
                raise DatasetError(
                    f"references table {ref_table!r}, which is missing", table=name, column=column
                )
            _check_foreign_key(
                frame, name, column, ref[ref_column].to_numpy(), ref_table, ref_column
            )
    follows = frames["follows"]
    _fail_rows(
        follows["follower_id"].to_numpy() == follows["followee_id"].to_numpy(),
        follows["follower_id"],
        "self-follow (follower_id == followee_id)",
        table="follows",
        column="followee_id",
    )
    _check_time_span(frames, start, end)


def _offending(mask: np.ndarray, values: pd.Series) -> str:
    rows = np.flatnonzero(mask)[:SHOWN_ROWS]
    shown = ", ".join(f"{int(r)}: {_shown(values.iloc[r])}" for r in rows)
    return f"(rows {shown}{', ...' if mask.sum() > SHOWN_ROWS else ''})"


def _shown(value: object) -> str:
    # str, not repr: numpy 2 reprs scalars as np.int64(999), and a Timestamp past year 9999
    # cannot be repr'd at all. Strings keep their quotes so '' and ' x' stay visible.
    return repr(value) if isinstance(value, str) else str(value)


def _fail_rows(mask: np.ndarray, values: pd.Series, what: str, *, table: str, column: str) -> None:
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        count = int(mask.sum())
        rows = np.flatnonzero(mask)[:SHOWN_ROWS]
        raise DatasetError(
            f"{count} row{'s' if count > 1 else ''} with {what} {_offending(mask, values)}",
            table=table,
            column=column,
            rows=rows,
        )


def _check_columns(frame: pd.DataFrame, spec: Table) -> None:
    for column in spec.columns:
        if column.name not in frame.columns:
            raise DatasetError("missing column", table=spec.name, column=column.name)
        values = frame[column.name]
        null = values.isna().to_numpy()
        if not column.nullable:
            _fail_rows(null, values, "a null value", table=spec.name, column=column.name)
        _check_dtype(values, spec.name, column)
        if column.kind == "int" and pd.api.types.is_float_dtype(values.dtype):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            _fail_rows(
                ~null & (arr != np.floor(arr)),
                values,
                "a non-integer value",
                table=spec.name,
                column=column.name,
            )
        if column.kind in ("float",):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            _fail_rows(
                np.isinf(arr), values, "an infinite value", table=spec.name, column=column.name
            )
        if column.minimum is not None:
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                below = arr < column.minimum
            _fail_rows(
                below,
                values,
                f"a value below the minimum {column.minimum:g}",
                table=spec.name,
                column=column.name,
            )
        if column.allowed is not None:
            bad = ~values.isin(column.allowed).to_numpy() & ~null
            _fail_rows(
                bad,
                values,
                f"a value not in {list(column.allowed)}",
                table=spec.name,
                column=column.name,
            )


def _check_dtype(values: pd.Series, table: str, column: Column) -> None:
    dtype = values.dtype
    ok = {
        "int": lambda: (
            pd.api.types.is_integer_dtype(dtype)
            or (column.nullable and pd.api.types.is_float_dtype(dtype))
        ),
        "float": lambda: pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype),
        "bool": lambda: pd.api.types.is_bool_dtype(dtype),
        "str": lambda: (
            pd.api.types.is_string_dtype(dtype)
            or pd.api.types.is_object_dtype(dtype)
            or (
                isinstance(dtype, pd.CategoricalDtype)
                and pd.api.types.is_string_dtype(dtype.categories.dtype)
            )
        ),
        "ts": lambda: (
            isinstance(dtype, pd.DatetimeTZDtype)
            or (hasattr(dtype, "pyarrow_dtype") and "timestamp" in str(dtype))
        ),
        "list_str": lambda: pd.api.types.is_object_dtype(dtype) or "list" in str(dtype),
        "list_int": lambda: pd.api.types.is_object_dtype(dtype) or "list" in str(dtype),
    }[column.kind]()
    if not ok:
        raise DatasetError(
            f"wrong type {dtype} for a {column.kind} column", table=table, column=column.name
        )


def _check_key(frame: pd.DataFrame, spec: Table) -> None:
    if not spec.key:
        return
    if len(spec.key) == 1:
        keys = frame[spec.key[0]].to_numpy(dtype=np.int64)
    else:
        a = frame[spec.key[0]].to_numpy(dtype=np.int64)
        b = frame[spec.key[1]].to_numpy(dtype=np.int64)
        width = int(b.max()) + 1 if len(b) else 1
        if len(a) and int(a.max()) < np.iinfo(np.int64).max // max(width, 1):
            keys = a * width + b
        else:  # ids too large to pack into one int64: fall back to pandas hashing
            dup = frame.duplicated(list(spec.key), keep="first").to_numpy()
            _report_duplicates(dup, frame, spec)
            return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup_sorted = np.zeros(len(keys), dtype=bool)
    dup_sorted[1:] = sorted_keys[1:] == sorted_keys[:-1]
    dup = np.zeros(len(keys), dtype=bool)
    dup[order] = dup_sorted
    _report_duplicates(dup, frame, spec)


def _report_duplicates(dup: np.ndarray, frame: pd.DataFrame, spec: Table) -> None:
    if dup.any():
        shown = frame[spec.key[0]]
        if len(spec.key) > 1:
            others = [frame[c].astype(str) for c in spec.key[1:]]
            shown = shown.astype(str).str.cat(others, sep="/")
        _fail_rows(dup, shown, "a duplicate key", table=spec.name, column="/".join(spec.key))


def _check_foreign_key(
    frame: pd.DataFrame,
    table: str,
    column: str,
    ref_values: np.ndarray,
    ref_table: str,
    ref_column: str,
) -> None:
    values = frame[column]
    present = values.notna().to_numpy()
    ids = values[present].to_numpy(dtype=np.int64)
    known = _isin(ids, ref_values.astype(np.int64))
    if known.all():
        return
    mask = np.zeros(len(values), dtype=bool)
    mask[np.flatnonzero(present)[~known]] = True
    _fail_rows(mask, values, f"an unknown {ref_table}.{ref_column}", table=table, column=column)


def _isin(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``np.isin`` that uses a look-up table when the reference ids are compact."""
    if len(values) == 0:
        return np.ones(0, dtype=bool)
    if len(reference) == 0:
        return np.zeros(len(values), dtype=bool)
    lo, hi = int(reference.min()), int(reference.max())
    if hi - lo <= 4 * len(reference) + 1_000_000:
        table = np.zeros(hi - lo + 1, dtype=bool)
        table[reference - lo] = True
        inside = (values >= lo) & (values <= hi)
        out = np.zeros(len(values), dtype=bool)
        out[inside] = table[values[inside] - lo]
        return out
    return np.isin(values, reference)


def _check_time_span(
    frames: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp
) -> None:
    # Compare as timestamps in each column's own unit: converting to datetime64[ns] first
    # overflows silently for dates after 2262 and can land them inside the span.
    lo = _as_utc(start)
    hi = _as_utc(end)
    for name, column in TIMESTAMP_COLUMNS.items():
        frame = frames.get(name)
        if frame is None:
            continue
        values = frame[column]
        _fail_rows(
            ((values < lo) | (values > hi)).to_numpy(dtype=bool),
            values,
            f"a timestamp outside the dataset's time span {lo.isoformat()} .. {hi.isoformat()}",
            table=name,
            column=column,
        )


def _as_utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
