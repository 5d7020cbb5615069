"""The LastFM HetRec 2011 recipe: the public yardstick dataset in the socialcart contract.

Reads ``raw/`` (the original release) and ``sociallgn-split/`` (SocialLGN's fixed 80/20
split) of ``../shared/datasets/lastfm-hetrec2011`` and maps them as follows:

* 1,892 users; the 25,434 listed friend pairs (both directions) become follows;
* the 17,632 artists become products: title = artist name, description = the artist's
  ten most used tags, category ``Music/Artists``;
* the 186,479 tag assignments become the users' posts, one per (user, artist, day),
  text and hashtags = the tags, linked to the tagged artist (no link for the 390 tagged
  artists missing from ``artists.dat``); the few absurd years (1956, 1957, 1979) are
  clamped to the first plausible date in the data;
* the 92,834 user-artist listening counts become ``purchase`` interactions with the extra
  column ``weight`` = listen count, all stamped :data:`LASTFM_SNAPSHOT_TS` (the counts are
  totals up to the crawl; the release has no listening times), and the extra column
  ``split`` from SocialLGN's ``train_set.txt`` / ``test_set.txt`` (74,267 / 18,567 pairs),
  whose re-indexed ids are mapped back through ``userReindex.json`` / ``itemReindex.json``
  (objects raw id -> index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.dataset import Dataset
from recommender.errors import DatasetError
from recommender.importers import (
    TS_DTYPE,
    Progress,
    _version,
    apply_fixed_split,
    build_dataset,
    read_id_map,
    sha256_of,
)

LASTFM_SNAPSHOT_TS = pd.Timestamp("2011-05-31", tz="UTC")
"""Time of every listening interaction: the end of the HetRec 2011 crawl (May 2011)."""
LASTFM_CATEGORY = "Music/Artists"
FIRST_PLAUSIBLE_YEAR = 2002
"""Last.fm launched in 2002; tag dates before that are data errors."""

RAW_FILES = {
    "user_artists": "raw/user_artists.dat",
    "user_friends": "raw/user_friends.dat",
    "artists": "raw/artists.dat",
    "tags": "raw/tags.dat",
    "user_taggedartists": "raw/user_taggedartists.dat",
    "train": "sociallgn-split/train_set.txt",
    "test": "sociallgn-split/test_set.txt",
    "user_map": "sociallgn-split/userReindex.json",
    "item_map": "sociallgn-split/itemReindex.json",
}


def import_lastfm_hetrec(
    src_dir: str | Path,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Dataset:
    """Import LastFM HetRec 2011 with SocialLGN's fixed split into the contract.

    Parameters
    ----------
    src_dir : path-like
        The dataset directory holding ``raw/`` and ``sociallgn-split/`` (and, optionally,
        ``SHA256SUMS``, against which every file read is verified).
    out : path-like, optional
        Save the dataset there (atomically).
    overwrite : bool
        Replace an existing non-empty ``out``.
    progress : callable, optional
        Called with a short message as each stage starts.

    Returns
    -------
    Dataset
        Validated; every interaction has ``weight`` (listen count) and ``split``.

    Raises
    ------
    FileNotFoundError
        A file of the release is missing.
    DatasetError
        A file does not match ``SHA256SUMS`` or the split does not cover the listening
        pairs exactly.
    """
    root = Path(src_dir)
    say = progress or (lambda _message: None)
    paths = {key: root / rel for key, rel in RAW_FILES.items()}
    for key, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"LastFM file {str(path)!r} ({key}) does not exist")
    say("verifying checksums")
    sources = _verify_sums(root, paths)

    say("listening counts")
    listens = _tsv(paths["user_artists"])
    inter = pd.DataFrame(
        {
            "user_id": listens["userID"].to_numpy(np.int64),
            "product_id": listens["artistID"].to_numpy(np.int64),
            "event": "purchase",
            "ts": pd.Series(pd.NaT, index=listens.index, dtype=TS_DTYPE),
            "weight": listens["weight"].to_numpy(np.int64),
        }
    )
    say("SocialLGN split")
    inter["split"] = apply_fixed_split(inter, *_split_pairs(paths))

    say("friends, artists and tags")
    friends = _tsv(paths["user_friends"])
    follows = pd.DataFrame(
        {
            "follower_id": friends["userID"].to_numpy(np.int64),
            "followee_id": friends["friendID"].to_numpy(np.int64),
            "created_ts": pd.Series(pd.NaT, index=friends.index, dtype=TS_DTYPE),
        }
    )
    artists = _tsv(paths["artists"], dtype={"name": str})
    items = pd.DataFrame(
        {
            "product_id": artists["id"].to_numpy(np.int64),
            "title": artists["name"].fillna("").str.strip().to_numpy(),
            "category_path": LASTFM_CATEGORY,
        }
    )
    tags = _tag_assignments(paths["user_taggedartists"], paths["tags"])

    say("assembling the dataset")
    manifest = {
        "name": "lastfm-hetrec2011",
        "generator": {
            "name": "socialcart.recommender.importers.lastfm_hetrec",
            "version": _version(),
        },
        "config": {"source": str(root), "split": "sociallgn"},
        "sources": sources,
        "split": "fixed",
        "license": "HetRec 2011 LastFM data: non-commercial use (see raw/readme.txt)",
    }
    dataset = build_dataset(
        interactions=inter,
        follows=follows,
        items=items,
        tags=tags,
        manifest=manifest,
        default_ts=LASTFM_SNAPSHOT_TS,
        default_category=LASTFM_CATEGORY,
    )
    if out is not None:
        say(f"saving to {out}")
        dataset.save(out, overwrite=overwrite)
    return dataset


def _tsv(path: Path, *, encoding: str = "utf-8", dtype: dict | None = None) -> pd.DataFrame:
    return pd.read_csv(
        path, sep="\t", encoding=encoding, quoting=3, dtype=dtype, keep_default_na=False
    )


def _verify_sums(root: Path, paths: dict[str, Path]) -> dict[str, str]:
    """SHA-256 of every file read, checked against ``SHA256SUMS`` when present."""
    sums = {path.relative_to(root).as_posix(): sha256_of(path) for path in paths.values()}
    listed = root / "SHA256SUMS"
    if listed.is_file():
        expected = dict(
            reversed(line.split(maxsplit=1))
            for line in listed.read_text(encoding="utf-8").splitlines()
            if line.strip()
        )
        for rel, digest in sums.items():
            if rel in expected and expected[rel].strip() != digest:
                raise DatasetError(f"{rel} does not match its SHA-256 in SHA256SUMS", table=rel)
    return sums


def _split_pairs(paths: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SocialLGN's train and test pairs in raw LastFM ids."""
    users = read_id_map(paths["user_map"], what="userReindex.json")
    items = read_id_map(paths["item_map"], what="itemReindex.json")
    pairs = []
    for part in ("train", "test"):
        frame = pd.read_csv(paths[part], dtype=str)
        user = frame["user"].str.strip().map(users)
        item = frame["item"].str.strip().map(items)
        if user.isna().any() or item.isna().any():
            raise DatasetError(
                f"{paths[part].name} has ids missing from the re-index maps",
                table="interactions",
                column="split",
            )
        pairs.append(
            pd.DataFrame({"user_id": user.astype(np.int64), "product_id": item.astype(np.int64)})
        )
    return pairs[0], pairs[1]


def _tag_assignments(assignments: Path, tag_names: Path) -> pd.DataFrame:
    """Tag assignments with tag values and clamped dates."""
    tagged = _tsv(assignments)
    names = _tsv(tag_names, encoding="latin-1", dtype={"tagValue": str})
    values = tagged["tagID"].map(names.set_index("tagID")["tagValue"].str.strip())
    if values.isna().any():
        raise DatasetError(
            f"{int(values.isna().sum())} tag assignments name a tagID missing from tags.dat",
            table="posts",
        )
    when = pd.to_datetime(
        pd.DataFrame({"year": tagged["year"], "month": tagged["month"], "day": tagged["day"]}),
        utc=True,
        errors="coerce",
    )
    plausible = when[tagged["year"] >= FIRST_PLAUSIBLE_YEAR]
    when = when.clip(lower=plausible.min(), upper=plausible.max())
    when = when.fillna(plausible.min()).astype(TS_DTYPE)
    return pd.DataFrame(
        {
            "user_id": pd.array(tagged["userID"].to_numpy(np.int64), dtype="Int64"),
            "product_id": tagged["artistID"].to_numpy(np.int64),
            "tag": values.to_numpy(),
            "ts": when,
        }
    )
