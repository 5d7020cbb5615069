"""The :class:`Dataset`: a social-commerce dataset held as pandas DataFrames plus its manifest.

A dataset on disk is a directory of Parquet files (one per table, ``ground_truth/`` for the
planted truth of synthetic data) and ``manifest.json`` (schema version, generator, full
configuration, seed, time span, row counts and the SHA-256 of every file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recommender.atomic import atomic_directory
from recommender.errors import DatasetError
from recommender.schema import SCHEMA_VERSION, TABLES, Table, arrow_schema, kind_matches
from recommender.validation import validate_frames

MANIFEST = "manifest.json"
GROUND_TRUTH_DIR = "ground_truth"


@dataclass
class Dataset:
    """A social-commerce dataset in the socialcart contract.

    Parameters
    ----------
    users, follows, posts, products, interactions : pandas.DataFrame
        The required tables (see :mod:`recommender.schema`).
    groups, group_members : pandas.DataFrame or None
        Optional interest and shopping groups.
    ground_truth : dict of str to pandas.DataFrame
        The planted truth of a synthetic dataset; never read by training.
    manifest : dict
        Schema version, generator, configuration, seed, ``time_span`` and file checksums.
    """

    users: pd.DataFrame
    follows: pd.DataFrame
    posts: pd.DataFrame
    products: pd.DataFrame
    interactions: pd.DataFrame
    groups: pd.DataFrame | None = None
    group_members: pd.DataFrame | None = None
    ground_truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- access
    def table(self, name: str) -> pd.DataFrame | None:
        """The table called ``name`` (None for an absent optional table)."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; tables are {sorted(TABLES)}")
        return getattr(self, name)

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """The present contract tables as ``(name, frame)`` pairs, in dependency order."""
        for name in TABLES:
            frame = getattr(self, name)
            if frame is not None:
                yield name, frame

    @property
    def time_span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The dataset's ``(start, end)`` time span from the manifest (UTC)."""
        span = self.manifest.get("time_span") or {}
        try:
            start, end = _utc(span["start"]), _utc(span["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(
                "manifest.json has no valid time_span {start, end}", table="manifest"
            ) from exc
        if pd.isna(start) or pd.isna(end) or start > end:
            raise DatasetError(
                f"manifest.json has no valid time_span {{start, end}}: {span}", table="manifest"
            )
        return start, end

    @property
    def checksum(self) -> str:
        """One SHA-256 over every file's checksum: identifies this exact dataset."""
        files = self.manifest.get("files", {})
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(f"{name}:{files[name]['sha256']}\n".encode())
        return digest.hexdigest()

    def validate(self) -> Dataset:
        """Check types, keys, foreign keys and value ranges; raise :class:`DatasetError`."""
        start, end = self.time_span
        validate_frames(dict(self.tables()), start=start, end=end)
        return self

    # --------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike, *, validate: bool = True) -> Dataset:
        """Read a dataset directory, validating it unless ``validate=False``.

        Raises
        ------
        DatasetError
            Naming the table, the column and a few offending rows.
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(f"dataset directory {str(root)!r} does not exist")
        manifest = _read_manifest(root)
        if validate:
            _verify_checksums(root, manifest)
        frames: dict[str, pd.DataFrame | None] = {}
        for name, spec in TABLES.items():
            file = root / f"{name}.parquet"
            if not file.exists():
                if spec.required:
                    raise DatasetError(f"missing file {file.name}", table=name)
                frames[name] = None
                continue
            frames[name] = _read_table(file, name)
        if (frames["groups"] is None) != (frames["group_members"] is None):
            raise DatasetError(
                "groups.parquet and group_members.parquet must both be present or both absent",
                table="groups",
            )
        ground_truth = {}
        gt_dir = root / GROUND_TRUTH_DIR
        if gt_dir.is_dir():
            for file in sorted(gt_dir.glob("*.parquet")):
                ground_truth[file.stem] = _read_parquet(file, f"ground_truth/{file.stem}")
        dataset = cls(**frames, ground_truth=ground_truth, manifest=manifest)
        if validate:
            dataset.validate()
        return dataset

    # ---------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the dataset atomically: into a temporary directory, then renamed into place.

        A failed or interrupted save leaves ``path`` as it was (the old complete dataset or
        nothing), never half-written. Returns the path written.
        """
        target = Path(path)
        with atomic_directory(target, overwrite=overwrite) as tmp:
            files = {}
            for name, frame in self.tables():
                files[f"{name}.parquet"] = _write_table(frame, tmp / f"{name}.parquet", name)
            if self.ground_truth:
                (tmp / GROUND_TRUTH_DIR).mkdir()
                for name in sorted(self.ground_truth):
                    rel = f"{GROUND_TRUTH_DIR}/{name}.parquet"
                    files[rel] = _write_table(self.ground_truth[name], tmp / rel, None)
            manifest = dict(self.manifest)
            manifest["schema_version"] = SCHEMA_VERSION
            manifest["files"] = files
            manifest["row_counts"] = {
                rel.removesuffix(".parquet"): meta["rows"] for rel, meta in files.items()
            }
            text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            (tmp / MANIFEST).write_text(text, encoding="utf-8")
        self.manifest = manifest
        return target


# ---------------------------------------------------------------------- helpers
def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _read_manifest(root: Path) -> dict[str, Any]:
    file = root / MANIFEST
    if not file.exists():
        raise DatasetError(f"missing file {MANIFEST}", table="manifest")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {MANIFEST}: {exc}", table="manifest") from exc
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[...]]]]
        raise DatasetError(f"{MANIFEST} is not valid JSON: {exc}", table="manifest") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(f"{MANIFEST} must hold a JSON object", table="manifest")
    version = str(manifest.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise DatasetError(
            f"schema_version {version!r} is not supported (this socialcart reads "
            f"{SCHEMA_VERSION.split('.')[0]}.x)",
            table="manifest",
        )
    return manifest


def table_to_frame(table: pa.Table, spec: Table) -> pd.DataFrame:
    """Arrow to pandas the contract's way.

    List columns and nullable id columns stay Arrow-backed (``pd.ArrowDtype``): ids keep
    their exact int64 values next to nulls, and millions of short lists do not become
    millions of Python objects. Everything else converts to plain numpy-backed columns.
    """
    arrow_backed = {
        c.name
        for c in spec.columns
        if c.kind.startswith("list") or (c.nullable and c.kind == "int")
    }
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if name in arrow_backed:
            columns[name] = pd.Series(pd.arrays.ArrowExtensionArray(column), name=name)
            continue
        try:
            columns[name] = column.to_pandas()
        except pa.ArrowException as exc:  # e.g. a time zone this machine does not know
            raise DatasetError(
                f"cannot convert {column.type} to pandas: {exc}", table=spec.name, column=name
            ) from exc
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _read_parquet(file: Path, table: str) -> pd.DataFrame:
    """A ground-truth table: any columns, read as plain pandas columns."""
    return table_to_frame(_read_arrow(file, table), Table(table, columns=()))


def _read_arrow(file: Path, table: str) -> pa.Table:
    """Read one Parquet file whole; damage to the file or its values is a DatasetError.

    ``ParquetFile`` rather than ``pq.read_table``: the latter reads a directory as a
    partitioned dataset and refuses duplicate column names with an unhelpful message.
    """
    try:
        with pq.ParquetFile(file) as handle:
            arrow = handle.read()
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(
            f"{file.name} is not a readable Parquet file: {exc}", table=table
        ) from exc
    seen: set[str] = set()
    for index, name in enumerate(arrow.column_names):
        if name in seen:
            raise DatasetError(
                f"{file.name} has two columns of this name", table=table, column=name
            )
        seen.add(name)
        try:  # full: strings must be valid UTF-8, offsets inside their buffers
            arrow.column(index).validate(full=True)
        except pa.ArrowException as exc:
            raise DatasetError(f"invalid values: {exc}", table=table, column=name) from exc
    return arrow


def _read_table(file: Path, name: str) -> pd.DataFrame:
    spec = TABLES[name]
    table = _read_arrow(file, name)
    present = set(table.column_names)
    for column in spec.columns:
        if column.name not in present:
            raise DatasetError(
                f"missing column; the file has {sorted(present)}", table=name, column=column.name
            )
        arrow_type = table.schema.field(column.name).type
        if not kind_matches(column.kind, arrow_type):
            expected = arrow_schema(spec).field(column.name).type
            raise DatasetError(
                f"wrong type {arrow_type}, expected {expected}", table=name, column=column.name
            )
    # Widen narrower encodings to the canonical types, keep extra columns as they are.
    canonical = arrow_schema(spec)
    for column in spec.columns:
        index = table.schema.get_field_index(column.name)
        wanted = canonical.field(column.name).type
        current = table.column(index)
        if current.type != wanted:
            if pa.types.is_dictionary(current.type):
                current = current.dictionary_decode()
            try:
                current = current.cast(wanted)
            except pa.ArrowException as exc:
                raise DatasetError(
                    f"cannot convert {current.type} to {wanted}: {exc}",
                    table=name,
                    column=column.name,
                ) from exc
            table = table.set_column(index, pa.field(column.name, wanted), current)
    return table_to_frame(table, spec)


def _write_table(frame: pd.DataFrame, file: Path, name: str | None) -> dict[str, Any]:
    if name is not None:
        spec = TABLES[name]
        canonical = arrow_schema(spec)
        missing = [c for c in spec.column_names if c not in frame.columns]
        if missing:
            raise DatasetError(f"cannot save: missing columns {missing}", table=name)
        extras = [c for c in frame.columns if c not in canonical.names]
        ordered = frame[spec.column_names + extras]
        table = pa.Table.from_pandas(ordered, preserve_index=False)
        table = table.select(spec.column_names + extras)
        fields = [canonical.field(c) for c in spec.column_names]
        fields += [table.schema.field(c) for c in extras]
        table = table.cast(pa.schema(fields).with_metadata(None))
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(table, file, compression="zstd", use_dictionary=_dictionary_columns(table))
    return {"rows": table.num_rows, "sha256": _sha256(file)}


def _dictionary_columns(table: pa.Table) -> list[str]:
    """String columns with few distinct values (events, categories, brands).

    Dictionary-encoding every column, Parquet's default, spends a third of the write time
    on ids and timestamps that never fit a dictionary.
    """
    names = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            names.append(name)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            sample = column.slice(0, 10_000)
            if len(pc.unique(sample)) <= 1_000:
                names.append(name)
    return names


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_checksums(root: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise DatasetError(f"{MANIFEST} has no 'files' section", table="manifest")
    for rel, meta in files.items():
        file = root / rel
        table = rel.removesuffix(".parquet")
        if Path(rel).is_absolute() or ".." in Path(rel).parts or file == root:
            raise DatasetError(
                f"{MANIFEST} lists {rel!r}, which is not a file inside the dataset",
                table="manifest",
            )
        try:
            digest = _sha256(file)
        except FileNotFoundError as exc:
            raise DatasetError(f"missing file {rel} (listed in {MANIFEST})", table=table) from exc
        except (OSError, ValueError) as exc:  # a directory, a name too long, a NUL byte
            raise DatasetError(
                f"cannot read {rel} (listed in {MANIFEST}): {exc}", table=table
            ) from exc
        if digest != (meta.get("sha256") if isinstance(meta, dict) else None):
            raise DatasetError(
                f"{rel} does not match its SHA-256 in {MANIFEST}: the file was changed",
                table=table,
            )
    # Every file that load reads must be covered, or a table added later goes unchecked.
    read = [f"{name}.parquet" for name in TABLES if (root / f"{name}.parquet").exists()]
    read += [f"{GROUND_TRUTH_DIR}/{f.name}" for f in (root / GROUND_TRUTH_DIR).glob("*.parquet")]
    unlisted = [rel for rel in read if rel not in files]
    if unlisted:
        raise DatasetError(
            f"{unlisted[0]} is not listed in {MANIFEST}: it was added after saving",
            table=unlisted[0].removesuffix(".parquet"),
        )
