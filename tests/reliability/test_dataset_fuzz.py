"""Property-based fuzzing of :meth:`recommender.dataset.Dataset.load`.

Every example copies a small valid dataset, damages the copy in one way (a column of the
wrong type, a missing or extra column, an out-of-range id, NaN or infinity, a huge or
invalid string, a truncated or garbled file, a corrupted manifest, a wrong checksum) and
loads it. The promise under test: load either succeeds — and then returns exactly what was
written — or raises exactly :class:`~recommender.errors.DatasetError`, whose message starts
with ``table.column:`` (or ``table:`` and names the file, for damage to a whole file).
Any other exception fails the example.

The runs are deterministic (``derandomize=True``, no example database) and bounded.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.dataset import GROUND_TRUTH_DIR, MANIFEST, Dataset
from recommender.errors import DatasetError
from recommender.schema import TABLES, Column

EXAMPLES = 40
"""Examples per property; ``EXAMPLES * len(PROPERTIES)`` datasets are loaded in all."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

COLUMNS: list[tuple[str, Column]] = [(t.name, c) for t in TABLES.values() for c in t.columns]
KEPT_GROUND_TRUTH = ("user_interests", "product_appeal")


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def base(tiny_saved: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` preset with follows and interactions cut to their first rows.

    Cutting rows of tables that only reference others keeps every key valid, and makes
    one load take a few milliseconds instead of a hundred, so the fuzzing tries more cases.
    """
    tiny = Dataset.load(tiny_saved)
    small = dataclasses.replace(
        tiny,
        follows=tiny.follows.iloc[:1500].reset_index(drop=True),
        interactions=tiny.interactions.iloc[:3000].reset_index(drop=True),
        ground_truth={name: tiny.ground_truth[name] for name in KEPT_GROUND_TRUTH},
    )
    return small.save(tmp_path_factory.mktemp("fuzz") / "base")


@contextmanager
def _copy(base: Path) -> Iterator[Path]:
    """A fresh copy of ``base`` for one example (no function-scoped fixtures in @given)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        yield Path(shutil.copytree(base, Path(tmp) / "dataset"))


def _rows(base: Path, table: str) -> int:
    return json.loads((base / MANIFEST).read_text(encoding="utf-8"))["row_counts"][table]


# ----------------------------------------------------------------------- damage
def _reseal(root: Path, rel: str) -> None:
    """Record the current SHA-256 of ``rel``, so only the content checks can catch it."""
    file = root / MANIFEST
    manifest = json.loads(file.read_text(encoding="utf-8"))
    manifest["files"][rel]["sha256"] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
    file.write_text(json.dumps(manifest), encoding="utf-8")


def _rewrite(root: Path, table: str, edit: Callable[[pa.Table], pa.Table]) -> None:
    file = root / f"{table}.parquet"
    pq.write_table(edit(pq.read_table(file)), file)
    _reseal(root, file.name)


def _set_column(name: str, array: pa.Array) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(name)
        return table.set_column(index, pa.field(name, array.type), array)

    return edit


def _set_cell(name: str, row: int, value: Any, type_: pa.DataType | None = None) -> Callable:
    def edit(table: pa.Table) -> pa.Table:
        values = table.column(name).to_pylist()
        values[row] = value
        return _set_column(name, pa.array(values, type_ or table.schema.field(name).type))(table)

    return edit


# ---------------------------------------------------------------------- encodings
def _typed(type_: pa.DataType) -> Callable[[list], pa.Array]:
    return lambda values: pa.array(values, type_)


def _invalid_utf8(values: list[bytes]) -> pa.Array:
    """A string column holding bytes that are not UTF-8 (Arrow does not check on write)."""
    return pa.array([b"\xff" + v for v in values], pa.binary()).view(pa.string())


def _unknown_time_zone(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="Mars/Olympus_Mons"))


# name -> (strategy for the values, builder of the Arrow array)
ENCODINGS: dict[str, tuple[st.SearchStrategy, Callable[[list], pa.Array]]] = {
    "int64": (st.integers(-(2**63), 2**63 - 1), _typed(pa.int64())),
    "uint64": (st.integers(0, 2**64 - 1), _typed(pa.uint64())),
    "float64": (st.floats(), _typed(pa.float64())),
    "bool": (st.booleans(), _typed(pa.bool_())),
    "string": (st.text(max_size=20), _typed(pa.string())),
    "binary": (st.binary(max_size=20), _typed(pa.binary())),
    "invalid utf-8": (st.binary(max_size=8), _invalid_utf8),
    "timestamp utc": (
        st.datetimes(timezones=st.just(UTC)),
        _typed(pa.timestamp("us", tz="UTC")),
    ),
    "timestamp naive": (st.datetimes(), _typed(pa.timestamp("us"))),
    "timestamp unknown zone": (st.integers(0, 2**50), _unknown_time_zone),
    "date32": (st.dates(), _typed(pa.date32())),
    "time64": (st.times(), _typed(pa.time64("us"))),
    "duration": (st.integers(-(2**63) + 1, 2**63 - 1), _typed(pa.duration("us"))),
    "decimal": (
        st.decimals(min_value=-(10**19), max_value=10**19, places=0),
        _typed(pa.decimal128(20, 0)),
    ),
    "null": (st.none(), _typed(pa.null())),
    "list<int64>": (st.lists(st.integers(-5, 5), max_size=3), _typed(pa.list_(pa.int64()))),
    "list<string>": (st.lists(st.text(max_size=5), max_size=3), _typed(pa.list_(pa.string()))),
    "list<float64>": (st.lists(st.floats(), max_size=3), _typed(pa.list_(pa.float64()))),
    "list<list<int64>>": (
        st.lists(st.lists(st.integers(0, 9), max_size=2), max_size=2),
        _typed(pa.list_(pa.list_(pa.int64()))),
    ),
    "struct": (
        st.fixed_dictionaries({"a": st.integers(-5, 5)}),
        _typed(pa.struct([("a", pa.int64())])),
    ),
    "map": (
        st.lists(st.tuples(st.text(max_size=3), st.integers(0, 9)), max_size=2),
        _typed(pa.map_(pa.string(), pa.int64())),
    ),
    "dictionary<string>": (
        st.text(max_size=5),
        lambda values: pa.array(values, pa.string()).dictionary_encode(),
    ),
    "dictionary<int64>": (
        st.integers(0, 9),
        lambda values: pa.array(values, pa.int64()).dictionary_encode(),
    ),
}

INVALID_ENCODINGS = {"invalid utf-8", "timestamp unknown zone"}
"""Values no column may hold: bytes that are not UTF-8, a time zone nobody knows."""

WRONG_TYPES: dict[str, list[str]] = {
    "int": [
        "float64", "bool", "string", "binary", "timestamp utc", "date32", "duration",
        "decimal", "null", "list<int64>", "struct", "dictionary<string>",
    ],
    "float": [
        "bool", "string", "binary", "timestamp utc", "decimal", "null", "list<float64>",
        "duration", "struct",
    ],
    "bool": ["int64", "float64", "string", "binary", "null"],
    "str": [
        "int64", "float64", "bool", "binary", "timestamp utc", "null", "list<string>",
        "dictionary<int64>",
    ],
    "ts": ["int64", "float64", "string", "timestamp naive", "date32", "time64", "null"],
    "list_str": ["string", "int64", "null", "list<int64>", "struct", "map"],
    "list_int": ["string", "int64", "null", "list<string>", "list<float64>", "list<list<int64>>"],
}  # fmt: skip


def _column_of(data: st.DataObject, encoding: str, rows: int) -> pa.Array:
    """A column of ``rows`` values of ``encoding``, repeating a few drawn values."""
    values_strategy, build = ENCODINGS[encoding]
    values = data.draw(st.lists(values_strategy, min_size=1, max_size=4), label=encoding)
    return build([values[i % len(values)] for i in range(rows)])


# ----------------------------------------------------------------------- outcomes
def _load(root: Path, *, validate: bool = True) -> Dataset | DatasetError:
    """Load ``root``; a DatasetError is returned, any other exception fails the example."""
    try:
        return Dataset.load(root, validate=validate)
    except DatasetError as exc:
        assert type(exc) is DatasetError
        return exc


def _error(root: Path, *, validate: bool = True) -> DatasetError:
    outcome = _load(root, validate=validate)
    assert isinstance(outcome, DatasetError), "the damaged dataset loaded without an error"
    return outcome


def _assert_names_column(error: DatasetError, table: str, column: str) -> None:
    assert (error.table, error.column) == (table, column), str(error)
    assert str(error).startswith(f"{table}.{column}: "), str(error)


def _assert_names_file(error: DatasetError, rel: str) -> None:
    table = "manifest" if rel == MANIFEST else rel.removesuffix(".parquet")
    assert (error.table, error.column) == (table, None), str(error)
    assert str(error).startswith(f"{table}: "), str(error)
    assert Path(rel).name in str(error), str(error)


def _assert_named(error: DatasetError) -> None:
    """Whatever the cause: the message starts with the table (and column) it is about."""
    assert error.table, str(error)
    if error.column is None:
        assert str(error).startswith(f"{error.table}: "), str(error)
        return
    assert error.table in TABLES, str(error)
    assert set(error.column.split("/")) <= set(TABLES[error.table].column_names), str(error)
    assert str(error).startswith(f"{error.table}.{error.column}: "), str(error)


def _referencing(table: str, column: str) -> set[tuple[str, str]]:
    """The (table, column) pairs that are foreign keys to ``table.column``."""
    return {
        (spec.name, name)
        for spec in TABLES.values()
        for name, ref in spec.foreign_keys.items()
        if ref == (table, column)
    }


def _cell(dataset: Dataset, table: str, column: str, row: int) -> Any:
    value = dataset.table(table)[column].iloc[row]
    return value.tolist() if isinstance(value, np.ndarray) else value


# --------------------------------------------------------------------- properties
@FUZZ
@given(data=st.data())
def test_a_column_of_the_wrong_type_is_named(base: Path, data: st.DataObject) -> None:
    table, column = data.draw(st.sampled_from(COLUMNS), label="column")
    encoding = data.draw(st.sampled_from(WRONG_TYPES[column.kind]), label="encoding")
    validate = data.draw(st.booleans(), label="validate")
    with _copy(base) as root:
        _rewrite(
            root, table, _set_column(column.name, _column_of(data, encoding, _rows(base, table)))
        )
        error = _error(root, validate=validate)

    _assert_names_column(error, table, column.name)


ID_COLUMNS = [(table, column) for table, column in COLUMNS if column.kind == "int"]


@st.composite
def _beyond_int64(draw: st.DrawFn) -> tuple[Any, pa.DataType]:
    """An id of 2**63 or more, written as uint64, as a string, as a float or as a decimal."""
    value = draw(st.integers(2**63, 2**64 - 1))
    return draw(
        st.sampled_from(
            [
                (value, pa.uint64()),
                (str(value), pa.string()),
                (float(value), pa.float64()),
                (decimal.Decimal(value), pa.decimal128(38, 0)),
            ]
        )
    )


@FUZZ
@given(data=st.data())
def test_an_id_out_of_range_is_named(base: Path, data: st.DataObject) -> None:
    table, column = data.draw(st.sampled_from(ID_COLUMNS), label="column")
    row = data.draw(st.integers(0, _rows(base, table) - 1), label="row")
    kind = data.draw(st.sampled_from(["negative", "beyond int32", "beyond int64"]), label="kind")
    if kind == "negative":
        value, type_ = data.draw(st.integers(-(2**63), -1), label="value"), None
    elif kind == "beyond int32":
        value, type_ = data.draw(st.integers(2**31, 2**63 - 1), label="value"), None
    else:
        value, type_ = data.draw(_beyond_int64(), label="value")
    with _copy(base) as root:
        _rewrite(root, table, _set_cell(column.name, row, value, type_))
        outcome = _load(root)

    if kind != "beyond int32" or column.allowed or column.name in TABLES[table].foreign_keys:
        assert isinstance(outcome, DatasetError), "loaded without an error"
        _assert_names_column(outcome, table, column.name)
    elif isinstance(outcome, DatasetError):  # a key others refer to: they now dangle
        assert (outcome.table, outcome.column) in _referencing(table, column.name), str(outcome)
        _assert_named(outcome)
    else:  # an id nothing refers to keeps its exact int64 value
        assert _cell(outcome, table, column.name, row) == value


@FUZZ
@given(
    row=st.integers(0, 1499),
    price=st.floats() | st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324]),
)
def test_nan_and_infinity_in_a_numeric_column(base: Path, row: int, price: float) -> None:
    with _copy(base) as root:
        _rewrite(root, "products", _set_cell("price", row, price))
        outcome = _load(root)

    if np.isinf(price) or price < 0:
        assert isinstance(outcome, DatasetError), "loaded without an error"
        _assert_names_column(outcome, "products", "price")
    elif np.isnan(price):  # NaN is how pandas spells a missing price: allowed
        assert np.isnan(_cell(outcome, "products", "price", row))
    else:
        assert _cell(outcome, "products", "price", row) == price


@FUZZ
@given(data=st.data())
def test_missing_duplicate_and_extra_columns(base: Path, data: st.DataObject) -> None:
    table = data.draw(st.sampled_from(list(TABLES)), label="table")
    names = TABLES[table].column_names
    dropped = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=3), label="drop")
    kept = [name for name in names if name not in dropped]
    duplicate = data.draw(st.none() | st.sampled_from(kept or [None]), label="duplicate")
    extras = data.draw(
        st.dictionaries(
            st.text(max_size=12).filter(lambda name: name not in names)
            | st.sampled_from(["", "__index_level_0__", "None", "user_id.1"]),
            st.sampled_from(sorted(ENCODINGS)),
            max_size=3,
        ),
        label="extras",
    )
    rows = _rows(base, table)
    columns = {name: _column_of(data, encoding, rows) for name, encoding in extras.items()}

    def edit(arrow: pa.Table) -> pa.Table:
        arrow = arrow.drop_columns(dropped)
        if duplicate is not None:
            arrow = arrow.append_column(duplicate, arrow.column(duplicate))
        for name, array in columns.items():
            arrow = arrow.append_column(name, array)
        return arrow

    with _copy(base) as root:
        _rewrite(root, table, edit)
        outcome = _load(root)

    # Extra columns may have any type, but their values must be valid and convertible.
    invalid = {name for name, encoding in extras.items() if encoding in INVALID_ENCODINGS}
    if dropped or duplicate is not None or invalid:
        assert isinstance(outcome, DatasetError), "loaded without an error"
        assert outcome.table == table, str(outcome)
        assert outcome.column in {*dropped, duplicate, *invalid}, str(outcome)
        assert str(outcome).startswith(f"{table}.{outcome.column}: "), str(outcome)
    else:
        assert not isinstance(outcome, DatasetError), str(outcome)
        before = pq.read_schema(base / f"{table}.parquet").names
        assert list(outcome.table(table).columns) == before + list(extras)


STRING_COLUMNS = [(t, c) for t, c in COLUMNS if c.kind in ("str", "list_str")]
ODD_STRINGS = st.sampled_from(["", " ", "\x00", "\u202e", "NaN", "None", "null", "#", "/"])
HUGE_STRINGS = st.builds(
    lambda unit, times: unit * times,
    st.text(min_size=1, max_size=4),
    st.integers(10_000, 1_000_000),
)


@FUZZ
@given(data=st.data())
def test_huge_odd_and_invalid_strings(base: Path, data: st.DataObject) -> None:
    table, column = data.draw(st.sampled_from(STRING_COLUMNS), label="column")
    row = data.draw(st.integers(0, _rows(base, table) - 1), label="row")
    invalid = column.kind == "str" and data.draw(st.booleans(), label="invalid utf-8")
    text = data.draw(st.text() | ODD_STRINGS | HUGE_STRINGS, label="text")
    value = [text] if column.kind == "list_str" else text

    def edit(arrow: pa.Table) -> pa.Table:
        if not invalid:
            return _set_cell(column.name, row, value)(arrow)
        values = [v.encode() if isinstance(v, str) else v for v in arrow[column.name].to_pylist()]
        values[row] = b"\xc3\x28" + text.encode()  # an unfinished two-byte sequence
        return _set_column(column.name, pa.array(values, pa.binary()).view(pa.string()))(arrow)

    with _copy(base) as root:
        _rewrite(root, table, edit)
        outcome = _load(root)

    if invalid or (column.allowed and text not in column.allowed):
        assert isinstance(outcome, DatasetError), "loaded without an error"
        _assert_names_column(outcome, table, column.name)
    else:
        assert not isinstance(outcome, DatasetError), str(outcome)
        assert _cell(outcome, table, column.name, row) == value


def _files(base: Path) -> list[str]:
    """Every file of the dataset, relative to its root, manifest included."""
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


def _damage(file: Path, how: str, data: st.DataObject) -> None:
    size = file.stat().st_size
    if how == "truncate":  # keep a proper prefix (for JSON: lose at least the last brace)
        file.write_bytes(file.read_bytes()[: data.draw(st.integers(0, size - 2), label="keep")])
    elif how == "flip":
        raw = bytearray(file.read_bytes())
        for at in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=8), label="at"):
            raw[at] ^= data.draw(st.integers(1, 255), label="xor")
        file.write_bytes(bytes(raw))
    elif how == "garbage":
        file.write_bytes(data.draw(st.binary(max_size=4096), label="garbage"))
    elif how == "directory":
        file.unlink()
        file.mkdir()
    elif how == "delete":
        file.unlink()


@FUZZ
@given(data=st.data())
def test_a_damaged_file_is_named(base: Path, data: st.DataObject) -> None:
    rel = data.draw(st.sampled_from(_files(base)), label="file")
    how = data.draw(
        st.sampled_from(["truncate", "flip", "garbage", "directory", "delete"]), label="damage"
    )
    resealed = (
        how in ("truncate", "flip", "garbage")
        and rel != MANIFEST
        and data.draw(st.booleans(), label="resealed")
    )
    validate = data.draw(st.booleans(), label="validate")
    with _copy(base) as root:
        _damage(root / rel, how, data)
        if resealed:
            _reseal(root, rel)
        outcome = _load(root, validate=validate)

    whole_file = how in ("truncate", "garbage", "directory")  # no Parquet or JSON is left
    if rel == MANIFEST and how != "flip":
        assert isinstance(outcome, DatasetError), "loaded without an error"
        _assert_names_file(outcome, rel)
    elif validate and not resealed and how != "delete" or whole_file:
        # The checksum catches any change; without it the reader must notice on its own.
        assert isinstance(outcome, DatasetError), "loaded without an error"
        _assert_names_file(outcome, rel)
    elif how == "delete" and (validate or not rel.startswith(GROUND_TRUTH_DIR)):
        assert isinstance(outcome, DatasetError), "loaded without an error"
        assert outcome.column is None and Path(rel).name in str(outcome), str(outcome)
        _assert_named(outcome)
    elif isinstance(outcome, DatasetError):  # bytes flipped under a fresh checksum
        _assert_named(outcome)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TIMESTAMPS = st.sampled_from(
    ["2026-13-45", "99999-01-01", "0001-01-01", "2026-03-01T00:00:00+99:00", "NaT", "now", ""]
) | st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat)


@st.composite
def _manifest_edit(draw: st.DrawFn, manifest: dict[str, Any]) -> tuple[tuple, Any]:
    """A path of keys into the manifest and a new value for it (``...`` deletes it)."""
    rel = draw(st.sampled_from(sorted(manifest["files"])))
    path = draw(
        st.sampled_from(
            [
                ("schema_version",),
                ("files",),
                ("files", rel),
                ("files", rel, "sha256"),
                ("files", rel, "rows"),
                ("files", draw(st.text(max_size=300))),
                ("time_span",),
                ("time_span", "start"),
                ("time_span", "end"),
                ("row_counts",),
                ("config",),
                ("seed",),
            ]
        )
    )
    value = draw(st.just(...) | JSON | (TIMESTAMPS if path[0] == "time_span" else JSON))
    return path, value


def _apply(manifest: dict[str, Any], path: tuple, value: Any) -> None:
    *parents, last = path
    for key in parents:
        if not isinstance(manifest.get(key), dict):
            manifest[key] = {}
        manifest = manifest[key]
    if value is ...:
        manifest.pop(last, None)
    else:
        manifest[last] = value


@FUZZ
@given(data=st.data())
def test_a_corrupted_manifest_is_named(base: Path, data: st.DataObject) -> None:
    manifest = json.loads((base / MANIFEST).read_text(encoding="utf-8"))
    how = data.draw(st.sampled_from(["edit", "replace", "nest", "bytes"]), label="how")
    if how == "edit":
        path, value = data.draw(_manifest_edit(manifest), label="edit")
        _apply(manifest, path, value)
        text = json.dumps(manifest).encode()  # NaN and Infinity too, as Python writes them
    elif how == "replace":
        text = json.dumps(data.draw(JSON, label="manifest")).encode()
    elif how == "nest":
        depth = data.draw(st.integers(1, 200_000), label="depth")
        text = ("[" * depth + "]" * depth).encode()
    else:
        text = data.draw(st.binary(max_size=200), label="bytes")
    validate = data.draw(st.booleans(), label="validate")
    with _copy(base) as root:
        (root / MANIFEST).write_bytes(text)
        outcome = _load(root, validate=validate)

    if how != "edit" and validate:
        assert isinstance(outcome, DatasetError), "loaded without an error"
    if isinstance(outcome, DatasetError):
        _assert_named(outcome)
        if outcome.table == "manifest":
            assert MANIFEST in str(outcome) or "schema_version" in str(outcome), str(outcome)
        else:
            assert outcome.column is not None or ".parquet" in str(outcome), str(outcome)


@FUZZ
@given(data=st.data())
def test_a_wrong_checksum_names_the_file(base: Path, data: st.DataObject) -> None:
    manifest = json.loads((base / MANIFEST).read_text(encoding="utf-8"))
    rel = data.draw(st.sampled_from(sorted(manifest["files"])), label="file")
    right = manifest["files"][rel]["sha256"]
    wrong = data.draw(
        st.sampled_from([right.upper(), right[:-1], right + "0", "", f"sha256:{right}"])
        | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).filter(
            lambda digest: digest != right
        )
        | st.just(...),
        label="sha256",
    )
    if wrong is ...:  # unlisted: a file added after saving
        del manifest["files"][rel]
    else:
        manifest["files"][rel]["sha256"] = wrong
    with _copy(base) as root:
        (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        error = _error(root)

    _assert_names_file(error, rel)
    assert ("is not listed" if wrong is ... else "does not match its SHA-256") in str(error)
