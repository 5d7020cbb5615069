"""Tests for the dataset contract: :class:`recommender.dataset.Dataset` save/load, the checks
in :mod:`recommender.validation` and :class:`recommender.errors.DatasetError`.

Each bad dataset is made by saving the valid one, then rewriting one file on disk, so the
error comes from ``Dataset.load`` exactly as a user would meet it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.dataset import MANIFEST, Dataset
from recommender.errors import DatasetError, UnknownIdError
from recommender.schema import SCHEMA_VERSION
from tests.recommender.factories import END, START, make_valid_dataset

Edit = Callable[[pa.Table], pa.Table]

EXPECTED_FILES = {
    "users.parquet": 6,
    "follows.parquet": 7,
    "posts.parquet": 4,
    "products.parquet": 5,
    "interactions.parquet": 12,
    "groups.parquet": 2,
    "group_members.parquet": 5,
    "ground_truth/user_interests.parquet": 7,
}


@pytest.fixture
def dataset() -> Dataset:
    return make_valid_dataset()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The valid dataset, saved once per module; never modified."""
    return make_valid_dataset().save(tmp_path_factory.mktemp("pristine") / "dataset")


@pytest.fixture
def saved(tmp_path: Path, pristine: Path) -> Path:
    """A copy of the saved valid dataset at ``tmp_path / "dataset"``, free to break."""
    return Path(shutil.copytree(pristine, tmp_path / "dataset"))


# ---------------------------------------------------------------------- helpers
def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _edit_manifest(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    file = root / MANIFEST
    manifest = json.loads(file.read_text(encoding="utf-8"))
    edit(manifest)
    file.write_text(json.dumps(manifest), encoding="utf-8")


def _reseal(root: Path, rel: str) -> None:
    """Record the current SHA-256 of ``rel`` in the manifest, as if it had been saved so."""
    _edit_manifest(root, lambda manifest: manifest["files"][rel].update(sha256=_sha256(root / rel)))


def _rewrite(root: Path, table: str, edit: Edit, *, reseal: bool = True) -> None:
    """Rewrite ``table``'s Parquet file through ``edit``; reseal it so checksums still pass."""
    file = root / f"{table}.parquet"
    pq.write_table(edit(pq.read_table(file)), file)
    if reseal:
        _reseal(root, file.name)


def _replace(column: str, values: list, type_: pa.DataType | None = None) -> Edit:
    """An edit that replaces ``column`` by ``values`` (of the column's own type by default)."""

    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index(column)
        type_of = type_ or table.schema.field(column).type
        return table.set_column(index, column, pa.array(values, type_of))

    return edit


def _set(column: str, row: int, value: Any) -> Edit:
    """An edit that sets one cell."""

    def edit(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        values[row] = value
        return _replace(column, values)(table)

    return edit


def _append_copy_of_row(row: int) -> Edit:
    return lambda table: pa.concat_tables([table, table.slice(row, 1)])


def _load_error(root: Path, match: str, **kwargs: Any) -> DatasetError:
    """Load ``root``, expecting a :class:`DatasetError` whose message matches ``match``."""
    with pytest.raises(DatasetError, match=match) as info:
        Dataset.load(root, **kwargs)
    return info.value


# ------------------------------------------------------------------ round trip
def test_factory_dataset_is_valid(dataset: Dataset) -> None:
    assert dataset.validate() is dataset
    assert dataset.time_span == (START, END)


def test_round_trip_preserves_every_table(saved: Path, dataset: Dataset) -> None:
    loaded = Dataset.load(saved)

    for name, frame in dataset.tables():
        pd.testing.assert_frame_equal(loaded.table(name), frame, obj=name)
    assert loaded.ground_truth.keys() == dataset.ground_truth.keys()
    for name, frame in dataset.ground_truth.items():
        pd.testing.assert_frame_equal(loaded.ground_truth[name], frame, obj=name)


def test_round_trip_preserves_manifest(tmp_path: Path, dataset: Dataset) -> None:
    saved = dataset.save(tmp_path / "dataset")
    loaded = Dataset.load(saved)
    manifest = loaded.manifest

    assert manifest == json.loads((saved / MANIFEST).read_text(encoding="utf-8"))
    assert manifest == dataset.manifest
    for key, value in make_valid_dataset().manifest.items():
        assert manifest[key] == value
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["files"].keys() == EXPECTED_FILES.keys()
    assert manifest["row_counts"] == {
        rel.removesuffix(".parquet"): rows for rel, rows in EXPECTED_FILES.items()
    }
    for rel, meta in manifest["files"].items():
        assert meta == {"rows": EXPECTED_FILES[rel], "sha256": _sha256(saved / rel)}
    assert set(_snapshot(saved)) == {*EXPECTED_FILES, MANIFEST}
    assert loaded.checksum == dataset.checksum


def test_optional_groups_may_be_absent(tmp_path: Path, dataset: Dataset) -> None:
    dataset.groups = dataset.group_members = None
    loaded = Dataset.load(dataset.save(tmp_path / "dataset"))

    assert loaded.groups is None
    assert loaded.group_members is None
    assert "groups.parquet" not in loaded.manifest["files"]


def test_save_is_byte_identical(tmp_path: Path) -> None:
    first = make_valid_dataset().save(tmp_path / "first")
    second = make_valid_dataset().save(tmp_path / "second")
    resaved = Dataset.load(first).save(tmp_path / "resaved")

    assert _snapshot(first) == _snapshot(second)
    assert _snapshot(first) == _snapshot(resaved)


# ----------------------------------------------------------------- atomic save
def test_save_refuses_a_non_empty_directory(saved: Path, dataset: Dataset) -> None:
    before = _snapshot(saved)
    dataset.users = dataset.users.iloc[:2]

    with pytest.raises(FileExistsError, match="not empty"):
        dataset.save(saved)

    assert _snapshot(saved) == before
    assert len(Dataset.load(saved).users) == 6


def test_save_overwrite_replaces_the_old_dataset(saved: Path, dataset: Dataset) -> None:
    dataset.products.loc[0, "price"] = 99.0
    dataset.save(saved, overwrite=True)

    assert Dataset.load(saved).products.loc[0, "price"] == 99.0
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def _unconvertible_price(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> type:
    # products is written fourth, so users, follows and posts are already on disk.
    dataset.products["price"] = ["cheap"] * len(dataset.products)
    return pa.ArrowInvalid


def _disk_full_after_first_file(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> type:
    write_table = pq.write_table
    written: list[object] = []

    def fail_after_first(table: pa.Table, where: object, **kwargs: Any) -> None:
        if written:
            raise OSError("No space left on device")
        write_table(table, where, **kwargs)
        written.append(where)

    monkeypatch.setattr(pq, "write_table", fail_after_first)
    return OSError


@pytest.mark.parametrize("failure", [_unconvertible_price, _disk_full_after_first_file])
@pytest.mark.parametrize("existing", [True, False], ids=["over-old-dataset", "into-nothing"])
def test_failed_save_leaves_target_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Callable, existing: bool
) -> None:
    target = tmp_path / "dataset"
    if existing:
        make_valid_dataset().save(target)
    before = _snapshot(target) if existing else None
    dataset = make_valid_dataset()
    dataset.users.loc[0, "handle"] = "renamed"
    expected_error = failure(dataset, monkeypatch)

    with pytest.raises(expected_error):
        dataset.save(target, overwrite=True)

    assert [p.name for p in tmp_path.iterdir()] == (["dataset"] if existing else [])
    if existing:
        assert _snapshot(target) == before
        monkeypatch.undo()
        assert Dataset.load(target).users.loc[0, "handle"] == "mei"


# ------------------------------------------------- load: files and manifest
@pytest.mark.parametrize("validate", [True, False])
def test_load_rejects_a_missing_file(saved: Path, validate: bool) -> None:
    (saved / "follows.parquet").unlink()

    error = _load_error(saved, r"^follows: missing file follows\.parquet", validate=validate)

    assert (error.table, error.column) == ("follows", None)


def test_load_rejects_a_missing_directory(tmp_path: Path) -> None:
    _load_error(tmp_path / "nowhere", "does not exist")


def test_load_rejects_groups_without_members(saved: Path) -> None:
    (saved / "group_members.parquet").unlink()
    _edit_manifest(saved, lambda manifest: manifest["files"].pop("group_members.parquet"))

    error = _load_error(saved, "^groups: .* must both be present or both absent")

    assert (error.table, error.column) == ("groups", None)


def test_load_rejects_a_file_that_is_not_parquet(saved: Path) -> None:
    (saved / "users.parquet").write_bytes(b"user_id,handle\n1,mei\n")
    _reseal(saved, "users.parquet")

    error = _load_error(saved, r"^users: users\.parquet is not a readable Parquet file")

    assert (error.table, error.column) == ("users", None)


def test_load_rejects_bad_manifest_json(saved: Path) -> None:
    (saved / MANIFEST).write_text('{"schema_version": "1.0",', encoding="utf-8")

    error = _load_error(saved, r"^manifest: manifest\.json is not valid JSON")

    assert (error.table, error.column) == ("manifest", None)


def test_load_rejects_an_unsupported_schema_version(saved: Path) -> None:
    _edit_manifest(saved, lambda manifest: manifest.update(schema_version="2.0"))

    error = _load_error(saved, r"^manifest: schema_version '2\.0' is not supported")

    assert (error.table, error.column) == ("manifest", None)


@pytest.mark.parametrize(
    "time_span",
    [
        None,
        {"start": "2024-03-01"},
        {"start": None, "end": None},
        {"start": "2024-04-01", "end": "2024-03-01"},
    ],
    ids=["absent", "no-end", "nulls", "reversed"],
)
def test_load_rejects_an_invalid_time_span(saved: Path, time_span: dict | None) -> None:
    _edit_manifest(saved, lambda manifest: manifest.update(time_span=time_span))

    error = _load_error(saved, r"^manifest: manifest\.json has no valid time_span")

    assert (error.table, error.column) == ("manifest", None)


def test_load_rejects_a_file_changed_after_saving(saved: Path) -> None:
    # A change that keeps the table valid: only the checksum can tell.
    _rewrite(saved, "products", _set("price", 0, 1.0), reseal=False)

    error = _load_error(saved, r"^products: products\.parquet does not match its SHA-256")

    assert (error.table, error.column) == ("products", None)
    assert Dataset.load(saved, validate=False).products.loc[0, "price"] == 1.0


def test_load_checks_checksums_before_content(saved: Path) -> None:
    _rewrite(saved, "products", _replace("price", ["1"] * 5, pa.string()), reseal=False)

    _load_error(saved, r"^products: products\.parquet does not match its SHA-256")


def test_load_rejects_a_table_added_after_saving(tmp_path: Path, saved: Path) -> None:
    dataset = make_valid_dataset()
    dataset.groups = dataset.group_members = None
    without_groups = dataset.save(tmp_path / "without_groups")
    for name in ("groups.parquet", "group_members.parquet"):
        (without_groups / name).write_bytes((saved / name).read_bytes())

    error = _load_error(without_groups, r"^groups: groups\.parquet is not listed in manifest")

    assert (error.table, error.column) == ("groups", None)


# ------------------------------------------------------ load: types and values
def test_load_rejects_a_missing_column(saved: Path) -> None:
    _rewrite(saved, "users", lambda table: table.drop_columns(["device"]))

    error = _load_error(saved, r"^users\.device: missing column")

    assert (error.table, error.column) == ("users", "device")


def test_load_rejects_a_wrong_type(saved: Path) -> None:
    prices = ["129.0", "39.9", "499.0", "89.0", "159.5"]
    _rewrite(saved, "products", _replace("price", prices, pa.string()))

    error = _load_error(saved, r"^products\.price: wrong type string, expected double$")

    assert (error.table, error.column) == ("products", "price")


def test_load_accepts_narrower_encodings(saved: Path, dataset: Dataset) -> None:
    narrow = pa.field("follower_id", pa.int32())
    _rewrite(saved, "follows", lambda table: table.cast(table.schema.set(0, narrow)))

    pd.testing.assert_frame_equal(Dataset.load(saved).follows, dataset.follows)


@pytest.mark.parametrize(
    ("table", "column", "row"),
    [("users", "handle", 2), ("users", "is_kol", 1), ("follows", "follower_id", 3)],
)
def test_load_rejects_a_null(saved: Path, table: str, column: str, row: int) -> None:
    _rewrite(saved, table, _set(column, row, None))

    error = _load_error(saved, rf"^{table}\.{column}: 1 row with a null value \(rows {row}: ")

    assert (error.table, error.column, error.rows) == (table, column, [row])


@pytest.mark.parametrize(
    ("table", "column", "shown"),
    [("users", "user_id", "6: 2"), ("follows", "follower_id/followee_id", "7: '3/2'")],
)
def test_load_rejects_a_duplicate_key(saved: Path, table: str, column: str, shown: str) -> None:
    _rewrite(saved, table, _append_copy_of_row(1))

    message = f"{table}.{column}: 1 row with a duplicate key (rows {shown})"
    error = _load_error(saved, f"^{re.escape(message)}$")

    row = int(shown.split(":")[0])
    assert (error.table, error.column, error.rows) == (table, column, [row])


@pytest.mark.parametrize(
    ("table", "column", "row", "reference"),
    [
        ("follows", "follower_id", 3, "users.user_id"),
        ("interactions", "product_id", 5, "products.product_id"),
        ("posts", "repost_of", 1, "posts.post_id"),
    ],
)
def test_load_rejects_a_dangling_foreign_key(
    saved: Path, table: str, column: str, row: int, reference: str
) -> None:
    _rewrite(saved, table, _set(column, row, 999))

    # Named: the table and column, the rule, the offending row and its value.
    message = f"{table}.{column}: 1 row with an unknown {reference} (rows {row}: 999"
    error = _load_error(saved, f"^{re.escape(message)}")

    assert (error.table, error.column, error.rows) == (table, column, [row])


def test_load_rejects_a_self_follow(saved: Path) -> None:
    _rewrite(saved, "follows", _set("followee_id", 0, 1))

    message = "follows.followee_id: 1 row with self-follow (follower_id == followee_id) (rows 0: 1)"
    error = _load_error(saved, f"^{re.escape(message)}$")

    assert (error.table, error.column, error.rows) == ("follows", "followee_id", [0])


def test_load_rejects_a_negative_price(saved: Path) -> None:
    _rewrite(saved, "products", _set("price", 2, -1.0))

    error = _load_error(
        saved, r"^products\.price: 1 row with a value below the minimum 0 \(rows 2: -1\.0\)$"
    )

    assert (error.table, error.column, error.rows) == ("products", "price", [2])


def test_load_rejects_an_unknown_event_type(saved: Path) -> None:
    _rewrite(saved, "interactions", _set("event", 4, "refund"))

    error = _load_error(
        saved, r"^interactions\.event: 1 row with a value not in \['view', .*\(rows 4: 'refund'\)$"
    )

    assert (error.table, error.column, error.rows) == ("interactions", "event", [4])


def _wraps_into_span() -> datetime:
    """A year-2608 moment whose nanoseconds overflow int64 and wrap to mid-March 2024."""
    inside = START + pd.Timedelta(days=14)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=(inside.value + 2**64) // 1000)


@pytest.mark.parametrize(
    ("table", "column", "row", "moment"),
    [
        ("interactions", "ts", 0, END.to_pydatetime() + timedelta(microseconds=1)),
        ("users", "signup_ts", 0, START.to_pydatetime() - timedelta(microseconds=1)),
        ("posts", "created_ts", 3, _wraps_into_span()),
    ],
    ids=["after-end", "before-start", "year-2608"],
)
def test_load_rejects_a_timestamp_outside_the_time_span(
    saved: Path, table: str, column: str, row: int, moment: datetime
) -> None:
    _rewrite(saved, table, _set(column, row, moment))

    message = (
        f"{table}.{column}: 1 row with a timestamp outside the dataset's time span "
        f"{START.isoformat()} .. {END.isoformat()} (rows {row}: {pd.Timestamp(moment)})"
    )
    error = _load_error(saved, f"^{re.escape(message)}$")

    assert (error.table, error.column, error.rows) == (table, column, [row])


def test_error_lists_at_most_five_rows(saved: Path) -> None:
    _rewrite(saved, "interactions", _replace("event", ["refund"] * 12))

    error = _load_error(
        saved,
        r"^interactions\.event: 12 rows with .*\(rows 0: 'refund', .*, 4: 'refund', \.\.\.\)$",
    )

    assert error.rows == [0, 1, 2, 3, 4]


# ------------------------------------------------------- in-memory validation
def test_validate_rejects_a_duplicate_id_in_memory(dataset: Dataset) -> None:
    dataset.users.loc[4, "user_id"] = 2

    with pytest.raises(
        DatasetError, match=r"users\.user_id: 1 row with a duplicate key \(rows 4: 2\)"
    ) as info:
        dataset.validate()
    assert (info.value.table, info.value.column, info.value.rows) == ("users", "user_id", [4])


def test_validate_rejects_naive_timestamps(dataset: Dataset) -> None:
    dataset.posts["created_ts"] = dataset.posts["created_ts"].dt.tz_localize(None)

    with pytest.raises(
        DatasetError, match=r"posts\.created_ts: wrong type datetime64\[us\]"
    ) as info:
        dataset.validate()
    assert (info.value.table, info.value.column) == ("posts", "created_ts")


def test_validate_rejects_a_fractional_id(dataset: Dataset) -> None:
    # A nullable id column built by hand may be float64; 201.5 must not pass as post 201.
    dataset.posts["repost_of"] = pd.Series([np.nan, np.nan, 201.5, np.nan])

    with pytest.raises(
        DatasetError, match=r"posts\.repost_of: 1 row with a non-integer value \(rows 2: 201\.5\)"
    ) as info:
        dataset.validate()
    assert info.value.rows == [2]


def test_validate_rejects_a_missing_required_table(dataset: Dataset) -> None:
    dataset.posts = None

    with pytest.raises(DatasetError, match="^posts: required table is missing$") as info:
        dataset.validate()
    assert (info.value.table, info.value.column) == ("posts", None)


def test_validate_accepts_other_time_zones(dataset: Dataset) -> None:
    dataset.interactions["ts"] = dataset.interactions["ts"].dt.tz_convert("Asia/Shanghai")
    dataset.manifest["time_span"] = {"start": "2024-03-01T08:00:00+08:00", "end": END.isoformat()}

    assert dataset.validate() is dataset


# ---------------------------------------------------------------------- errors
def test_errors_survive_pickling() -> None:
    # Errors raised in worker processes (Dask, multiprocessing) come back pickled.
    error = pickle.loads(
        pickle.dumps(DatasetError("bad", table="users", column="user_id", rows=[3]))
    )
    assert (str(error), error.table, error.column, error.rows) == (
        "users.user_id: bad",
        "users",
        "user_id",
        [3],
    )

    unknown = pickle.loads(pickle.dumps(UnknownIdError("user", [7, 8])))
    assert (str(unknown), unknown.kind, unknown.ids) == ("unknown user ids: 7, 8", "user", [7, 8])
