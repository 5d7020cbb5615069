"""The socialcart dataset contract: tables, columns, types and rules.

A dataset is a directory of Parquet files plus ``manifest.json``. This module is the single
description of that contract; the generator writes it, every consumer reads it through
:class:`recommender.dataset.Dataset`, which validates against the specs below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SCHEMA_VERSION = "1.0"

EVENT_TYPES: tuple[str, ...] = ("view", "click", "favorite", "cart", "purchase")
"""Funnel events, weakest first."""

GENDERS: tuple[str, ...] = ("female", "male", "unknown")
AGE_BANDS: tuple[str, ...] = ("<18", "18-24", "25-34", "35-44", "45+", "unknown")
DEVICES: tuple[str, ...] = ("mobile", "desktop", "unknown")
CITY_TIERS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
"""1 = first-tier city (Beijing, Shanghai, ...) to 5; 0 = unknown."""

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of a table: its Arrow type kind and its rules."""

    name: str
    kind: str
    """One of ``int``, ``float``, ``bool``, ``str``, ``ts``, ``list_str``, ``list_int``."""
    nullable: bool = False
    allowed: tuple | None = None
    """The closed set of allowed values, if any."""
    minimum: float | None = None
    """Smallest allowed value (inclusive), if any."""


@dataclass(frozen=True)
class Table:
    """One table: its columns, primary key, foreign keys and whether it is required."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Column -> (referenced table, referenced column)."""
    required: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


USERS = Table(
    "users",
    (
        Column("user_id", "int", minimum=0),
        Column("handle", "str"),
        Column("gender", "str", allowed=GENDERS),
        Column("age_band", "str", allowed=AGE_BANDS),
        Column("city_tier", "int", allowed=CITY_TIERS),
        Column("device", "str", allowed=DEVICES),
        Column("is_kol", "bool"),
        Column("share_purchases", "bool"),
        Column("signup_ts", "ts"),
    ),
    key=("user_id",),
)

FOLLOWS = Table(
    "follows",
    (
        Column("follower_id", "int", minimum=0),
        Column("followee_id", "int", minimum=0),
        Column("created_ts", "ts"),
    ),
    key=("follower_id", "followee_id"),
    foreign_keys={"follower_id": ("users", "user_id"), "followee_id": ("users", "user_id")},
)

POSTS = Table(
    "posts",
    (
        Column("post_id", "int", minimum=0),
        Column("user_id", "int", minimum=0),
        Column("created_ts", "ts"),
        Column("text", "str"),
        Column("hashtags", "list_str"),
        Column("mentions", "list_int"),
        Column("repost_of", "int", nullable=True, minimum=0),
        Column("product_id", "int", nullable=True, minimum=0),
    ),
    key=("post_id",),
    foreign_keys={
        "user_id": ("users", "user_id"),
        "repost_of": ("posts", "post_id"),
        "product_id": ("products", "product_id"),
    },
)

PRODUCTS = Table(
    "products",
    (
        Column("product_id", "int", minimum=0),
        Column("shop_id", "int", minimum=0),
        Column("category_path", "str"),
        Column("title", "str"),
        Column("description", "str"),
        Column("brand", "str"),
        # Real catalogues (e.g. imported LastFM artists) may have no price.
        Column("price", "float", nullable=True, minimum=0.0),
    ),
    key=("product_id",),
)

INTERACTIONS = Table(
    "interactions",
    (
        Column("user_id", "int", minimum=0),
        Column("product_id", "int", minimum=0),
        Column("event", "str", allowed=EVENT_TYPES),
        Column("ts", "ts"),
        Column("via_post_id", "int", nullable=True, minimum=0),
    ),
    foreign_keys={
        "user_id": ("users", "user_id"),
        "product_id": ("products", "product_id"),
        "via_post_id": ("posts", "post_id"),
    },
)

GROUPS = Table(
    "groups",
    (
        Column("group_id", "int", minimum=0),
        Column("name", "str"),
        Column("topic", "str"),
    ),
    key=("group_id",),
    required=False,
)

GROUP_MEMBERS = Table(
    "group_members",
    (
        Column("group_id", "int", minimum=0),
        Column("user_id", "int", minimum=0),
    ),
    key=("group_id", "user_id"),
    foreign_keys={"group_id": ("groups", "group_id"), "user_id": ("users", "user_id")},
    required=False,
)

TABLES: dict[str, Table] = {
    t.name: t for t in (USERS, FOLLOWS, POSTS, PRODUCTS, INTERACTIONS, GROUPS, GROUP_MEMBERS)
}
"""Every table of the contract, in dependency order (referenced tables first)."""

TIMESTAMP_COLUMNS: dict[str, str] = {
    "users": "signup_ts",
    "follows": "created_ts",
    "posts": "created_ts",
    "interactions": "ts",
}
"""The timestamp column of each table that must fall inside the dataset's time span."""

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "ts": TIMESTAMP,
    "list_str": pa.list_(pa.string()),
    "list_int": pa.list_(pa.int64()),
}


def arrow_schema(table: Table) -> pa.Schema:
    """The canonical Arrow schema of a contract table (extra columns come after)."""
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.kind], nullable=c.nullable) for c in table.columns]
    )


def kind_matches(kind: str, arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type read from a file is acceptable for a column kind.

    Narrower integer, float and string encodings are accepted (and widened on load), so a
    dataset written by another tool need not match byte for byte.
    """
    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if kind == "int":
        return pa.types.is_integer(t)
    if kind == "float":
        return pa.types.is_floating(t) or pa.types.is_integer(t)
    if kind == "bool":
        return pa.types.is_boolean(t)
    if kind == "str":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if kind == "ts":
        return pa.types.is_timestamp(t) and t.tz is not None
    if kind in ("list_str", "list_int"):
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            return False
        inner = t.value_type
        if kind == "list_str":
            return pa.types.is_string(inner) or pa.types.is_large_string(inner)
        return pa.types.is_integer(inner)
    raise ValueError(f"unknown column kind {kind!r}")
