"""Look-ups the responses need, built once per model load: product details and user
profiles as column arrays indexed like the model (no table is copied per request)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.data import IdIndex
from recommender.dataset import Dataset
from recommender.errors import UnknownIdError


def _column(frame: pd.DataFrame, name: str, default: Any = None) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), default).to_numpy(object)


class _Labels:
    """A column of few distinct values as one small code per row into those values (a
    million people's genders as a million bytes, not a million string objects); indexed
    like the array it stands for."""

    def __init__(self, frame: pd.DataFrame, name: str, default: Any = None) -> None:
        if name not in frame.columns:
            self.codes = np.full(len(frame), -1, dtype=np.int8)
            self.values = np.array([default], dtype=object)
            return
        column = frame[name].astype("category")
        self.codes = column.cat.codes.to_numpy()  # -1 for a missing value
        # The default last, where the missing values' code -1 points.
        self.values = np.array([*column.cat.categories.astype(object), default], dtype=object)

    def __getitem__(self, rows):
        return self.values[self.codes[rows]]


class PostArchive:
    """A dataset's posts by author, newest first, as zstd-compressed Arrow IPC chunks of
    consecutive authors: what the demo shows of a person (their recent posts) without
    holding the whole table (on ``large`` 5 M posts take 0.53 GiB as a table). A person's
    posts cost one or two chunks' decompression (about a millisecond)."""

    COLUMNS = ("post_id", "user_id", "text", "hashtags", "mentions", "product_id", "created_ts")

    def __init__(self, posts: pd.DataFrame, *, chunk_rows: int = 8192) -> None:
        authors = posts["user_id"].to_numpy(np.int64)
        newest_first = -posts["created_ts"].astype("int64").to_numpy()
        order = np.lexsort((newest_first, authors))
        table = pa.Table.from_pandas(posts[list(self.COLUMNS)], preserve_index=False)
        table = table.take(pa.array(order))
        self._first_author = authors[order][::chunk_rows]
        self._chunks: list[pa.Buffer] = []
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        for start in range(0, table.num_rows, chunk_rows):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
                writer.write_table(table.slice(start, chunk_rows))
            self._chunks.append(sink.getvalue())
        authors_of, counts = np.unique(authors, return_counts=True)
        self.counts = pd.Series(counts, index=authors_of)
        """Posts per author (authors without posts absent)."""

    def of(self, user_id: int, limit: int) -> list[dict[str, Any]]:
        """A person's newest ``limit`` posts (the columns of :attr:`COLUMNS`)."""
        if limit <= 0 or not self._chunks:
            return []
        first = max(int(np.searchsorted(self._first_author, user_id, "left")) - 1, 0)
        last = int(np.searchsorted(self._first_author, user_id, "right"))
        rows: list[dict[str, Any]] = []
        for chunk in self._chunks[first:last]:
            table = pa.ipc.open_stream(chunk).read_all()
            mine = table.filter(pc.equal(table["user_id"], user_id))
            rows += mine.slice(0, limit - len(rows)).to_pylist()
            if len(rows) >= limit:
                break
        return rows


class Catalog:
    """Products, users and groups of a dataset, by raw id."""

    def __init__(self, dataset: Dataset) -> None:
        products = dataset.products
        self.products = IdIndex(products["product_id"].to_numpy(np.int64), "product")
        self._title = _column(products, "title", "")
        self._category = _Labels(products, "category_path", "")
        self._brand = _Labels(products, "brand")
        self._shop_id = products["shop_id"].to_numpy(np.int64)
        self._shop_name = _Labels(products, "shop_name")
        self._price = products["price"].to_numpy(dtype=float, na_value=np.nan)
        self._description = _column(products, "description", "")

        users = dataset.users
        self.users = IdIndex(users["user_id"].to_numpy(np.int64), "user")
        self._handle = users["handle"].astype(str).to_numpy(object)
        self._gender = _Labels(users, "gender")
        self._age_band = _Labels(users, "age_band")
        self._city_tier = _Labels(users, "city_tier")
        self._device = _Labels(users, "device")
        self._is_kol = users["is_kol"].to_numpy(bool)
        self._signup = pd.DatetimeIndex(users["signup_ts"])  # 8 bytes a person

        self.posts = PostArchive(dataset.posts)

        self._groups: dict[int, tuple[str, str, np.ndarray]] = {}
        if dataset.groups is not None and dataset.group_members is not None:
            members = dataset.group_members.groupby("group_id")["user_id"]
            by_group = {int(g): np.sort(m.to_numpy(np.int64)) for g, m in members}
            for row in dataset.groups.itertuples(index=False):
                gid = int(row.group_id)
                members_of = by_group.get(gid, np.zeros(0, np.int64))
                self._groups[gid] = (str(row.name), str(row.topic), members_of)

    # --------------------------------------------------------------- products
    def product(self, product_id: int, *, description: bool = False) -> dict[str, Any]:
        """Details of one product; unknown ids raise :class:`UnknownIdError`."""
        row = int(self.products.lookup([product_id])[0])
        out = self._product_row(row)
        if description:
            out["description"] = self._description[row]
        return out

    def product_rows(self, product_ids: np.ndarray) -> list[dict[str, Any]]:
        """Details of many products (ids the model returned, so known)."""
        rows = self.products.lookup(np.asarray(product_ids, dtype=np.int64))
        return [self._product_row(int(r)) for r in rows]

    def category_of(self, product_ids: np.ndarray) -> np.ndarray:
        return self._category[self.products.lookup(np.asarray(product_ids, dtype=np.int64))]

    def _product_row(self, row: int) -> dict[str, Any]:
        price = self._price[row]
        return {
            "product_id": int(self.products.ids[row]),
            "title": self._title[row],
            "price": None if np.isnan(price) else float(price),
            "shop_id": int(self._shop_id[row]),
            "shop_name": self._shop_name[row],
            "category_path": self._category[row],
            "brand": self._brand[row],
        }

    # ------------------------------------------------------------------ users
    def user(self, user_id: int) -> dict[str, Any]:
        row = int(self.users.lookup([user_id])[0])
        tier = self._city_tier[row]
        return {
            "user_id": int(self.users.ids[row]),
            "handle": self._handle[row],
            "gender": self._gender[row],
            "age_band": self._age_band[row],
            "city_tier": None if tier is None else int(tier),
            "device": self._device[row],
            "is_kol": bool(self._is_kol[row]),
            "signup_ts": self._signup[row].to_pydatetime(),
        }

    def handles(self, user_ids: np.ndarray) -> np.ndarray:
        return self._handle[self.users.lookup(np.asarray(user_ids, dtype=np.int64))]

    def is_kol(self, user_ids: np.ndarray) -> np.ndarray:
        return self._is_kol[self.users.lookup(np.asarray(user_ids, dtype=np.int64))]

    # ----------------------------------------------------------------- groups
    def group_members(self, group_id: int) -> np.ndarray:
        if group_id not in self._groups:
            raise UnknownIdError("group", [group_id])
        return self._groups[group_id][2]

    def group(self, group_id: int) -> tuple[str, str]:
        if group_id not in self._groups:
            raise UnknownIdError("group", [group_id])
        name, topic, _ = self._groups[group_id]
        return name, topic
