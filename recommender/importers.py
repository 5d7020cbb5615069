"""Importers: real interaction data from CSV/TSV files into the dataset contract.

:func:`import_csv` reads delimited files of interactions, social edges, item text, item
tags and an optional fixed train/test split; :func:`build_dataset` is the shared back end
that turns normalised frames into a valid :class:`~recommender.dataset.Dataset` (the
LastFM recipe, :func:`recommender.importers_lastfm.import_lastfm_hetrec`, uses it too).

How real data maps onto the contract:

* users get unknown demographics (gender and age band ``"unknown"``, city tier 0, device
  ``"unknown"``), are no KOLs, share their purchases, have the handle ``u<id>`` and sign
  up at the start of the dataset's time span;
* an undirected friendship becomes two directed follows; self-loops and duplicates go;
* items become products with category ``"Imported"`` (or the item file's category), an
  empty brand, no price and shop 0; the description is the item file's, else the item's
  most used tags;
* interactions without an event column are binarised: one ``purchase`` per user-item pair
  (earliest time, summed ``weight``); with an event column every row is kept and its value
  mapped to a contract event;
* tag assignments that name a user become that user's posts: one post per (user, item,
  day) with the tags as text and hashtags and the item as the linked product;
* a fixed split is kept as the extra interactions column ``split`` (``"train"`` or
  ``"test"``) and recorded as ``"split": "fixed"`` in the manifest.

Timestamps: the contract needs one on every row. Real times are used where a file has
them; rows without one get :data:`SYNTHETIC_TS` (2000-01-01 UTC, or ``default_ts``), and
follows without a time, like every user's sign-up, get the start of the time span. The
manifest's ``timestamps`` entry says which date was synthetic.

Ids: if every raw user (item) id is a non-negative integer it is kept as is; otherwise all
ids of that kind are numbered ``0 .. n-1`` in sorted order and the raw id is kept as the
extra column ``external_id`` of ``users`` (``products``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.dataset import Dataset
from recommender.errors import DatasetError
from recommender.schema import EVENT_TYPES

SYNTHETIC_TS = pd.Timestamp("2000-01-01", tz="UTC")
"""The time given to rows whose source has none (documented in the manifest)."""
IMPORTED_CATEGORY = "Imported"
DESCRIPTION_TAGS = 10
"""How many of an item's most used tags make its description when it has none."""
SEPARATORS = ("\t", ",", ";", "|")
TS_DTYPE = "datetime64[us, UTC]"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CsvColumns:
    """Column names in the imported files.

    Optional columns (``weight``, ``ts``, ``event``, ``social_ts``, ``description``,
    ``category``, ``tag_user``, ``tag_ts``) are used when the file has them; ``None``
    ignores them. An optional column given a name other than its default must exist.
    """

    user: str = "user"
    item: str = "item"
    weight: str | None = "weight"
    ts: str | None = "ts"
    event: str | None = None
    social_user: str = "user"
    social_friend: str = "friend"
    social_ts: str | None = "ts"
    item_id: str = "item"
    title: str = "title"
    description: str | None = "description"
    category: str | None = "category"
    tag_user: str | None = "user"
    tag_item: str = "item"
    tag: str = "tag"
    tag_ts: str | None = "ts"
    split_user: str = "user"
    split_item: str = "item"


_DEFAULTS = {f.name: f.default for f in fields(CsvColumns)}


# ----------------------------------------------------------------- reading files
def read_delimited(
    path: str | Path, *, what: str, sep: str | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Read a delimited text file with a header row, every value as a string.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file holds (``"interactions"``, ``"social"``, ...), for error messages.
    sep : str, optional
        The separator; detected from the header line (tab, comma, semicolon or pipe) if
        not given.
    encoding : str, optional
        UTF-8 is tried first, then Latin-1, unless an encoding is given.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DatasetError
        If the file cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    encodings = [encoding] if encoding else ["utf-8", "latin-1"]
    for enc in encodings:
        try:
            with open(path, encoding=enc, newline="") as handle:
                header = handle.readline()
            delimiter = sep or max(SEPARATORS, key=header.count)
            return pd.read_csv(
                path,
                sep=delimiter,
                encoding=enc,
                dtype=str,
                keep_default_na=False,
                quoting=3 if delimiter == "\t" else 0,  # QUOTE_NONE for TSV
                engine="c",
            )
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DatasetError(f"cannot parse {path.name}: {exc}", table=what) from exc
    raise DatasetError(f"{path.name} is neither UTF-8 nor Latin-1 text", table=what)


def _require(frame: pd.DataFrame, column: str, *, what: str, file: str) -> pd.Series:
    if column not in frame.columns:
        raise DatasetError(
            f"{file} has no column {column!r}; its columns are {list(frame.columns)}",
            table=what,
            column=column,
        )
    return frame[column]


def _optional(
    frame: pd.DataFrame, field_name: str, columns: CsvColumns, *, what: str, file: str
) -> pd.Series | None:
    column = getattr(columns, field_name)
    if column is None:
        return None
    if column in frame.columns:
        return frame[column]
    if column != _DEFAULTS[field_name]:
        _require(frame, column, what=what, file=file)
    return None


def parse_timestamps(values: pd.Series, *, what: str, column: str) -> pd.Series:
    """Parse ISO dates/times or Unix epochs (s, ms, us or ns, by magnitude) to UTC.

    Empty values become ``NaT``; anything else unparseable raises :class:`DatasetError`.
    """
    text = values.astype(str).str.strip()
    empty = text.eq("")
    numeric = pd.to_numeric(text.mask(empty), errors="coerce")
    if numeric[~empty].notna().all() and (~empty).any():
        magnitude = float(numeric.abs().max())
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
        if magnitude >= 1e17:
            unit = "ns"
        parsed = pd.to_datetime(numeric, unit=unit, utc=True)
    else:
        parsed = pd.to_datetime(text.mask(empty), utc=True, errors="coerce", format="mixed")
    bad = parsed.isna() & ~empty
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:5]
        shown = ", ".join(f"{r}: {text.iloc[r]!r}" for r in rows)
        raise DatasetError(f"unparseable timestamps (rows {shown})", table=what, column=column)
    return parsed.astype(TS_DTYPE)


class IdMap:
    """Raw string ids to int64 ids: kept when all are non-negative integers, else numbered."""

    def __init__(self, raw_ids: pd.Series) -> None:
        unique = pd.unique(raw_ids.astype(str).str.strip())
        self.numeric = bool(len(unique)) and all(s.isdigit() for s in unique)
        if self.numeric:
            self.external = None
        else:
            self.external = np.sort(unique.astype(object)).astype(str)

    def __call__(self, raw: pd.Series) -> np.ndarray:
        """The int64 ids of ``raw`` (every value must have been seen at construction)."""
        text = raw.astype(str).str.strip()
        if self.numeric:
            return text.astype(np.int64).to_numpy()
        codes = np.searchsorted(self.external, text.to_numpy(dtype=str))
        return codes.astype(np.int64)

    def external_ids(self, ids: np.ndarray) -> np.ndarray | None:
        """The raw ids of int64 ``ids``, or None when ids were kept as they are."""
        return None if self.external is None else self.external[ids]


def read_id_map(path: str | Path, *, what: str) -> dict[str, str]:
    """A JSON object mapping raw ids to split ids, returned inverted (split id -> raw id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path.name} is not valid JSON: {exc}", table=what) from exc
    if not isinstance(mapping, dict):
        raise DatasetError(f"{path.name} must hold a JSON object raw id -> index", table=what)
    inverted = {str(v): str(k) for k, v in mapping.items()}
    if len(inverted) != len(mapping):
        raise DatasetError(f"{path.name} maps two raw ids to the same index", table=what)
    return inverted


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, to record each source in the manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------- assembly
def build_dataset(
    *,
    interactions: pd.DataFrame,
    follows: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    tags: pd.DataFrame | None = None,
    manifest: Mapping[str, Any],
    default_ts: pd.Timestamp = SYNTHETIC_TS,
    default_category: str = IMPORTED_CATEGORY,
    user_ids: IdMap | None = None,
    item_ids: IdMap | None = None,
) -> Dataset:
    """Turn normalised frames (int64 ids) into a validated contract :class:`Dataset`.

    Parameters
    ----------
    interactions : pandas.DataFrame
        ``user_id``, ``product_id``, ``event``, ``ts`` (``NaT`` allowed); extra columns
        such as ``weight`` and ``split`` are kept.
    follows : pandas.DataFrame, optional
        Directed edges ``follower_id``, ``followee_id``, ``created_ts`` (``NaT`` allowed).
    items : pandas.DataFrame, optional
        ``product_id``, ``title``, ``description``, ``category_path`` (empty strings
        allowed). Products are these items plus every interacted item.
    tags : pandas.DataFrame, optional
        Tag assignments ``product_id``, ``tag``, ``ts`` and, for assignments that become
        posts, ``user_id``.
    manifest : mapping
        ``name``, ``generator``, ``config``...; ``time_span``, ``seed`` and
        ``timestamps`` are added.
    default_ts : pandas.Timestamp
        The time of interactions and posts whose source has none.
    default_category : str
        ``category_path`` of items without one.
    user_ids, item_ids : IdMap, optional
        When ids were numbered, the raw ids go to the extra ``external_id`` columns.
    """
    default_ts = pd.Timestamp(default_ts).tz_convert("UTC")
    inter = interactions.reset_index(drop=True).copy()
    undated = int(inter["ts"].isna().sum())
    inter["ts"] = inter["ts"].fillna(default_ts).astype(TS_DTYPE)
    inter["via_post_id"] = pd.array([None] * len(inter), dtype="Int64")
    products = _products(inter, items, tags, default_category, item_ids)
    posts = _tag_posts(tags, set(products["product_id"].tolist()), default_ts)
    follows = _follows(follows)

    dated = [inter["ts"], posts["created_ts"], follows["created_ts"].dropna()]
    stamps = pd.concat([s for s in dated if len(s)]) if any(len(s) for s in dated) else None
    start = stamps.min() if stamps is not None else default_ts
    end = stamps.max() if stamps is not None else default_ts
    follows["created_ts"] = follows["created_ts"].fillna(start).astype(TS_DTYPE)
    users = _users(inter, follows, posts, start, user_ids)

    full_manifest = dict(manifest)
    full_manifest.setdefault("seed", None)
    full_manifest["time_span"] = {"start": start.isoformat(), "end": end.isoformat()}
    full_manifest["timestamps"] = {
        "synthetic": default_ts.isoformat(),
        "undated_interactions": undated,
        "note": "rows without a source time carry the synthetic time; users sign up and "
        "undated follows start at time_span.start",
    }
    dataset = Dataset(
        users=users,
        follows=follows[["follower_id", "followee_id", "created_ts"]],
        posts=posts,
        products=products,
        interactions=_ordered(inter),
        manifest=full_manifest,
    )
    return dataset.validate()


def _ordered(inter: pd.DataFrame) -> pd.DataFrame:
    first = ["user_id", "product_id", "event", "ts", "via_post_id"]
    return inter[first + [c for c in inter.columns if c not in first]]


def _top_tags(tags: pd.DataFrame | None) -> pd.Series:
    """Each product's most used tags (ties by name), space-joined, indexed by product_id."""
    if tags is None or tags.empty:
        return pd.Series(dtype=str)
    counts = tags.groupby(["product_id", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["product_id", "n", "tag"], ascending=[True, False, True])
    top = counts[counts.groupby("product_id").cumcount() < DESCRIPTION_TAGS]
    return top.groupby("product_id")["tag"].agg(" ".join)


def _products(
    inter: pd.DataFrame,
    items: pd.DataFrame | None,
    tags: pd.DataFrame | None,
    default_category: str,
    item_ids: IdMap | None,
) -> pd.DataFrame:
    known = items if items is not None else pd.DataFrame(columns=["product_id"])
    ids = np.union1d(known["product_id"].to_numpy(np.int64), inter["product_id"].to_numpy(np.int64))
    frame = pd.DataFrame({"product_id": ids})
    if items is not None:
        frame = frame.merge(items.drop_duplicates("product_id"), on="product_id", how="left")
    for column in ("title", "description", "category_path"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    external = item_ids.external_ids(ids) if item_ids is not None else None
    names = external if external is not None else ids.astype(str)
    frame["title"] = frame["title"].mask(frame["title"].eq(""), "item " + pd.Series(names))
    tag_text = _top_tags(tags)
    top = frame["product_id"].map(tag_text) if len(tag_text) else pd.Series("", index=frame.index)
    top = top.fillna("")
    frame["description"] = frame["description"].mask(frame["description"].eq(""), top)
    frame["category_path"] = frame["category_path"].mask(
        frame["category_path"].eq(""), default_category
    )
    frame["shop_id"] = np.int64(0)
    frame["brand"] = ""
    frame["price"] = np.nan
    columns = ["product_id", "shop_id", "category_path", "title", "description", "brand", "price"]
    if external is not None:
        frame["external_id"] = external
        columns.append("external_id")
    return frame[columns]


def _tag_posts(tags: pd.DataFrame | None, products: set[int], default_ts) -> pd.DataFrame:
    """One post per (user, item, day) of tag assignments; the item is the linked product."""
    columns = ["post_id", "user_id", "created_ts", "text", "hashtags", "mentions"]
    columns += ["repost_of", "product_id"]
    if tags is None or "user_id" not in tags.columns or tags["user_id"].isna().all():
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        empty["post_id"] = empty["user_id"] = pd.Series(dtype=np.int64)
        empty["created_ts"] = pd.Series(dtype=TS_DTYPE)
        empty["text"] = pd.Series(dtype=str)
        empty["repost_of"] = empty["product_id"] = pd.Series(dtype="Int64")
        return empty[columns]
    frame = tags.dropna(subset=["user_id"]).copy()
    frame["user_id"] = frame["user_id"].astype(np.int64)
    frame["ts"] = frame["ts"].fillna(default_ts).astype(TS_DTYPE)
    frame["day"] = frame["ts"].dt.floor("D")
    frame = frame.drop_duplicates(["user_id", "product_id", "day", "tag"])
    keys = ["user_id", "day", "product_id"]
    frame = frame.sort_values(keys, kind="stable")
    grouped = frame.groupby(keys, sort=False)
    posts = grouped.agg(created_ts=("ts", "min"), hashtags=("tag", list)).reset_index()
    posts["text"] = posts["hashtags"].map(" ".join)
    posts["post_id"] = np.arange(len(posts), dtype=np.int64)
    posts["mentions"] = [[] for _ in range(len(posts))]
    posts["repost_of"] = pd.array([None] * len(posts), dtype="Int64")
    linked = posts["product_id"].isin(products)
    posts["product_id"] = pd.array(posts["product_id"].where(linked), dtype="Int64")
    return posts[columns]


def _follows(follows: pd.DataFrame | None) -> pd.DataFrame:
    if follows is None:
        return pd.DataFrame(
            {
                "follower_id": pd.Series(dtype=np.int64),
                "followee_id": pd.Series(dtype=np.int64),
                "created_ts": pd.Series(dtype=TS_DTYPE),
            }
        )
    frame = follows[follows["follower_id"] != follows["followee_id"]]
    frame = frame.sort_values("created_ts", kind="stable", na_position="last")
    frame = frame.drop_duplicates(["follower_id", "followee_id"])
    frame = frame.sort_values(["follower_id", "followee_id"]).reset_index(drop=True)
    return frame.astype({"follower_id": np.int64, "followee_id": np.int64})


def _users(
    inter: pd.DataFrame,
    follows: pd.DataFrame,
    posts: pd.DataFrame,
    start: pd.Timestamp,
    user_ids: IdMap | None,
) -> pd.DataFrame:
    parts = [
        inter["user_id"],
        follows["follower_id"],
        follows["followee_id"],
        posts["user_id"],
    ]
    ids = np.unique(np.concatenate([p.to_numpy(np.int64) for p in parts]))
    external = user_ids.external_ids(ids) if user_ids is not None else None
    users = pd.DataFrame(
        {
            "user_id": ids,
            "handle": pd.Series("u" + pd.Series(ids).astype(str), dtype=str),
            "gender": "unknown",
            "age_band": "unknown",
            "city_tier": np.int64(0),
            "device": "unknown",
            "is_kol": False,
            "share_purchases": True,
            "signup_ts": pd.Series([start] * len(ids), dtype=TS_DTYPE),
        }
    )
    if external is not None:
        users["external_id"] = external
    return users


def apply_fixed_split(
    interactions: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame
) -> np.ndarray:
    """The ``split`` label (``"train"``/``"test"``) of every interaction from pair lists.

    ``train`` and ``test`` hold ``user_id``, ``product_id`` pairs.

    Raises
    ------
    DatasetError
        If a pair is in both lists (a leaky split), an interaction's pair is in neither,
        or a listed pair has no interaction.
    """
    keys = ["user_id", "product_id"]
    train = train[keys].drop_duplicates().assign(split="train")
    test = test[keys].drop_duplicates().assign(split="test")
    both = train.merge(test, on=keys)
    if len(both):
        first = both.iloc[0]
        raise DatasetError(
            f"{len(both)} user-item pairs are in both the train and the test split (leaky "
            f"split), e.g. user {first.user_id} item {first.product_id}",
            table="interactions",
            column="split",
        )
    labels = pd.concat([train, test], ignore_index=True)
    pairs = interactions[keys].drop_duplicates()
    unlisted = pairs.merge(labels, on=keys, how="left")["split"].isna()
    if unlisted.any():
        rows = np.flatnonzero(unlisted.to_numpy())[:5]
        raise DatasetError(
            f"{int(unlisted.sum())} interacted user-item pairs are in neither split file",
            table="interactions",
            column="split",
            rows=rows,
        )
    orphans = labels.merge(pairs, on=keys, how="left", indicator=True)["_merge"].eq("left_only")
    if orphans.any():
        raise DatasetError(
            f"{int(orphans.sum())} pairs of the split files have no interaction",
            table="interactions",
            column="split",
        )
    merged = interactions[keys].merge(labels, on=keys, how="left", sort=False)
    return merged["split"].to_numpy(dtype=object).astype(str)


# ------------------------------------------------------------------ import_csv
def import_csv(
    *,
    interactions: str | Path,
    social: str | Path | None = None,
    items: str | Path | None = None,
    item_tags: str | Path | None = None,
    split_train: str | Path | None = None,
    split_test: str | Path | None = None,
    split_user_map: str | Path | None = None,
    split_item_map: str | Path | None = None,
    columns: CsvColumns | None = None,
    sep: str | None = None,
    social_directed: bool = False,
    event_map: Mapping[str, str] | None = None,
    default_ts: pd.Timestamp = SYNTHETIC_TS,
    name: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Dataset:
    """Import delimited files of interactions and optional side data into the contract.

    Parameters
    ----------
    interactions : path-like
        User-item interactions: ``columns.user``, ``columns.item`` and optionally
        ``columns.weight`` (kept as the extra column ``weight``), ``columns.ts`` and
        ``columns.event``.
    social : path-like, optional
        Social edges ``columns.social_user`` -> ``columns.social_friend``.
    items : path-like, optional
        Item text: ``columns.item_id``, ``columns.title`` and optionally
        ``columns.description`` and ``columns.category`` (a ``/``-separated path).
    item_tags : path-like, optional
        Tag assignments ``columns.tag_item``, ``columns.tag`` and optionally
        ``columns.tag_user`` (assignments by a user become that user's posts) and
        ``columns.tag_ts``.
    split_train, split_test : path-like, optional
        A fixed split: the train and the test user-item pairs (``columns.split_user``,
        ``columns.split_item``). Every interacted pair must be in exactly one of them.
    split_user_map, split_item_map : path-like, optional
        JSON objects raw id -> the id used in the split files, when those are re-indexed.
    columns : CsvColumns, optional
        Column names (defaults ``user``, ``item``, ``weight``, ``ts``...).
    sep : str, optional
        The separator of every file; detected per file if not given.
    social_directed : bool
        Whether a social edge is a one-way follow; by default it is a friendship and
        becomes two follows.
    event_map : mapping of str to str, optional
        Raw event value -> contract event (``view``, ``click``, ``favorite``, ``cart``,
        ``purchase``); contract event names map to themselves.
    default_ts : pandas.Timestamp
        Time of the rows whose file has no time (default :data:`SYNTHETIC_TS`).
    name : str, optional
        The dataset's name in the manifest (default: the interactions file's stem).
    out : path-like, optional
        Save the dataset there (atomically).
    overwrite : bool
        Replace an existing non-empty ``out``.
    progress : callable, optional
        Called with a short message as each stage starts.

    Returns
    -------
    Dataset
        Validated; saved to ``out`` if given.

    Raises
    ------
    FileNotFoundError
        A named file does not exist.
    DatasetError
        A file lacks a column, has unparseable values or the split does not match.
    """
    columns = columns or CsvColumns()
    say = progress or (lambda _message: None)
    if (split_train is None) != (split_test is None):
        raise ValueError("give both split_train and split_test, or neither.")
    sources = {"interactions": interactions, "social": social, "items": items}
    sources |= {"item_tags": item_tags, "split_train": split_train, "split_test": split_test}
    sources |= {"split_user_map": split_user_map, "split_item_map": split_item_map}
    sources = {k: Path(v) for k, v in sources.items() if v is not None}

    say("reading files")
    raw = {k: read_delimited(p, what=k, sep=sep) for k, p in sources.items() if "map" not in k}
    split_raw = {
        part: _split_pairs(raw[f"split_{part}"], columns, sources, f"split_{part}")
        for part in ("train", "test")
        if f"split_{part}" in raw
    }
    users_raw, items_raw = _raw_ids(raw, columns, sources, split_raw)
    user_ids, item_ids = IdMap(users_raw), IdMap(items_raw)

    say("interactions")
    inter = _interactions(raw["interactions"], columns, event_map, user_ids, item_ids, sources)
    follows = None
    if "social" in raw:
        say("social graph")
        follows = _social(raw["social"], columns, social_directed, user_ids, sources["social"])
    item_frame = None
    if "items" in raw:
        item_frame = _items(raw["items"], columns, item_ids, sources["items"])
    tags = None
    if "item_tags" in raw:
        say("tags")
        tags = _tags(raw["item_tags"], columns, user_ids, item_ids, sources["item_tags"])
    split = None
    if split_raw:
        say("fixed split")
        pairs = {
            part: pd.DataFrame(
                {"user_id": user_ids(frame["user"]), "product_id": item_ids(frame["item"])}
            )
            for part, frame in split_raw.items()
        }
        inter["split"] = apply_fixed_split(inter, pairs["train"], pairs["test"])
        split = "fixed"

    say("assembling the dataset")
    config = {k: str(v) for k, v in sources.items()}
    config |= {
        "columns": asdict(columns),
        "sep": sep,
        "social_directed": social_directed,
        "event_map": dict(event_map or {}),
        "default_ts": pd.Timestamp(default_ts).isoformat(),
    }
    manifest = {
        "name": name or Path(interactions).stem,
        "generator": {"name": "socialcart.recommender.importers.csv", "version": _version()},
        "config": config,
        "sources": {k: sha256_of(p) for k, p in sources.items()},
    }
    if split:
        manifest["split"] = split
    dataset = build_dataset(
        interactions=inter,
        follows=follows,
        items=item_frame,
        tags=tags,
        manifest=manifest,
        default_ts=default_ts,
        user_ids=user_ids,
        item_ids=item_ids,
    )
    if out is not None:
        say(f"saving to {out}")
        dataset.save(out, overwrite=overwrite)
    return dataset


def _version() -> str:
    """The package version, recorded in the manifests of imported datasets."""
    from socialcart import __version__

    return __version__


def _raw_ids(
    raw: dict[str, pd.DataFrame],
    columns: CsvColumns,
    sources: dict[str, Path],
    split_raw: dict[str, pd.DataFrame],
) -> tuple[pd.Series, pd.Series]:
    """Every raw user id and item id named by any file (to number them consistently)."""
    file = {k: p.name for k, p in sources.items()}
    users = [
        _require(raw["interactions"], columns.user, what="interactions", file=file["interactions"])
    ]
    items = [
        _require(raw["interactions"], columns.item, what="interactions", file=file["interactions"])
    ]
    if "social" in raw:
        for col in (columns.social_user, columns.social_friend):
            users.append(_require(raw["social"], col, what="social", file=file["social"]))
    if "items" in raw:
        items.append(_require(raw["items"], columns.item_id, what="items", file=file["items"]))
    if "item_tags" in raw:
        tag_file = raw["item_tags"]
        items.append(_require(tag_file, columns.tag_item, what="item_tags", file=file["item_tags"]))
        tag_users = _optional(
            tag_file, "tag_user", columns, what="item_tags", file=file["item_tags"]
        )
        if tag_users is not None:
            users.append(tag_users[tag_users.str.strip().ne("")])
    for pairs in split_raw.values():
        users.append(pairs["user"])
        items.append(pairs["item"])
    return pd.concat(users, ignore_index=True), pd.concat(items, ignore_index=True)


def _split_pairs(
    frame: pd.DataFrame, columns: CsvColumns, sources: dict[str, Path], part: str
) -> pd.DataFrame:
    """A split file's pairs as raw ids (re-indexed ids mapped back through the JSON maps)."""
    file = sources[part].name
    user = _require(frame, columns.split_user, what=part, file=file).str.strip()
    item = _require(frame, columns.split_item, what=part, file=file).str.strip()
    for kind, values in (("user", user), ("item", item)):
        key = f"split_{kind}_map"
        if key in sources:
            inverse = read_id_map(sources[key], what=key)
            mapped = values.map(inverse)
            if mapped.isna().any():
                rows = np.flatnonzero(mapped.isna().to_numpy())[:5]
                raise DatasetError(
                    f"{int(mapped.isna().sum())} {kind} ids of {file} are not in "
                    f"{sources[key].name}",
                    table=part,
                    column=getattr(columns, f"split_{kind}"),
                    rows=rows,
                )
            values = mapped
        if kind == "user":
            user = values
        else:
            item = values
    return pd.DataFrame({"user": user.to_numpy(), "item": item.to_numpy()})


def _numbers(values: pd.Series, *, what: str, column: str) -> pd.Series:
    parsed = pd.to_numeric(values.str.strip(), errors="coerce")
    if parsed.isna().any():
        rows = np.flatnonzero(parsed.isna().to_numpy())[:5]
        shown = ", ".join(f"{r}: {values.iloc[r]!r}" for r in rows)
        raise DatasetError(f"non-numeric values (rows {shown})", table=what, column=column)
    if (parsed == parsed.round()).all() and parsed.abs().max() < 2**62:
        return parsed.astype(np.int64)
    return parsed.astype(np.float64)


def _interactions(
    frame: pd.DataFrame,
    columns: CsvColumns,
    event_map: Mapping[str, str] | None,
    user_ids: IdMap,
    item_ids: IdMap,
    sources: dict[str, Path],
) -> pd.DataFrame:
    file = sources["interactions"].name
    opt = {
        name: _optional(frame, name, columns, what="interactions", file=file)
        for name in ("weight", "ts", "event")
    }
    inter = pd.DataFrame(
        {
            "user_id": user_ids(frame[columns.user]),
            "product_id": item_ids(frame[columns.item]),
            "ts": parse_timestamps(frame[columns.ts], what="interactions", column=columns.ts)
            if opt["ts"] is not None
            else pd.Series(pd.NaT, index=frame.index, dtype=TS_DTYPE),
        }
    )
    if opt["weight"] is not None:
        inter["weight"] = _numbers(opt["weight"], what="interactions", column=columns.weight)
    if opt["event"] is None:
        # Binarise: one purchase per user-item pair, at its earliest time, weights summed.
        agg = {"ts": ("ts", "min")}
        if "weight" in inter.columns:
            agg["weight"] = ("weight", "sum")
        inter = inter.groupby(["user_id", "product_id"], sort=True).agg(**agg).reset_index()
        inter["event"] = "purchase"
        return inter
    mapping = {e: e for e in EVENT_TYPES} | {
        str(k).lower(): v for k, v in (event_map or {}).items()
    }
    bad_targets = sorted(set(mapping.values()) - set(EVENT_TYPES))
    if bad_targets:
        raise ValueError(f"event_map targets {bad_targets} are not contract events {EVENT_TYPES}.")
    events = opt["event"].str.strip().str.lower().map(mapping)
    if events.isna().any():
        unknown = sorted(opt["event"][events.isna()].unique())[:5]
        raise DatasetError(
            f"event values {unknown} are neither contract events {list(EVENT_TYPES)} nor in "
            "the event map",
            table="interactions",
            column=columns.event,
            rows=np.flatnonzero(events.isna().to_numpy())[:5],
        )
    inter["event"] = events.to_numpy(dtype=str)
    return inter


def _social(
    frame: pd.DataFrame, columns: CsvColumns, directed: bool, user_ids: IdMap, path: Path
) -> pd.DataFrame:
    ts = _optional(frame, "social_ts", columns, what="social", file=path.name)
    edges = pd.DataFrame(
        {
            "follower_id": user_ids(frame[columns.social_user]),
            "followee_id": user_ids(frame[columns.social_friend]),
            "created_ts": parse_timestamps(ts, what="social", column=columns.social_ts)
            if ts is not None
            else pd.Series(pd.NaT, index=frame.index, dtype=TS_DTYPE),
        }
    )
    if directed:
        return edges
    reverse = edges.rename(columns={"follower_id": "followee_id", "followee_id": "follower_id"})
    return pd.concat([edges, reverse], ignore_index=True)


def _items(frame: pd.DataFrame, columns: CsvColumns, item_ids: IdMap, path: Path) -> pd.DataFrame:
    items = pd.DataFrame(
        {
            "product_id": item_ids(frame[columns.item_id]),
            "title": _require(frame, columns.title, what="items", file=path.name).str.strip(),
        }
    )
    for field_name, target in (("description", "description"), ("category", "category_path")):
        values = _optional(frame, field_name, columns, what="items", file=path.name)
        if values is not None:
            items[target] = values.str.strip().to_numpy()
    return items


def _tags(
    frame: pd.DataFrame, columns: CsvColumns, user_ids: IdMap, item_ids: IdMap, path: Path
) -> pd.DataFrame:
    tag = _require(frame, columns.tag, what="item_tags", file=path.name).str.strip()
    keep = tag.ne("").to_numpy()
    frame, tag = frame[keep].reset_index(drop=True), tag[keep].reset_index(drop=True)
    tags = pd.DataFrame({"product_id": item_ids(frame[columns.tag_item]), "tag": tag})
    users = _optional(frame, "tag_user", columns, what="item_tags", file=path.name)
    if users is not None:
        present = users.str.strip().ne("").to_numpy()
        ids = pd.array([None] * len(frame), dtype="Int64")
        ids[present] = user_ids(users[present])
        tags["user_id"] = ids
    ts = _optional(frame, "tag_ts", columns, what="item_tags", file=path.name)
    tags["ts"] = (
        parse_timestamps(ts, what="item_tags", column=columns.tag_ts)
        if ts is not None
        else pd.Series(pd.NaT, index=tags.index, dtype=TS_DTYPE)
    )
    return tags


def __getattr__(name: str) -> Any:
    # The LastFM recipe lives in its own module (which imports this one); re-export it lazily.
    if name == "import_lastfm_hetrec":
        from recommender.importers_lastfm import import_lastfm_hetrec

        return import_lastfm_hetrec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
